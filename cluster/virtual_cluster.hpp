// VirtualCluster<T>: replicas of one CRDT run by the calling thread alone, in virtual time -
// the Replica<T> counterpart of SimNetwork (which drives ReplicaCore). Every replica runs on
// one queue that only run_for(), wait() and poll() run, every clock read and timer
// goes through one ManualClock, and messages travel through a LocalTransport (delivered to
// the addressee's queue at once). A run is the same every time: for deterministic tests of
// the runner and of applications built on it, with no sleeps and no polling of real time.
//
// Threading: single-threaded by design; call everything from the thread that owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cluster/manual_clock.hpp"
#include "cluster/replica.hpp"
#include "cluster/replica_runtime.hpp"
#include "cluster/sync_transport.hpp"
#include "cluster/unique_function.hpp"

namespace deltacrdt {

template <DeltaCrdt T>
class VirtualCluster {
 public:
  // Replicas 1..n, each a neighbour of every other, all with `options` (its clock and
  // notification poster are the cluster's).
  explicit VirtualCluster(std::size_t replicas = 0, const ReplicaOptions<T>& options = {}) {
    for (std::size_t i = 1; i <= replicas; ++i) add(static_cast<ReplicaId>(i), options);
    mesh();
  }
  VirtualCluster(const VirtualCluster&) = delete;
  VirtualCluster& operator=(const VirtualCluster&) = delete;
  ~VirtualCluster() {
    for (auto& r : replicas_) transport_.detach(r->id());
    replicas_.clear();
    drain();  // queued work ends (it holds the replicas' shared state) before the transport
  }

  // Adds a replica, a neighbour of no one yet. Change notifications run on the cluster's
  // thread too, in run_for() and wait().
  Replica<T>& add(ReplicaId id, ReplicaOptions<T> options = {}, T state = T{},
                  std::uint64_t seq = 0) {
    options.clock = clock_;
    replicas_.push_back(std::make_unique<Replica<T>>(runtime(), id, transport_,
                                                     std::move(options), std::move(state), seq));
    transport_.attach(*replicas_.back());
    return *replicas_.back();
  }

  // Makes every replica a neighbour of every other.
  void mesh() {
    for (auto& r : replicas_) {
      std::vector<PeerId> others;
      for (auto& o : replicas_)
        if (o->id() != r->id()) others.push_back(o->id());
      r->set_neighbours(others);
    }
  }

  Replica<T>& operator[](ReplicaId id) {
    for (auto& r : replicas_)
      if (r->id() == id) return *r;
    throw std::out_of_range("no replica with this id");
  }

  // Runs whatever is ready, then moves virtual time forward by `d`, firing every timer due
  // on the way (each at its own time) and running what it makes ready.
  void run_for(Time d) {
    clock_->run_until(clock_->now() + d, [this] { return poll(); });
  }

  // Runs the cluster until `f` is ready (at most `limit` of virtual time) and returns its
  // value. Throws std::runtime_error if it is still not ready: a deadlock or a lost
  // completion, reported at once rather than as a hang.
  template <class R>
  R wait(Future<R> f, Time limit = std::chrono::seconds(60)) {
    const Time until = clock_->now() + limit;
    poll();
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if (clock_->now() >= until) throw std::runtime_error("VirtualCluster::wait: not ready");
      run_for(std::chrono::milliseconds(1));
    }
    return f.get();
  }

  // Runs whatever is ready now, without moving time. Returns how many handlers ran.
  std::size_t poll() {
    std::size_t ran = 0;
    for (;;) {
      UniqueFunction<void()> f;
      {
        std::lock_guard lock(ready_mutex_);
        if (ready_.empty()) return ran;
        f = std::move(ready_.front());
        ready_.pop_front();
      }
      f();
      ++ran;
    }
  }

  Time now() const { return clock_->now(); }
  ManualClock& clock() { return *clock_; }
  LocalTransport& transport() { return transport_; }

  // Runs on this cluster's loop: work, notifications (in the order posted) and the
  // virtual clock.
  ReplicaRuntime runtime() {
    Poster post = [this](UniqueFunction<void()> f) {
      std::lock_guard lock(ready_mutex_);
      ready_.push_back(std::move(f));
    };
    return ReplicaRuntime{post, post, clock_};
  }

 private:
  void drain() { poll(); }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  LocalTransport transport_;
  // What is ready to run (posted from any thread; run by poll() on the caller's).
  std::mutex ready_mutex_;
  std::deque<UniqueFunction<void()>> ready_;
  std::vector<std::unique_ptr<Replica<T>>> replicas_;
};

}  // namespace deltacrdt
