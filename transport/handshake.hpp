// The link handshake (docs/wire-format.md): protocol version, cluster name, node name and
// incarnation, and mutual authentication by HMAC-SHA256 challenge-response over a shared
// cluster secret. The secret never crosses the wire; each side proves it holds the secret
// by MACing both sides' fresh nonces, so a recorded handshake cannot be replayed.
//
//   client -> hello     {protocol, cluster, node, incarnation, nonce_c}
//   server -> hello_ack {protocol, cluster, node, incarnation, nonce_s, mac_s}
//   client -> auth      {mac_c}
//   server -> auth_ok   {}
//
// mac_x = HMAC(secret, label_x | nonce_c | nonce_s | cluster | client node | client
// incarnation | server node | server incarnation), with distinct labels for the two sides,
// so one side's proof is never valid as the other's. Either side sends `refuse` with a
// reason and stops at the first mismatch. Nothing but these frames is accepted before the
// handshake completes. Sans-I/O; one object per connection; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/byte_io.hpp"
#include "transport/frame.hpp"
#include "transport/link_error.hpp"

namespace deltacrdt::transport {

// 2: refuse frames carry a LinkError code; gossip names each replica's type signature.
// 3: sync payloads have one layout per message kind (cluster/wire.hpp).
// 4: gossip member records carry a heartbeat and linked/wanted flags (links as needed).
// 5: sync messages CatchUpRequest and CatchUpStarted (read concerns).
// 6: gossip carries the members removed from the cluster.
inline constexpr std::uint64_t kHandshakeProtocol = 6;
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kMacBytes = 32;
inline constexpr std::size_t kMaxNameBytes = 255;

struct HandshakeConfig {
  std::string cluster;            // both sides must name the same cluster
  std::string node;               // this node's name, unique in the cluster
  std::uint64_t incarnation = 0;  // changes on every start of the node
  std::string secret;             // the shared cluster secret (non-empty)
};

// Who is on the other end, once authenticated.
struct PeerIdentity {
  std::string node;
  std::uint64_t incarnation = 0;
};

class Handshake {
 public:
  enum class Role { client, server };
  enum class State { pending, done, failed };

  Handshake(Role role, HandshakeConfig config) : role_(role), config_(std::move(config)) {
    if (config_.secret.empty()) throw std::invalid_argument("handshake: empty cluster secret");
    if (config_.cluster.size() > kMaxNameBytes || config_.node.size() > kMaxNameBytes) {
      throw std::invalid_argument("handshake: cluster or node name longer than 255 bytes");
    }
  }

  // Bytes to send first (the client's hello; nothing for the server).
  std::string start() {
    if (role_ == Role::server) return {};
    deltacrdt::detail::ByteWriter w;
    write_identity(w);
    expect_ = FrameType::hello_ack;
    return make_frame(FrameType::hello, w.take());
  }

  // Takes one received frame; returns the bytes to send in answer (possibly none).
  std::string on_frame(const Frame& f) {
    if (state_ != State::pending) return {};
    if (f.type == FrameType::refuse) {
      on_refused(f.payload);
      return {};
    }
    if (f.type != expect_) {
      return refuse(LinkError::unexpected_frame, "unexpected frame during handshake");
    }
    deltacrdt::detail::ByteReader r(f.payload);
    switch (f.type) {
      case FrameType::hello:
        return on_hello(r);
      case FrameType::hello_ack:
        return on_hello_ack(r);
      case FrameType::auth:
        return on_auth(r);
      case FrameType::auth_ok:
        if (!r.done()) return refuse(LinkError::malformed_frame, "malformed auth_ok");
        state_ = State::done;
        return {};
      default:
        return refuse(LinkError::unexpected_frame, "unexpected frame during handshake");
    }
  }

  State state() const { return state_; }
  bool done() const { return state_ == State::done; }
  // Why the handshake failed: the code, and words for the log.
  LinkError failure_code() const { return failure_code_; }
  const std::string& failure() const { return failure_; }
  // The authenticated peer, once done.
  const PeerIdentity& peer() const { return peer_; }

 private:
  using Nonce = std::array<char, kNonceBytes>;

  // The fields hello and hello_ack share: protocol, cluster, node, incarnation, nonce.
  // Records the peer's name, incarnation and nonce; returns the refusal, if any.
  struct Refusal {
    LinkError code;
    std::string reason;
  };
  std::optional<Refusal> read_identity(deltacrdt::detail::ByteReader& r,
                                           std::string_view& their_mac, bool with_mac,
                                           std::string_view frame_name) {
    std::uint64_t protocol = 0;
    std::string_view cluster, node, nonce;
    if (!r.u64(protocol) || !r.bytes(cluster) || !r.bytes(node) || !r.u64(peer_.incarnation) ||
        !r.bytes(nonce) || (with_mac && !r.bytes(their_mac)) || !r.done() ||
        nonce.size() != kNonceBytes || node.size() > kMaxNameBytes || node.empty()) {
      return Refusal{LinkError::malformed_frame, "malformed " + std::string(frame_name)};
    }
    if (protocol != kHandshakeProtocol) {
      return Refusal{LinkError::unsupported_protocol,
                     "peer speaks handshake protocol " + std::to_string(protocol) +
                         ", this node " + std::to_string(kHandshakeProtocol)};
    }
    if (cluster != config_.cluster) return Refusal{LinkError::cluster_mismatch, "cluster name mismatch"};
    if (node == config_.node) {
      return role_ == Role::server
                 ? Refusal{LinkError::name_in_use, "node name already in use by this node"}
                 : Refusal{LinkError::self_connection, "connected to itself"};
    }
    peer_.node = std::string(node);
    std::copy(nonce.begin(), nonce.end(), peer_nonce_.begin());
    return std::nullopt;
  }

