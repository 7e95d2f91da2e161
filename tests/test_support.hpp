// Helpers shared by the tests that wait on real threads, sockets or processes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include "transport/asio.hpp"

namespace deltacrdt::testing {

// Polls `done` every `step` until it holds or `limit` passed; returns its last answer.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(20),
                       std::chrono::milliseconds step = std::chrono::milliseconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(step);
  }
  return done();
}

// A port on 127.0.0.1 that was free a moment ago (the kernel does not hand it out again at
// once), for processes that must be told their port before they start.
inline std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint().port();
}

}  // namespace deltacrdt::testing
