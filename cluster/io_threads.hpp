// IoThreads: an io_context run by a fixed number of threads until destruction. The owner
// must outlive everything that posts to it.
//
// Ending: join() releases the work guard and lets the threads run out of work - every
// socket closed, every timer cancelled and every queued handler run by its owner's own
// shutdown - so nothing is abandoned half way. Work that is still there after a grace
// period (something was not shut down) is then abandoned with io_context::stop(), so a
// join never hangs.
//
// Compiled into libdeltacrdt (io_threads.cpp); this header names Asio's types without
// including Asio, so replicas can run on IoThreads (runtime()) in code that never includes
// it. Code that uses context() or executor() includes transport/asio.hpp itself.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include "cluster/replica_runtime.hpp"

namespace boost::asio {
class io_context;
class any_io_executor;
}  // namespace boost::asio

namespace deltacrdt {

class IoThreads {
 public:
  explicit IoThreads(std::size_t threads = 2);
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  ~IoThreads();

  // Releases the work guard and joins the threads once they ran out of work, or after
  // `grace` abandons what is left (io_context::stop). The context itself lives on until
  // destruction (objects bound to it can then be destroyed safely). Idempotent.
  void join(std::chrono::milliseconds grace = std::chrono::seconds(5));

  boost::asio::io_context& context();
  boost::asio::any_io_executor executor();

  // Where a Replica runs on these threads: its work and timers here, its notifications on
  // a strand of them (one at a time, in order).
  ReplicaRuntime runtime();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace deltacrdt
