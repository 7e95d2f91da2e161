// LinkError: why a link failed or closed, as a code. A node decides what to do about a link
// (count it as a rejected stranger, stop dialing an address that is itself, log it as a
// plain disconnection) from this code, never from the wording of a reason; a refusal
// carries its code over the wire in the `refuse` frame (docs/wire-format.md), so a node
// learns why a peer refused it without parsing the peer's prose.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace deltacrdt::transport {

enum class LinkError : std::uint16_t {
  none = 0,
  // Refusals in the handshake (sent as codes in `refuse` frames; values are wire values).
  malformed_frame = 1,        // a frame or handshake field that does not decode
  unexpected_frame = 2,       // a frame out of turn in the handshake, or a handshake frame after
  unsupported_protocol = 3,   // the peer speaks another handshake protocol
  cluster_mismatch = 4,       // the peer names another cluster
  name_in_use = 5,            // the peer's node name is this node's own (a node dialed itself)
  self_connection = 6,        // the dialer reached itself
  authentication_failed = 7,  // a MAC did not match: the peer does not have the secret
  refused = 8,                // a refusal whose code this node does not know
  // Ends of a link, local only.
  handshake_timeout = 64,
  idle_timeout = 65,
  closed_by_peer = 66,  // end of stream or goodbye
  io_error = 67,        // a read or write failed
  tls_failed = 68,      // the TLS handshake failed
  closed = 69,          // this node closed it (stopping, or a duplicate link)
  internal_error = 70,  // an exception escaped one of the link's loops
};

// Whether the code is one a `refuse` frame may carry (the handshake's refusals).
constexpr bool is_refusal(LinkError e) {
  const auto v = static_cast<std::uint16_t>(e);
  return v >= 1 && v <= 8;
}

// Whether the failure says the peer is this node itself (a seed list that names it).
constexpr bool is_self(LinkError e) {
  return e == LinkError::name_in_use || e == LinkError::self_connection;
}

// Whether the failure is a stranger's (or a misconfigured peer's) doing before it
// authenticated: counted and logged at most once per interval, as anyone can cause it.
constexpr bool is_rejection(LinkError e) {
  return is_refusal(e) || e == LinkError::handshake_timeout || e == LinkError::tls_failed;
}

constexpr std::string_view to_string(LinkError e) {
  switch (e) {
    case LinkError::none: return "none";
    case LinkError::malformed_frame: return "malformed_frame";
    case LinkError::unexpected_frame: return "unexpected_frame";
    case LinkError::unsupported_protocol: return "unsupported_protocol";
    case LinkError::cluster_mismatch: return "cluster_mismatch";
    case LinkError::name_in_use: return "name_in_use";
    case LinkError::self_connection: return "self_connection";
    case LinkError::authentication_failed: return "authentication_failed";
    case LinkError::refused: return "refused";
    case LinkError::handshake_timeout: return "handshake_timeout";
    case LinkError::idle_timeout: return "idle_timeout";
    case LinkError::closed_by_peer: return "closed_by_peer";
    case LinkError::io_error: return "io_error";
    case LinkError::tls_failed: return "tls_failed";
    case LinkError::closed: return "closed";
    case LinkError::internal_error: return "internal_error";
  }
  return "unknown";
}

// What an exception says (what() of a std::exception, else "unknown exception"): for the
// log line of a loop that ended by one.
inline std::string exception_message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
  }
  return "unknown exception";
}

}  // namespace deltacrdt::transport
