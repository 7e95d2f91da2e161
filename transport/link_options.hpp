// LinkOptions and LinkCounters: how a node's links are bounded and timed, and what they
// count. Plain values without Asio, so that NodeOptions can hold them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "transport/frame_limits.hpp"

namespace deltacrdt::transport {

struct LinkOptions {
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  // Frames announcing more before the handshake is done close the connection: what an
  // unauthenticated peer can make a node buffer.
  std::size_t max_handshake_frame_bytes = kDefaultMaxHandshakeFrameBytes;
  // Outbound bytes queued before frames are dropped (backpressure on a slow peer).
  std::size_t max_queue_bytes = 32 * 1024 * 1024;
  // A connection that has not authenticated by then is closed (whatever it sent meanwhile).
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds heartbeat_interval{500};
  // Nothing received for this long (not even a heartbeat) on an authenticated link: the
  // peer is gone. (Before the handshake is done only handshake_timeout applies.)
  std::chrono::milliseconds idle_timeout{3000};
};

// Counters shared by all links of a node (monotone).
struct LinkCounters {
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> frames_in{0};
  std::atomic<std::uint64_t> frames_out{0};
  std::atomic<std::uint64_t> frames_rejected{0};  // malformed frames (each closed a link)
  std::atomic<std::uint64_t> frames_dropped{0};   // outbound, queue full
  std::atomic<std::uint64_t> handshakes_failed{0};
};

}  // namespace deltacrdt::transport
