// HttpServer: a small HTTP/1.1 server on Boost.Beast for the link shortener's API. Every
// connection is one coroutine on its own strand; requests are read with bounded headers
// and bodies, a short deadline for the request head and another for the rest, so
// malformed requests, oversized ones and slow clients cost one connection, never the
// server. Connections are bounded in all and per source address, so that one client
// cannot hold every slot; refusals are counted (stats()) and logged at most once per
// interval. Keep-alive is honoured.
//
// Thread-safe: construct (binds), start(handler); the handler then runs on the server's
// threads, concurrently for different connections. stop() (also run by the destructor) stops
// accepting, lets in-flight requests finish for up to `drain`, closes the rest and joins the
// threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/beast/http.hpp>

#include "cluster/log.hpp"
#include "transport/asio.hpp"

namespace deltacrdt::shortener {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:8080";  // IP:port (port 0: any free port)
  std::size_t threads = 2;
  // Bounds of one request: a URL is at most 2 KiB, so these leave ample room while keeping
  // a hostile client's cost per connection small.
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;
  // The request line and headers must have arrived this long after the server began
  // waiting for them (at accept, or after the previous response: an idle keep-alive
  // connection is closed after it too). Short, so that a client trickling header bytes
  // (slowloris) holds a connection only briefly.
  std::chrono::milliseconds header_timeout{5000};
  // Then the body must arrive, and the response be written, within this.
  std::chrono::milliseconds timeout{10000};
  // Connections beyond either bound are closed as soon as they are accepted. The
  // per-address bound keeps one client from holding every slot; raise it when clients
  // arrive through one proxy or NAT address.
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_address = 256;
  // Where refusals and failed accepts are logged (once per interval each); null: nowhere.
  std::shared_ptr<Logger> logger;
  // How long stop() lets in-flight requests finish.
  std::chrono::milliseconds drain{2000};
};

// Produces the response to a request (status, headers, body); exceptions become 500.
using HttpHandler = std::function<asio::awaitable<Response>(const Request&)>;

// What the server refused or dropped before a handler saw it (monotone counters).
struct HttpServerStats {
  std::uint64_t refused_server_full = 0;   // max_connections reached
  std::uint64_t refused_address_full = 0;  // max_connections_per_address reached
  std::uint64_t accept_errors = 0;         // failed accepts (e.g. out of descriptors)
  std::uint64_t bad_requests = 0;          // answered 4xx by the server itself, then closed
  std::uint64_t header_timeouts = 0;       // closed waiting for a request head
};

class HttpServer {
 public:
  // Binds; throws std::invalid_argument or a system_error (address in use, permission) when
  // the address cannot be bound. Connections wait in the backlog until start().
  explicit HttpServer(HttpServerOptions options);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // The bound port (useful after listening on port 0).
  std::uint16_t port() const;
  HttpServerStats stats() const;
  // Starts accepting; call once.
  void start(HttpHandler handler);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace deltacrdt::shortener