  // This side's protocol, cluster, node, incarnation and a fresh nonce.
  void write_identity(deltacrdt::detail::ByteWriter& w) {
    own_nonce_ = random_nonce();
    w.u64(kHandshakeProtocol);
    w.bytes(config_.cluster);
    w.bytes(config_.node);
    w.u64(config_.incarnation);
    w.bytes(std::string_view(own_nonce_.data(), own_nonce_.size()));
  }

  // Server: the client's hello.
  std::string on_hello(deltacrdt::detail::ByteReader& r) {
    std::string_view unused;
    if (auto why = read_identity(r, unused, false, "hello")) return refuse(why->code, why->reason);
    deltacrdt::detail::ByteWriter w;
    write_identity(w);
    w.bytes(mac(kServerLabel));
    expect_ = FrameType::auth;
    return make_frame(FrameType::hello_ack, w.take());
  }

  // Client: the server's answer and proof.
  std::string on_hello_ack(deltacrdt::detail::ByteReader& r) {
    std::string_view their_mac;
    if (auto why = read_identity(r, their_mac, true, "hello_ack")) {
      return refuse(why->code, why->reason);
    }
    if (!equal_mac(their_mac, mac(kServerLabel))) {
      return refuse(LinkError::authentication_failed, "authentication failed");
    }
    deltacrdt::detail::ByteWriter w;
    w.bytes(mac(kClientLabel));
    expect_ = FrameType::auth_ok;
    return make_frame(FrameType::auth, w.take());
  }

  // Server: the client's proof.
  std::string on_auth(deltacrdt::detail::ByteReader& r) {
    std::string_view their_mac;
    if (!r.bytes(their_mac) || !r.done()) return refuse(LinkError::malformed_frame, "malformed auth");
    if (!equal_mac(their_mac, mac(kClientLabel))) {
      return refuse(LinkError::authentication_failed, "authentication failed");
    }
    state_ = State::done;
    return make_frame(FrameType::auth_ok, {});
  }

  static constexpr std::string_view kServerLabel = "deltacrdt link v1 server";
  static constexpr std::string_view kClientLabel = "deltacrdt link v1 client";

  // The MAC over both nonces and both identities, as the given side.
  std::string mac(std::string_view label) const {
    const bool client = role_ == Role::client;
    const Nonce& nonce_c = client ? own_nonce_ : peer_nonce_;
    const Nonce& nonce_s = client ? peer_nonce_ : own_nonce_;
    deltacrdt::detail::ByteWriter w;
    w.bytes(label);
    w.bytes(std::string_view(nonce_c.data(), nonce_c.size()));
    w.bytes(std::string_view(nonce_s.data(), nonce_s.size()));
    w.bytes(config_.cluster);
    w.bytes(client ? config_.node : peer_.node);
    w.u64(client ? config_.incarnation : peer_.incarnation);
    w.bytes(client ? peer_.node : config_.node);
    w.u64(client ? peer_.incarnation : config_.incarnation);
    const std::string transcript = w.take();
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), config_.secret.data(), static_cast<int>(config_.secret.size()),
             reinterpret_cast<const unsigned char*>(transcript.data()), transcript.size(),
             out.data(), &len) == nullptr ||
        len != kMacBytes) {
      throw std::runtime_error("handshake: HMAC-SHA256 failed");
    }
    return std::string(reinterpret_cast<const char*>(out.data()), len);
  }

  static bool equal_mac(std::string_view a, std::string_view b) {
    return a.size() == b.size() && a.size() == kMacBytes &&
           CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
  }

  static Nonce random_nonce() {
    Nonce n{};
    if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1) {
      throw std::runtime_error("handshake: no randomness for a nonce");
    }
    return n;
  }

  // A refuse frame: the code (u16), then the reason's words (for the peer's log only).
  std::string refuse(LinkError code, std::string reason) {
    std::string payload;
    const auto v = static_cast<std::uint16_t>(code);
    payload.push_back(static_cast<char>(v & 0xff));
    payload.push_back(static_cast<char>(v >> 8));
    payload += reason;
    failed(code, std::move(reason));
    return make_frame(FrameType::refuse, payload);
  }
  // The peer refused us. A peer of protocol 1 sends words without a code: its refusal is
  // `refused`, with its words (at most 200 bytes of them) in the reason.
  void on_refused(std::string_view payload) {
    LinkError code = LinkError::refused;
    if (payload.size() >= 2) {
      const auto v = static_cast<std::uint16_t>(static_cast<unsigned char>(payload[0]) |
                                                (static_cast<unsigned char>(payload[1]) << 8));
      if (is_refusal(static_cast<LinkError>(v))) {
        code = static_cast<LinkError>(v);
        payload.remove_prefix(2);
      }
    }
    failed(code, "refused by peer (" + std::string(to_string(code)) +
                     "): " + std::string(payload.substr(0, 200)));
  }
  void failed(LinkError code, std::string reason) {
    state_ = State::failed;
    failure_code_ = code;
    failure_ = std::move(reason);
  }

  Role role_;
  HandshakeConfig config_;
  State state_ = State::pending;
  FrameType expect_ = FrameType::hello;  // the server waits for a hello
  Nonce own_nonce_{};
  Nonce peer_nonce_{};
  PeerIdentity peer_;
  std::string failure_;
  LinkError failure_code_ = LinkError::none;
};

}  // namespace deltacrdt::transport
