// HttpServer implementation (see http_server.hpp). Sessions register themselves so stop()
// can close idle connections at once and busy ones after their response.
#include "examples/link_shortener/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <iterator>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/beast/core.hpp>

#include "cluster/io_threads.hpp"
#include "cluster/host_port.hpp"
#include "examples/link_shortener/request_rules.hpp"

namespace deltacrdt::shortener {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;

struct HttpServer::Impl {
  struct Session {
    asio::strand<asio::any_io_executor> strand;
    beast::tcp_stream* stream = nullptr;
    bool busy = false;  // between a request read and its response written
  };

  HttpServerOptions options;
  HttpHandler handler;
  // Declared before everything bound to it; destroyed last.
  IoThreads io;
  // The acceptor lives on its own strand: accept_loop and stop() both touch it.
  asio::strand<asio::io_context::executor_type> accept_strand{asio::make_strand(io.context())};
  tcp::acceptor acceptor{accept_strand};
  std::uint16_t port = 0;
  std::mutex mu;
  std::map<std::uint64_t, Session> sessions;  // guarded by mu
  std::uint64_t next_session = 0;
  bool stopping = false;  // guarded by mu
  std::atomic<std::size_t> connections{0};
  std::map<std::string, std::size_t> per_address;  // open connections by source, guarded by mu
  HttpServerStats counts;                          // guarded by mu
  LogThrottle throttle;
  std::once_flag stop_once;

  explicit Impl(HttpServerOptions o)
      : options(std::move(o)), io(std::max<std::size_t>(1, options.threads)) {}

  // Logs `event` at most once per interval, with how many were held back since.
  void log_throttled(std::string_view event, std::initializer_list<Logger::Field> fields) {
    std::uint64_t held = 0;
    if (!options.logger || !options.logger->enabled(LogLevel::warn) ||
        !throttle.allow(event, held)) {
      return;
    }
    std::vector<Logger::Field> all(fields.begin(), fields.end());
    const std::string suppressed = std::to_string(held);
    if (held != 0) all.emplace_back("suppressed", suppressed);
    options.logger->log(LogLevel::warn, event, std::span<const Logger::Field>(all));
  }

  asio::awaitable<void> accept_loop() {
    std::chrono::milliseconds backoff{0};
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // Out of descriptors or similar: back off (10 ms doubling to 1 s) instead of spinning.
        backoff =
            std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
        {
          std::lock_guard lock(mu);
          ++counts.accept_errors;
        }
        log_throttled("http_accept_failed", {{"reason", ec.message()}});
        asio::steady_timer pause(acceptor.get_executor(), backoff);
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      backoff = std::chrono::milliseconds(0);
      boost::system::error_code rec;
      const auto remote = socket.remote_endpoint(rec);
      std::string source = rec ? std::string("?") : remote.address().to_string();
      const char* refused = nullptr;
      {
        std::lock_guard lock(mu);
        std::size_t& mine = per_address[source];
        if (connections.load() >= options.max_connections) {
          ++counts.refused_server_full;
          refused = "server at max_connections";
        } else if (mine >= options.max_connections_per_address) {
          ++counts.refused_address_full;
          refused = "address at max_connections_per_address";
        } else {
          ++mine;
          ++connections;
        }
        if (refused != nullptr && mine == 0) per_address.erase(source);
      }
      if (refused != nullptr) {
        boost::system::error_code ignored;
        socket.close(ignored);
        log_throttled("http_connection_refused", {{"remote", source}, {"reason", refused}});
        continue;
      }
      auto strand = asio::make_strand(io.executor());
      asio::co_spawn(strand, session(std::move(socket), strand, std::move(source)), asio::detached);
    }
  }

  // Registers a session's stream; nullopt when the server is stopping.
  std::optional<std::uint64_t> enter(asio::strand<asio::any_io_executor> strand,
                                     beast::tcp_stream* stream) {
    std::lock_guard lock(mu);
    if (stopping) return std::nullopt;
    sessions.emplace(next_session, Session{std::move(strand), stream, false});
    return next_session++;
  }
  void leave(std::uint64_t id) {
    std::lock_guard lock(mu);
    sessions.erase(id);
  }
  // Marks a session busy (a request is being served); false when the server is stopping
  // and the session should close instead.
  bool set_busy(std::uint64_t id, bool busy) {
    std::lock_guard lock(mu);
    sessions.at(id).busy = busy;
    return !stopping;
  }

  static unsigned status_for_read_error(const boost::system::error_code& ec) {
    if (ec == http::error::body_limit) return 413;
    if (ec == http::error::header_limit) return 431;
    return 400;
  }

