// IoThreads: an io_context run by a fixed number of threads until destruction. The owner
// must outlive everything that posts to it; destruction lets queued work finish being
// abandoned (io_context::stop) and joins the threads.
#pragma once

#include <cstddef>
#include <thread>
#include <vector>

#include "transport/asio.hpp"

namespace deltacrdt {

class IoThreads {
 public:
  explicit IoThreads(std::size_t threads = 2) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  ~IoThreads() { join(); }

  // Stops the context and joins the threads; the context itself lives on until destruction
  // (objects bound to it can then be destroyed safely). Idempotent.
  void join() {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  asio::io_context& context() { return io_; }
  asio::any_io_executor executor() { return io_.get_executor(); }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::vector<std::thread> threads_;
};

}  // namespace deltacrdt
