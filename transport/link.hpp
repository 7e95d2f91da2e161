// Link: one authenticated TCP connection between two nodes (docs/wire-format.md).
//
// It runs the handshake (transport/handshake.hpp), inside TLS when a TLS context is given
// (transport/tls.hpp), then carries frames both ways. One writer
// per socket: frames are queued and written in order by a single coroutine; the queue is
// bounded in bytes, and a frame that would pass the bound is dropped and counted (callers
// send only what can be resent: replication retransmits). Heartbeats keep an idle link
// alive; a link that receives nothing for idle_timeout, or whose handshake does not finish
// within handshake_timeout, is closed. Any malformed frame closes the link. Until the peer
// has authenticated, a link accepts frames of at most max_handshake_frame_bytes and reads
// into a small buffer: an unauthenticated connection costs a few KiB, whatever it sends.
//
// Threading: everything runs on the link's strand (the socket's executor). send() and
// close() may be called from any thread. Handlers are called on the strand; on_down exactly
// once, whatever ends the link.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "transport/asio.hpp"
#include "transport/frame.hpp"
#include "transport/handshake.hpp"
#include "transport/link_error.hpp"
#include "transport/link_options.hpp"
#include "transport/tls.hpp"

namespace deltacrdt::transport {

class Link : public std::enable_shared_from_this<Link> {
 public:
  using Ptr = std::shared_ptr<Link>;
  struct Handlers {
    std::function<void(const Ptr&)> on_up;            // handshake done; peer() is set
    std::function<void(const Ptr&, Frame)> on_frame;  // any frame after the handshake
    // Why the link ended, as a code (what to act on) and in words (for the log).
    std::function<void(const Ptr&, LinkError code, const std::string& reason, bool was_up)>
        on_down;
  };

  // `socket` must be open (accepted or connected) and bound to a strand executor. With
  // `tls`, the link speaks TLS (the dialer as TLS client) before anything else; the context
  // must outlive the link.
  static Ptr create(asio::ip::tcp::socket socket, Handshake::Role role, HandshakeConfig config,
                    LinkOptions options, Handlers handlers, LinkCounters& counters,
                    std::shared_ptr<asio::ssl::context> tls = nullptr) {
    return Ptr(new Link(std::move(socket), role, std::move(config), options, std::move(handlers),
                        counters, std::move(tls)));
  }

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(
        strand_, [self]() { return self->reader(); }, ends_link(self, "reader"));
    asio::co_spawn(
        strand_, [self]() { return self->writer(); }, ends_link(self, "writer"));
    asio::co_spawn(
        strand_, [self]() { return self->watchdog(); }, ends_link(self, "watchdog"));
  }

  // Queues a frame; false when the link is closed or its queue is full (frame dropped).
  bool send(FrameType type, std::string_view payload) {
    if (closed_.load()) return false;
    std::string bytes = make_frame(type, payload);
    // (Checked here, counted in enqueue: the bound is approximate under concurrent senders.)
    if (queued_bytes_.load() + bytes.size() > options_.max_queue_bytes) {
      counters_.frames_dropped.fetch_add(1);
      return false;
    }
    asio::post(strand_, [self = shared_from_this(), b = std::move(bytes)]() mutable {
      self->enqueue(std::move(b));
    });
    return true;
  }

  // Says goodbye (best effort) and closes.
  void close(std::string reason) {
    asio::post(strand_, [self = shared_from_this(), r = std::move(reason)]() mutable {
      if (self->up_.load()) self->enqueue(make_frame(FrameType::goodbye, {}));
      self->closing_ = true;
      self->close_code_ = LinkError::closed;
      self->close_reason_ = std::move(r);
      self->wake_.cancel();
    });
  }

  bool up() const { return up_.load(); }
  bool closed() const { return closed_.load(); }
  Handshake::Role role() const { return role_; }
  // The authenticated peer; meaningful once up.
  const PeerIdentity& peer() const { return handshake_.peer(); }
  const std::string& remote() const { return remote_; }