  // Counted in `connections` and per_address by accept_loop; uncounted here at the end.
  asio::awaitable<void> session(tcp::socket socket, asio::strand<asio::any_io_executor> strand,
                                std::string source) {
    beast::tcp_stream stream(std::move(socket));
    const auto id = enter(strand, &stream);
    if (id) {
      try {
        co_await serve(stream, *id);
      } catch (const std::exception&) {
        // A connection-level failure (e.g. allocation); other connections are unaffected.
      }
      leave(*id);
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    {
      std::lock_guard lock(mu);
      if (auto it = per_address.find(source); it != per_address.end() && --it->second == 0) {
        per_address.erase(it);
      }
    }
    --connections;
  }

  // Answers a request the server refuses by itself (the handler never sees it) and ends
  // the connection: after a malformed request the byte stream cannot be trusted to hold
  // another request where it seems to (request smuggling).
  asio::awaitable<void> refuse(beast::tcp_stream& stream, unsigned status, std::string why) {
    {
      std::lock_guard lock(mu);
      ++counts.bad_requests;
    }
    Response res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::connection, "close");
    res.body() = "bad request: " + why + "\n";
    res.prepare_payload();
    stream.expires_after(options.timeout);
    co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    // A lingering close: the client may still be sending (the rest of what was refused).
    // Closing with unread bytes would reset the connection, and a reset can destroy the
    // answer before the client reads it; so stop sending, then read and drop what comes
    // for a moment (bounded in time and bytes) before the caller closes.
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds(1));
    std::array<char, 4096> sink{};
    for (std::size_t drained = 0; drained < 256 * 1024;) {
      auto [ec, n] =
          co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      drained += n;
    }
  }

  // Whether a read error is the parser refusing the request (which gets an answer), rather
  // than the connection closing, resetting or timing out (which gets none).
  static bool parser_refused(const boost::system::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }

  asio::awaitable<void> serve(beast::tcp_stream& stream, std::uint64_t id) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      parser.body_limit(options.max_body_bytes);
      // The head first, under its own short deadline; then the body under the longer one.
      stream.expires_after(options.header_timeout);
      auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser,
                                                        asio::as_tuple(asio::use_awaitable));
      (void)hn;
      if (hec) {
        if (parser_refused(hec)) {
          co_await refuse(stream, status_for_read_error(hec), hec.message());
        } else if (hec == beast::error::timeout && buffer.size() != 0) {
          std::lock_guard lock(mu);
          ++counts.header_timeouts;  // a head begun and never finished (an idle one is not)
        }
        co_return;
      }
      if (const auto refusal = transfer_encoding_refusal(parser)) {
        co_await refuse(stream, refusal->status, std::string(refusal->reason));
        co_return;
      }
      stream.expires_after(options.timeout);
      auto [ec, n] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      (void)n;
      if (ec) {
        if (parser_refused(ec)) co_await refuse(stream, status_for_read_error(ec), ec.message());
        co_return;
      }
      if (!set_busy(id, true)) co_return;
      const Request& req = parser.get();
      Response res;
      try {
        res = co_await handler(req);
      } catch (const std::exception& e) {
        res = Response{http::status::internal_server_error, req.version()};
        res.set(http::field::content_type, "text/plain");
        res.body() = std::string("internal error: ") + e.what() + "\n";
      }
      res.version(req.version());
      res.keep_alive(req.keep_alive() && !is_stopping());
      res.prepare_payload();
      // A response to HEAD carries the headers (Content-Length included) but no body.
      if (req.method() == http::verb::head) res.body().clear();
      stream.expires_after(options.timeout);
      // Still busy while the response is written: stop() must not cut it off.
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      (void)wn;
      // Idle again; closed instead when the server is stopping.
      if (!set_busy(id, false) || wec || !res.keep_alive()) co_return;
    }
  }

  bool is_stopping() {
    std::lock_guard lock(mu);
    return stopping;
  }

  // Concurrent and repeated calls all return once the first has finished (std::call_once).
  void stop() {
    std::call_once(stop_once, [this] { stop_now(); });
  }

  void stop_now() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    asio::post(acceptor.get_executor(), [this] {
      boost::system::error_code ignored;
      acceptor.close(ignored);
    });
    // Idle connections close now; busy ones after their response (set_busy refuses).
    close_sessions(/*busy_too=*/false);
    const auto until = std::chrono::steady_clock::now() + options.drain;
    while (connections.load() > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    close_sessions(/*busy_too=*/true);
    const auto hard = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (connections.load() > 0 && std::chrono::steady_clock::now() < hard) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    io.join();
  }

  void close_sessions(bool busy_too) {
    std::lock_guard lock(mu);
    for (auto& [id, s] : sessions) {
      if (s.busy && !busy_too) continue;
      // On the session's strand, and only if it is still registered: the session leaves
      // the registry on that strand before its stream is destroyed.
      asio::post(s.strand, [this, id = id] {
        std::lock_guard inner(mu);
        if (const auto it = sessions.find(id); it != sessions.end()) it->second.stream->cancel();
      });
    }
  }
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {
  const HostPort listen = parse_host_port(impl_->options.listen, "http");
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(listen.host, ec);
  if (ec) {
    throw std::invalid_argument("http address '" + impl_->options.listen +
                                "': host must be an IP address");
  }
  const tcp::endpoint ep(ip, listen.port);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
}

void HttpServer::start(HttpHandler handler) {
  impl_->handler = std::move(handler);
  // The loop handles every error as a value; an exception escaping it (a bug) is reported
  // rather than silently ending the service.
  asio::co_spawn(impl_->accept_strand, impl_->accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "http server: accept loop failed: %s\n", x.what());
    }
  });
}

HttpServer::~HttpServer() { stop(); }

std::uint16_t HttpServer::port() const { return impl_->port; }

HttpServerStats HttpServer::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counts;
}

void HttpServer::stop() { impl_->stop(); }

}  // namespace deltacrdt::shortener
