// Api: the link shortener's HTTP routes (docs/link-shortener.md) over a LinkStore.
//
//   POST /                    form url=...     -> 201, Location: http://<host>/<code>, body code
//   GET  /<code>              -> 302 to the URL (counts a redirect), 404, or 300 if ambiguous
//                                (503 with Retry-After instead of 404 while not ready)
//   GET  /<code>/aggregates   -> 200 "Redirects: <n>" (summed over the cluster)
//   DELETE /<code>            -> 204 or 404
//   POST /api/links {"url"}   -> 201 {"code","url","short_url"}
//   GET  /api/links/<code>    -> 200 {"code","url","redirects"} (counts nothing)
//   GET  /_health (liveness), /_ready (200, or 503 until caught up), /_cluster (JSON),
//        /metrics (Prometheus text)
//   DELETE /_cluster/members/<name>  (admin: Authorization: Bearer <token>) -> 200 JSON
//   GET  /  (the web page), /static/app.js, /static/app.css
//   GET  /api/links?limit=N&cursor=C -> {"links":[{"code","url","short_url","redirects",
//        "written_ms"}],"next"}; GET /api/cluster -> {"node","members":[...],"agree"}
//
// Thread-safe: handle() runs concurrently for different connections. The store, node and
// metrics must outlive the Api.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/node.hpp"
#include "examples/link_shortener/http_server.hpp"
#include "examples/link_shortener/link_store.hpp"
#include "examples/link_shortener/request_metrics.hpp"
#include "examples/link_shortener/routes.hpp"

namespace deltacrdt::shortener {

// A request header that overrides ApiOptions::write_concern for one shorten or delete:
// local, durable, majority or all (anything else: 400).
inline constexpr const char* kWriteConcernHeader = "X-Write-Concern";

// A request header that overrides ApiOptions::read_concern for one lookup (GET or HEAD
// /<code>, /<code>/aggregates, /api/links/<code>): local, majority or all (else 400).
inline constexpr const char* kReadConcernHeader = "X-Read-Concern";

struct ApiOptions {
  // When a shorten or delete returns (cluster/write_concern.hpp), unless the request's
  // X-Write-Concern header says otherwise.
  WriteConcern write_concern = WriteConcern::durable();
  // What a lookup waits for (cluster/read_concern.hpp), unless X-Read-Concern says otherwise.
  ReadConcern read_concern = ReadConcern::local();
  // host[:port] for short URLs when a request carries no usable Host header.
  std::string public_host = "127.0.0.1:8080";
  // The bearer token the admin routes require (Authorization: Bearer ...); empty: they
  // answer 403.
  std::string admin_token;
};

class Api {
 public:
  Api(LinkStore& store, Node& node, RequestMetrics& metrics, ApiOptions options)
      : store_(store), node_(node), metrics_(metrics), options_(std::move(options)) {}

  asio::awaitable<Response> handle(const Request& req);

  // Where /metrics reads the HTTP server's refusal counters (set once, before serving).
  void set_http_stats(std::function<HttpServerStats()> stats) { http_stats_ = std::move(stats); }

 private:
  asio::awaitable<Response> route(const Request& req, std::string& route_name);
  // The handler of a planned route (the plan must outlive the awaitable).
  asio::awaitable<Response> dispatch(const Request& req, const RoutePlan& plan);
  asio::awaitable<Response> shorten(const Request& req, const std::string& url, bool json);
  asio::awaitable<Response> follow(const Request& req, const std::string& code);
  asio::awaitable<Response> aggregates(const Request& req, const std::string& code);
  asio::awaitable<Response> remove(const Request& req, const std::string& code);
  asio::awaitable<Response> describe(const Request& req, const std::string& code);
  asio::awaitable<Response> metrics(const Request& req);
  asio::awaitable<Response> readiness(const Request& req);
  // GET / and its two files (web_assets.hpp), with headers that keep the page from running
  // anything not served here.
  Response page(const Request& req, std::string_view name) const;
  // GET /api/links?limit=N&cursor=C: recent links, newest first, with their counts.
  asio::awaitable<Response> list(const Request& req, std::size_t limit, const std::string& cursor);
  // GET /api/cluster: members, the links each holds, and whether they hold the same writes.
  asio::awaitable<Response> cluster_panel(const Request& req);
  // DELETE /_cluster/members/<name> (an admin route): Node::remove_member.
  Response remove_member(const Request& req, const std::string& name);
  // Whether the request carries the admin token; otherwise the answer to send (401, or 403
  // when the admin routes are disabled).
  std::optional<Response> unless_admin(const Request& req) const;
  // A code's resolution (and redirect count) under the request's read concern, or the
  // answer to send instead: a bad X-Read-Concern (400), a concern not met (503), or an
  // unknown code while the store is not ready (503).
  struct Lookup {
    Resolution resolution;
    std::int64_t redirects = 0;
    std::optional<Response> answer;
  };
  asio::awaitable<Lookup> look_up(const Request& req, const std::string& code, bool as_json,
                                  bool with_count);
  // The answer instead of "not found" while the store is not ready (nullopt when it is).
  asio::awaitable<std::optional<Response>> unless_ready(const Request& req, bool as_json);
  Response cluster(const Request& req) const;
  std::string short_url(const Request& req, const std::string& code) const;

  LinkStore& store_;
  Node& node_;
  RequestMetrics& metrics_;
  ApiOptions options_;
  std::function<HttpServerStats()> http_stats_;
};

}  // namespace deltacrdt::shortener