 private:
  Link(asio::ip::tcp::socket socket, Handshake::Role role, HandshakeConfig config,
       LinkOptions options, Handlers handlers, LinkCounters& counters,
       std::shared_ptr<asio::ssl::context> tls)
      : strand_(socket.get_executor()),
        socket_(std::move(socket)),
        tls_context_(std::move(tls)),
        role_(role),
        handshake_(role, std::move(config)),
        options_(options),
        handlers_(std::move(handlers)),
        counters_(counters),
        decoder_(std::min(options.max_handshake_frame_bytes, options.max_frame_bytes)),
        wake_(strand_),
        tick_(strand_) {
    boost::system::error_code ec;
    const auto ep = socket_.remote_endpoint(ec);
    remote_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    if (tls_context_) tls_.emplace(std::move(socket_), *tls_context_);
    wake_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  // The TCP socket, inside the TLS stream or not.
  asio::ip::tcp::socket& tcp() { return tls_ ? tls_->next_layer() : socket_; }

  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kHandshakeReadBytes = 2 * 1024;
  static constexpr std::size_t kReadBytes = 64 * 1024;

  asio::awaitable<void> reader() {
    last_rx_ = Clock::now();
    started_ = last_rx_;
    if (tls_) {
      // Bounded by the watchdog's handshake_timeout like the rest of the handshake. The
      // writer waits for it (wire_ready_) before writing anything.
      auto [ec] = co_await tls_->async_handshake(role_ == Handshake::Role::client
                                                     ? asio::ssl::stream_base::client
                                                     : asio::ssl::stream_base::server,
                                                 asio::as_tuple(asio::use_awaitable));
      if (ec) {
        counters_.handshakes_failed.fetch_add(1);
        shutdown(LinkError::tls_failed, "tls handshake: " + ec.message());
        co_return;
      }
    }
    wire_ready_ = true;
    last_rx_ = Clock::now();  // a slow TLS handshake is not idleness
    if (std::string hello = handshake_.start(); !hello.empty()) enqueue(std::move(hello));
    wake_.cancel();
    // Small until the peer authenticated; then large, for throughput.
    std::vector<char> buf(kHandshakeReadBytes);
    while (!closed_.load()) {
      if (up_.load() && buf.size() < kReadBytes) buf.resize(kReadBytes);
      boost::system::error_code ec;
      std::size_t n = 0;
      if (tls_) {
        std::tie(ec, n) =
            co_await tls_->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      } else {
        std::tie(ec, n) = co_await socket_.async_read_some(asio::buffer(buf),
                                                           asio::as_tuple(asio::use_awaitable));
      }
      if (ec) {
        if (ec == asio::error::eof) {
          shutdown(LinkError::closed_by_peer, "closed by peer");
        } else {
          shutdown(LinkError::io_error, "read: " + ec.message());
        }
        co_return;
      }
      last_rx_ = Clock::now();
      counters_.bytes_in.fetch_add(n);
      decoder_.feed(std::string_view(buf.data(), n));
      for (;;) {
        auto next = decoder_.next();
        if (!next) {
          counters_.frames_rejected.fetch_add(1);
          shutdown(LinkError::malformed_frame, "malformed frame: " + next.error().message());
          co_return;
        }
        if (!*next) break;
        counters_.frames_in.fetch_add(1);
        handle(std::move(**next));
        if (closed_.load() || closing_) break;
      }
    }
  }

  void handle(Frame f) {
    if (!handshake_.done()) {
      std::string reply = handshake_.on_frame(f);
      if (!reply.empty()) enqueue(std::move(reply));
      if (handshake_.state() == Handshake::State::failed) {
        counters_.handshakes_failed.fetch_add(1);
        closing_ = true;  // the writer flushes the refusal, then closes
        close_code_ = handshake_.failure_code();
        close_reason_ = "handshake: " + handshake_.failure();
        wake_.cancel();
      } else if (handshake_.done()) {
        decoder_.set_max_payload(options_.max_frame_bytes);
        up_ = true;
        if (handlers_.on_up) handlers_.on_up(shared_from_this());
      }
      return;
    }
    switch (f.type) {
      case FrameType::heartbeat:
        return;
      case FrameType::goodbye:
        shutdown(LinkError::closed_by_peer, "peer said goodbye");
        return;
      case FrameType::hello:
      case FrameType::hello_ack:
      case FrameType::auth:
      case FrameType::auth_ok:
      case FrameType::refuse:
        counters_.frames_rejected.fetch_add(1);
        shutdown(LinkError::unexpected_frame, "handshake frame on an established link");
        return;
      default:
        if (handlers_.on_frame) handlers_.on_frame(shared_from_this(), std::move(f));
    }
  }

  void enqueue(std::string bytes) {
    if (closed_.load()) return;
    queued_bytes_.fetch_add(bytes.size());
    queue_.push_back(std::move(bytes));
    wake_.cancel();
  }

  asio::awaitable<void> writer() {
    std::string batch;
    while (!closed_.load()) {
      if (queue_.empty() || !wire_ready_) {
        if (closing_) {
          shutdown(close_code_, close_reason_);
          co_return;
        }
        (void)co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        wake_.expires_at(Clock::time_point::max());
        continue;
      }
      batch.clear();
      std::size_t frames = 0;
      while (!queue_.empty() && batch.size() < 1024 * 1024) {
        batch += queue_.front();
        queue_.pop_front();
        ++frames;
      }
      boost::system::error_code ec;
      std::size_t n = 0;
      if (tls_) {
        std::tie(ec, n) = co_await asio::async_write(*tls_, asio::buffer(batch),
                                                     asio::as_tuple(asio::use_awaitable));
      } else {
        std::tie(ec, n) = co_await asio::async_write(socket_, asio::buffer(batch),
                                                     asio::as_tuple(asio::use_awaitable));
      }
      if (ec) {
        shutdown(LinkError::io_error, "write: " + ec.message());
        co_return;
      }
      queued_bytes_.fetch_sub(n);
      counters_.bytes_out.fetch_add(n);
      counters_.frames_out.fetch_add(frames);
    }
  }

  asio::awaitable<void> watchdog() {
    while (!closed_.load()) {
      tick_.expires_after(options_.heartbeat_interval);
      (void)co_await tick_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (closed_.load()) co_return;
      const auto now = Clock::now();
      if (!up_.load() && now - started_ > options_.handshake_timeout) {
        counters_.handshakes_failed.fetch_add(1);
        shutdown(LinkError::handshake_timeout, "handshake timeout");
        co_return;
      }
      if (up_.load() && now - last_rx_ > options_.idle_timeout) {
        shutdown(LinkError::idle_timeout, "idle timeout");
        co_return;
      }
      if (up_.load()) enqueue(make_frame(FrameType::heartbeat, {}));
    }
  }

  // Completion of one of the link's loops (on the strand): an exception that escaped it (a
  // bug, or memory exhausted) closes the link, whose on_down then logs the reason, instead
  // of leaving a link that no longer reads, writes or times out.
  static std::function<void(std::exception_ptr)> ends_link(const Ptr& self, const char* loop) {
    return [self, loop](std::exception_ptr e) {
      if (!e) return;
      self->shutdown(LinkError::internal_error, std::string("internal error in the link's ") +
                                                    loop + ": " + exception_message(e));
    };
  }

  void shutdown(LinkError code, const std::string& reason) {
    if (closed_.exchange(true)) return;
    // No TLS close_notify: the goodbye frame already ended the conversation, and a peer
    // that gets no further bytes treats the closed connection like any other.
    boost::system::error_code ec;
    tcp().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    tcp().close(ec);
    wake_.cancel();
    tick_.cancel();
    queue_.clear();
    queued_bytes_.store(0);
    if (handlers_.on_down) handlers_.on_down(shared_from_this(), code, reason, up_.load());
    handlers_ = {};  // drop references the owner may hold through them
  }

  asio::any_io_executor strand_;
  asio::ip::tcp::socket socket_;  // moved into tls_ when the link speaks TLS
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
  bool wire_ready_ = false;  // TLS handshake done (or no TLS): the writer may write
  Handshake::Role role_;
  Handshake handshake_;
  LinkOptions options_;
  Handlers handlers_;
  LinkCounters& counters_;
  FrameDecoder decoder_;
  asio::steady_timer wake_;  // the writer sleeps on it; cancel() wakes it
  asio::steady_timer tick_;
  std::deque<std::string> queue_;
  std::atomic<std::size_t> queued_bytes_{0};
  std::atomic<bool> closed_{false};
  bool closing_ = false;
  std::atomic<bool> up_{false};
  LinkError close_code_ = LinkError::closed;
  std::string close_reason_;
  std::string remote_;
  Clock::time_point last_rx_{};
  Clock::time_point started_{};
};

}  // namespace deltacrdt::transport
