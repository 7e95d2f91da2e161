// Frames: the unit of the node-to-node wire format (docs/wire-format.md).
//
//   magic "DCRW" | version u8 | type u8 | flags u16 | length u32 | payload | xxh3 u64
//
// Integers little-endian; the checksum covers header and payload. FrameDecoder is sans-I/O:
// bytes go in as they arrive, whole frames come out. It checks the length against its
// maximum before buffering a payload, so a hostile length prefix costs nothing, and it
// reports the first error for good: the caller closes that connection. Not thread-safe;
// one decoder per connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/error.hpp"
#include "transport/frame_limits.hpp"

namespace deltacrdt::transport {

inline constexpr std::array<char, 4> kFrameMagic{'D', 'C', 'R', 'W'};
inline constexpr std::uint8_t kWireVersion = 1;
inline constexpr std::size_t kFrameHeaderBytes = 12;
inline constexpr std::size_t kFrameTrailerBytes = 8;

enum class FrameType : std::uint8_t {
  hello = 1,      // handshake, client -> server
  hello_ack = 2,  // handshake, server -> client
  auth = 3,       // handshake, client -> server
  auth_ok = 4,    // handshake, server -> client: the link is up
  refuse = 5,     // either side: the reason, then the connection closes
  sync = 16,      // one replica protocol message (cluster/protocol.hpp)
  heartbeat = 17,
  gossip = 18,   // membership
  goodbye = 19,  // orderly shutdown of the link
};

inline bool known_frame_type(std::uint8_t t) { return (t >= 1 && t <= 5) || (t >= 16 && t <= 19); }

struct Frame {
  FrameType type = FrameType::heartbeat;
  std::string payload;
};

// Appends one frame to `out`.
inline void append_frame(std::string& out, FrameType type, std::string_view payload) {
  const std::size_t start = out.size();
  out.append(kFrameMagic.data(), kFrameMagic.size());
  out.push_back(static_cast<char>(kWireVersion));
  out.push_back(static_cast<char>(type));
  out.push_back(0);  // flags
  out.push_back(0);
  const auto n = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(payload);
  const std::string_view framed(out.data() + start, out.size() - start);
  deltacrdt::detail::append_le64(out, deltacrdt::detail::hash_bytes(framed));
}

inline std::string make_frame(FrameType type, std::string_view payload) {
  std::string out;
  append_frame(out, type, payload);
  return out;
}

class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_payload = kDefaultMaxFrameBytes) : max_(max_payload) {}

  // Adds received bytes. The buffer never holds more than one frame's worth plus what the
  // caller passes in one call.
  void feed(std::string_view bytes) { buf_.append(bytes); }

  // The next whole frame, nullopt when more bytes are needed, or the error that ended the
  // stream (the same error on every later call).
  Result<std::optional<Frame>> next() {
    if (error_) return *error_;
    if (buf_.size() - at_ < kFrameHeaderBytes) return need_more();
    const char* h = buf_.data() + at_;
    if (std::memcmp(h, kFrameMagic.data(), kFrameMagic.size()) != 0) return fail(Errc::bad_magic);
    if (static_cast<std::uint8_t>(h[4]) != kWireVersion) return fail(Errc::bad_version);
    const auto type = static_cast<std::uint8_t>(h[5]);
    if (!known_frame_type(type)) return fail(Errc::corrupt);
    if (h[6] != 0 || h[7] != 0) return fail(Errc::corrupt);  // no flags are defined
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= std::uint32_t{static_cast<unsigned char>(h[8 + i])} << (8 * i);
    if (n > max_) return fail(Errc::too_large);
    const std::size_t total = kFrameHeaderBytes + n + kFrameTrailerBytes;
    if (buf_.size() - at_ < total) return need_more();
    const std::string_view framed(h, kFrameHeaderBytes + n);
    if (deltacrdt::detail::read_le64(h + kFrameHeaderBytes + n) !=
        deltacrdt::detail::hash_bytes(framed)) {
      return fail(Errc::bad_checksum);
    }
    Frame f{static_cast<FrameType>(type), std::string(h + kFrameHeaderBytes, n)};
    at_ += total;
    return std::optional<Frame>(std::move(f));
  }

  // Bytes of an incomplete frame held.
  std::size_t buffered() const { return buf_.size() - at_; }
  std::size_t max_payload() const { return max_; }
  // Changes the bound for frames not yet decoded (a link raises it once authenticated).
  void set_max_payload(std::size_t max_payload) { max_ = max_payload; }

 private:
  Result<std::optional<Frame>> fail(Errc e) {
    error_ = e;
    buf_.clear();
    at_ = 0;
    return e;
  }
  // Drops consumed bytes, so the buffer holds at most one partial frame between calls.
  Result<std::optional<Frame>> need_more() {
    if (at_ > 0) {
      buf_.erase(0, at_);
      at_ = 0;
    }
    return std::optional<Frame>{};
  }

  std::size_t max_;
  std::string buf_;
  std::size_t at_ = 0;
  std::optional<Errc> error_;
};

}  // namespace deltacrdt::transport
