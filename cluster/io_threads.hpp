// IoThreads: an io_context run by a fixed number of threads until destruction. The owner
// must outlive everything that posts to it.
//
// Ending: join() releases the work guard and lets the threads run out of work - every
// socket closed, every timer cancelled and every queued handler run by its owner's own
// shutdown - so nothing is abandoned half way. Work that is still there after a grace
// period (something was not shut down) is then abandoned with io_context::stop(), so a
// join never hangs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "transport/asio.hpp"

namespace deltacrdt {

class IoThreads {
 public:
  explicit IoThreads(std::size_t threads = 2) {
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        io_.run();
        std::lock_guard lock(mu_);
        ++finished_;
        done_.notify_all();
      });
    }
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  ~IoThreads() { join(); }

  // Releases the work guard and joins the threads once they ran out of work, or after
  // `grace` abandons what is left (io_context::stop). The context itself lives on until
  // destruction (objects bound to it can then be destroyed safely). Idempotent.
  void join(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    guard_.reset();
    {
      std::unique_lock lock(mu_);
      if (!done_.wait_for(lock, grace, [this] { return finished_ == threads_.size(); })) {
        io_.stop();
      }
    }
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  asio::io_context& context() { return io_; }
  asio::any_io_executor executor() { return io_.get_executor(); }

 private:
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable done_;
  std::size_t finished_ = 0;
};

}  // namespace deltacrdt
