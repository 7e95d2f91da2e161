// HttpServer: a small HTTP/1.1 server on Boost.Beast for the link shortener's API. Every
// connection is one coroutine on its own strand; requests are read with bounded headers
// and bodies and a deadline, so malformed requests, oversized ones and slow clients cost
// one connection, never the server. Keep-alive is honoured.
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
  // A request must arrive whole, and a response be written, within this; an idle
  // keep-alive connection is closed after it too.
  std::chrono::milliseconds timeout{10000};
  // Connections beyond this are closed as soon as they are accepted.
  std::size_t max_connections = 1024;
  // How long stop() lets in-flight requests finish.
  std::chrono::milliseconds drain{2000};
};

// Produces the response to a request (status, headers, body); exceptions become 500.
using HttpHandler = std::function<asio::awaitable<Response>(const Request&)>;

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
  // Starts accepting; call once.
  void start(HttpHandler handler);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace deltacrdt::shortener
