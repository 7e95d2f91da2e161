// Default bounds on frame payloads (transport/frame.hpp), apart so that option structs can
// name them without the frame codec.
#pragma once

#include <cstddef>

namespace deltacrdt::transport {

// Default bound on one frame's payload: a sync message of max_sync_bytes plus its header
// fits with room to spare.
inline constexpr std::size_t kDefaultMaxFrameBytes = 4 * 1024 * 1024;
// Bound on a frame's payload before the peer has authenticated: the largest handshake frame
// (a hello_ack with 255-byte cluster and node names) is about 630 bytes.
inline constexpr std::size_t kDefaultMaxHandshakeFrameBytes = 1024;

}  // namespace deltacrdt::transport
