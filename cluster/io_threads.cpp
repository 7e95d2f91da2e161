// IoThreads (cluster/io_threads.hpp).
#include "cluster/io_threads.hpp"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cluster/replica_asio.hpp"
#include "transport/asio.hpp"

namespace deltacrdt {

struct IoThreads::State {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{
      io.get_executor()};
  std::vector<std::thread> threads;
  std::mutex mu;
  std::condition_variable done;
  std::size_t finished = 0;
};

IoThreads::IoThreads(std::size_t threads) : state_(std::make_unique<State>()) {
  for (std::size_t i = 0; i < threads; ++i) {
    state_->threads.emplace_back([s = state_.get()] {
      s->io.run();
      std::lock_guard lock(s->mu);
      ++s->finished;
      s->done.notify_all();
    });
  }
}

IoThreads::~IoThreads() { join(); }

void IoThreads::join(std::chrono::milliseconds grace) {
  State& s = *state_;
  s.guard.reset();
  {
    std::unique_lock lock(s.mu);
    if (!s.done.wait_for(lock, grace, [&s] { return s.finished == s.threads.size(); })) {
      s.io.stop();
    }
  }
  for (auto& t : s.threads)
    if (t.joinable()) t.join();
}

asio::io_context& IoThreads::context() { return state_->io; }

asio::any_io_executor IoThreads::executor() { return state_->io.get_executor(); }

ReplicaRuntime IoThreads::runtime() { return asio_runtime(executor()); }

}  // namespace deltacrdt
