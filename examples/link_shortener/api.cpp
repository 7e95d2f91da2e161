// Api implementation (see api.hpp). Every response is built here; errors are plain text on
// the classic routes and {"error": ...} on /api/.
#include "examples/link_shortener/api.hpp"

#include <cstdio>
#include <exception>
#include <map>
#include <string_view>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "cluster/file_storage.hpp"
#include "examples/link_shortener/routes.hpp"
#include "examples/link_shortener/web_assets.hpp"

namespace deltacrdt::shortener {

namespace json = boost::json;

namespace {

Response text(const Request& req, http::status status, std::string body) {
  Response res{status, req.version()};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  return res;
}

Response json_response(const Request& req, http::status status, const json::value& v) {
  Response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.body() = json::serialize(v) + "\n";
  return res;
}

Response error(const Request& req, http::status status, const std::string& message, bool as_json) {
  if (as_json) return json_response(req, status, json::object{{"error", message}});
  return text(req, status, message + "\n");
}

// A Host header fit to put into a URL: host[:port] characters only.
bool usable_host(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  for (const char c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// The write concern a request asks for in its X-Write-Concern header (local, durable,
// majority or all; the timeout is the node's), `fallback` without the header, nullopt for
// any other value.
std::optional<WriteConcern> requested_concern(const Request& req, const WriteConcern& fallback) {
  const auto found = req.find(kWriteConcernHeader);
  if (found == req.end()) return fallback;
  const std::string_view v = found->value();
  if (v == "local") return WriteConcern::local();
  if (v == "durable") return WriteConcern::durable();
  if (v == "majority") return WriteConcern::majority(fallback.timeout);
  if (v == "all") return WriteConcern::all(fallback.timeout);
  return std::nullopt;
}

// The read concern a request asks for in its X-Read-Concern header (local, majority or all;
// the timeout is the node's), `fallback` without the header, nullopt for any other value.
std::optional<ReadConcern> requested_read_concern(const Request& req, const ReadConcern& fallback) {
  const auto found = req.find(kReadConcernHeader);
  if (found == req.end()) return fallback;
  const std::string_view v = found->value();
  if (v == "local") return ReadConcern::local();
  if (v == "majority") return ReadConcern::majority(fallback.timeout);
  if (v == "all") return ReadConcern::all(fallback.timeout);
  return std::nullopt;
}

Response bad_concern(const Request& req, bool as_json) {
  return error(req, http::status::bad_request,
               std::string(kWriteConcernHeader) + " must be local, durable, majority or all",
               as_json);
}

}  // namespace

asio::awaitable<Response> Api::handle(const Request& req) {
  std::string route_name = "other";
  Response res = co_await route(req, route_name);
  metrics_.count(route_name, res.result_int());
  co_return res;
}

std::string Api::short_url(const Request& req, const std::string& code) const {
  const std::string_view host = req[http::field::host];
  return "http://" + std::string(usable_host(host) ? host : options_.public_host) + "/" + code;
}

asio::awaitable<Response> Api::route(const Request& req, std::string& route_name) {
  const RoutePlan plan = plan_route(req.method(), req.target(), req.body());
  route_name = plan.name;
  // The handler's awaitable is made by a plain function and awaited from a variable: one
  // co_await here, none on a temporary (see link_store.hpp on g++ 12 and co_await).
  auto op = dispatch(req, plan);
  co_return co_await std::move(op);
}

namespace {
asio::awaitable<Response> ready(Response res) { co_return res; }
}  // namespace

asio::awaitable<Response> Api::dispatch(const Request& req, const RoutePlan& plan) {
  switch (plan.route) {
    case Route::answered: {
      Response res = error(req, static_cast<http::status>(plan.status), plan.message, plan.json);
      if (!plan.allow.empty()) res.set(http::field::allow, plan.allow);
      return ready(std::move(res));
    }
    case Route::shorten:
    case Route::api_create:
      return shorten(req, plan.url, plan.json);
    case Route::api_get:
      return describe(req, plan.code);
    case Route::health:
      return ready(text(req, http::status::ok, "ok\n"));
    case Route::ready:
      return readiness(req);
    case Route::cluster:
      return ready(cluster(req));
    case Route::remove_member:
      return ready(remove_member(req, plan.code));
    case Route::page:
      return ready(page(req, ""));
    case Route::asset:
      return ready(page(req, plan.code));
    case Route::api_list:
      return list(req, plan.limit, plan.cursor);
    case Route::api_cluster:
      return cluster_panel(req);
    case Route::metrics:
      return metrics(req);
    case Route::aggregates:
      return aggregates(req, plan.code);
    case Route::remove:
      return remove(req, plan.code);
    case Route::redirect:
      return follow(req, plan.code);
  }
  return ready(error(req, http::status::not_found, "not found", false));
}

asio::awaitable<Response> Api::shorten(const Request& req, const std::string& url, bool as_json) {
  if (const auto problem = url_problem(url)) {
    co_return error(req, http::status::unprocessable_entity, *problem, as_json);
  }
  const std::optional<WriteConcern> concern = requested_concern(req, options_.write_concern);
  if (!concern) co_return bad_concern(req, as_json);
  std::optional<std::string> code;
  try {
    auto op = store_.shorten(url, *concern);  // see link_store.hpp on co_await
    code = co_await std::move(op);
  } catch (const WriteConcernTimeout& e) {
    // The link is stored here and keeps replicating; the client learns it was not confirmed.
    Response res = error(req, http::status::service_unavailable,
                         fmt::format("the link was stored on this node, but only {} of {} "
                                     "required nodes confirmed it in time",
                                     e.acknowledged(), e.required()),
                         as_json);
    res.set(http::field::retry_after, "1");
    co_return res;
  } catch (const std::exception& e) {
    co_return error(req, http::status::internal_server_error,
                    std::string("the link could not be stored durably: ") + e.what(), as_json);
  }
  if (!code) {
    co_return error(req, http::status::conflict,
                    "every short code of this url is taken by another url", as_json);
  }
  const std::string location = short_url(req, *code);
  Response res =
      as_json ? json_response(req, http::status::created,
                              json::object{{"code", *code}, {"url", url}, {"short_url", location}})
              : text(req, http::status::created, *code);
  res.set(http::field::location, location);
  co_return res;
}

asio::awaitable<Api::Lookup> Api::look_up(const Request& req, const std::string& code,
                                          bool as_json, bool with_count) {
  Lookup out;
  const std::optional<ReadConcern> concern = requested_read_concern(req, options_.read_concern);
  if (!concern) {
    out.answer = error(req, http::status::bad_request,
                       std::string(kReadConcernHeader) + " must be local, majority or all", as_json);
    co_return out;
  }
  try {
    auto resolving = store_.resolve(code, *concern);
    out.resolution = co_await std::move(resolving);
    if (out.resolution.urls.empty()) {
      auto waiting = unless_ready(req, as_json);
      out.answer = co_await std::move(waiting);
    } else if (with_count) {
      auto counting = store_.redirects(code, *concern);
      out.redirects = co_await std::move(counting);
    }
  } catch (const ReadConcernTimeout& e) {
    Response res = error(req, http::status::service_unavailable,
                         fmt::format("only {} of {} required nodes answered in time",
                                     e.caught_up(), e.required()),
                         as_json);
    res.set(http::field::retry_after, "1");
    out.answer = std::move(res);
  }
  co_return out;
}

asio::awaitable<Response> Api::follow(const Request& req, const std::string& code) {
  auto looking = look_up(req, code, false, false);
  Lookup found = co_await std::move(looking);
  if (found.answer) co_return std::move(*found.answer);
  const Resolution& r = found.resolution;
  if (r.urls.empty()) co_return text(req, http::status::not_found, "not found\n");
  if (r.urls.size() > 1) {
    // Different URLs were written to this code concurrently: say so instead of guessing.
    metrics_.count_conflict();
    std::string body = "this code was given to more than one url concurrently:\n";
    for (const auto& u : r.urls) body += u + "\n";
    co_return text(req, http::status::multiple_choices, std::move(body));
  }
  if (req.method() == http::verb::get) store_.count_redirect(code);
  Response res = text(req, http::status::found, r.urls.front());
  res.set(http::field::location, r.urls.front());
  co_return res;
}

asio::awaitable<Response> Api::aggregates(const Request& req, const std::string& code) {
  auto looking = look_up(req, code, false, true);
  Lookup found = co_await std::move(looking);
  if (found.answer) co_return std::move(*found.answer);
  if (found.resolution.urls.empty()) co_return text(req, http::status::not_found, "not found\n");
  co_return text(req, http::status::ok, fmt::format("Redirects: {}", found.redirects));
}

asio::awaitable<Response> Api::remove(const Request& req, const std::string& code) {
  const std::optional<WriteConcern> concern = requested_concern(req, options_.write_concern);
  if (!concern) co_return bad_concern(req, false);
  bool existed = false;
  try {
    auto op = store_.remove(code, *concern);
    existed = co_await std::move(op);
  } catch (const WriteConcernTimeout& e) {
    co_return text(req, http::status::service_unavailable,
                   fmt::format("deleted on this node, but only {} of {} required nodes "
                               "confirmed it in time\n",
                               e.acknowledged(), e.required()));
  } catch (const std::exception& e) {
    co_return text(req, http::status::internal_server_error,
                   std::string("the delete could not be stored durably: ") + e.what() + "\n");
  }
  if (!existed) {
    auto waiting = unless_ready(req, false);
    if (auto res = co_await std::move(waiting)) co_return std::move(*res);
    co_return text(req, http::status::not_found, "not found\n");
  }
  co_return Response{http::status::no_content, req.version()};
}

asio::awaitable<std::optional<Response>> Api::unless_ready(const Request& req, bool as_json) {
  auto checking = store_.ready();
  if (co_await std::move(checking)) co_return std::nullopt;
  // A node that started empty and is still catching up may lack a link its peers hold:
  // "not found" would be a wrong answer; a retry soon will find it.
  Response res = error(req, http::status::service_unavailable,
                       "this node is still catching up with the cluster; retry shortly", as_json);
  res.set(http::field::retry_after, "1");
  co_return res;
}

Response Api::page(const Request& req, std::string_view name) const {
  Response res{http::status::ok, req.version()};
  if (name == "app.js") {
    res.set(http::field::content_type, "text/javascript; charset=utf-8");
    res.body() = std::string(app_js());
  } else if (name == "app.css") {
    res.set(http::field::content_type, "text/css; charset=utf-8");
    res.body() = std::string(app_css());
  } else {
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.body() = std::string(page_html());
  }
  // Only this node's own script, style and JSON: an injected script or a remote resource
  // would be refused by the browser even if escaping ever failed.
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
          "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set(http::field::cache_control, "no-cache");
  return res;
}

asio::awaitable<Response> Api::list(const Request& req, std::size_t limit,
                                    const std::string& cursor) {
  // A cursor is "<16 hex digits of the timestamp>-<code>", as the previous page gave it.
  std::optional<LinkStore::Cursor> after;
  if (!cursor.empty()) {
    const std::size_t dash = cursor.find('-');
    unsigned long long ts = 0;
    const std::string code = dash == std::string::npos ? "" : cursor.substr(dash + 1);
    if (dash != 16 || std::sscanf(cursor.substr(0, 16).c_str(), "%16llx", &ts) != 1 ||
        !looks_like_code(code)) {
      co_return error(req, http::status::bad_request, "malformed cursor", true);
    }
    after = LinkStore::Cursor{ts, code};
  }
  auto listing = store_.recent(limit, after);
  const LinkStore::Page page = co_await std::move(listing);
  json::array links;
  for (const auto& l : page.links) {
    links.push_back(json::object{{"code", l.code},
                                 {"url", l.url},
                                 {"short_url", short_url(req, l.code)},
                                 {"redirects", l.redirects},
                                 {"written_ms", l.timestamp >> 16}});
  }
  json::value next = nullptr;
  if (page.next) next = json::string(fmt::format("{:016x}-{}", page.next->timestamp, page.next->code));
  co_return json_response(req, http::status::ok,
                          json::object{{"links", std::move(links)}, {"next", std::move(next)}});
}

asio::awaitable<Response> Api::cluster_panel(const Request& req) {
  auto mine = store_.figures();
  const LinkStore::Figures here = co_await std::move(mine);
  auto published = store_.published_figures();
  const std::map<std::string, LinkStore::Figures> figures = co_await std::move(published);
  json::array members;
  members.push_back(json::object{{"name", node_.name()},
                                 {"status", "up"},
                                 {"self", true},
                                 {"links", here.links},
                                 {"in_sync", true}});
  // Every member up publishes what it holds about once a second; they agree when each one
  // up holds the same writes as this node (its last figures may lag by that second).
  bool agree = true;
  for (const MemberInfo& m : node_.members()) {
    json::object member{{"name", m.name}, {"status", to_string(m.status)}, {"self", false}};
    auto f = figures.find(m.name);
    if (f == figures.end() || m.status == MemberInfo::Status::removed) {
      member["links"] = nullptr;
      member["in_sync"] = nullptr;
      agree = agree && m.status != MemberInfo::Status::up;
    } else {
      const bool same = f->second.links_digest == here.links_digest &&
                        f->second.redirects_digest == here.redirects_digest;
      member["links"] = f->second.links;
      member["in_sync"] = same;
      if (m.status == MemberInfo::Status::up) agree = agree && same;
    }
    members.push_back(std::move(member));
  }
  co_return json_response(req, http::status::ok,
                          json::object{{"node", node_.name()},
                                       {"members", std::move(members)},
                                       {"agree", agree}});
}

std::optional<Response> Api::unless_admin(const Request& req) const {
  if (options_.admin_token.empty()) {
    return error(req, http::status::forbidden,
                 "admin routes are disabled: start the node with --admin-token-file", true);
  }
  const std::string_view given = req[http::field::authorization];
  const std::string expected = "Bearer " + options_.admin_token;
  // Compared in time independent of where they differ: the token is a password.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  if (diff == 0) return std::nullopt;
  Response res = error(req, http::status::unauthorized,
                       "this route needs Authorization: Bearer <the admin token>", true);
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

Response Api::remove_member(const Request& req, const std::string& name) {
  if (auto refused = unless_admin(req)) return std::move(*refused);
  try {
    const bool removed = node_.remove_member(name);
    return json_response(req, http::status::ok,
                         json::object{{"member", name}, {"removed", removed},
                                      {"already_removed", !removed}});
  } catch (const std::invalid_argument& e) {
    const bool self = name == node_.name();
    return error(req, self ? http::status::bad_request : http::status::not_found, e.what(), true);
  }
}

asio::awaitable<Response> Api::readiness(const Request& req) {
  if (node_.removed()) {
    co_return text(req, http::status::service_unavailable,
                   "this node was removed from the cluster; wipe its data directory and "
                   "restart it to rejoin\n");
  }
  auto checking = store_.ready();
  if (co_await std::move(checking)) co_return text(req, http::status::ok, "ready\n");
  Response res = text(req, http::status::service_unavailable, "catching up\n");
  res.set(http::field::retry_after, "1");
  co_return res;
}

asio::awaitable<Response> Api::describe(const Request& req, const std::string& code) {
  auto looking = look_up(req, code, true, true);
  Lookup found = co_await std::move(looking);
  if (found.answer) co_return std::move(*found.answer);
  const Resolution& r = found.resolution;
  if (r.urls.empty()) co_return error(req, http::status::not_found, "unknown code", true);
  json::object body{{"code", code}, {"redirects", found.redirects}};
  if (r.urls.size() == 1) {
    body["url"] = r.urls.front();
  } else {
    json::array urls;
    for (const auto& u : r.urls) urls.emplace_back(u);
    body["url"] = nullptr;
    body["conflicting_urls"] = std::move(urls);
  }
  co_return json_response(req, http::status::ok, body);
}

Response Api::cluster(const Request& req) const {
  json::array members;
  for (const MemberInfo& m : node_.members()) {
    json::object member{{"name", m.name}, {"status", to_string(m.status)}};
    if (m.status == MemberInfo::Status::removed) member["removed_at_ms"] = m.removed_at_ms;
    members.push_back(std::move(member));
  }
  // Both replicas share one policy (--neighbours); "links" stands for them.
  json::array pushing_to;
  for (const auto& name : node_.pushing_to(LinkStore::kLinksReplica))
    pushing_to.push_back(json::string(name));
  return json_response(req, http::status::ok,
                       json::object{{"node", node_.name()},
                                    {"address", node_.address()},
                                    {"removed", node_.removed()},
                                    {"members", std::move(members)},
                                    {"neighbours", node_.neighbours(LinkStore::kLinksReplica).describe()},
                                    {"pushing_to", std::move(pushing_to)}});
}

asio::awaitable<Response> Api::metrics(const Request& req) {
  std::string out;
  metrics_.render(out);
  auto sizing = store_.size();
  const std::size_t links = co_await std::move(sizing);
  out += "# HELP link_shortener_links Links visible on this node.\n";
  out += "# TYPE link_shortener_links gauge\n";
  out += fmt::format("link_shortener_links {}\n", links);

  const NodeMetrics n = node_.metrics();
  const auto counter = [&](std::string_view name, std::string_view help, std::uint64_t v,
                           std::string_view type = "counter") {
    out += fmt::format(
        "# HELP deltacrdt_node_{0} {1}\n# TYPE deltacrdt_node_{0} {2}\n"
        "deltacrdt_node_{0} {3}\n",
        name, help, type, v);
  };
  counter("peers", "Linked peer nodes.", n.peers, "gauge");
  counter("bytes_in_total", "Bytes received from peers.", n.bytes_in);
  counter("bytes_out_total", "Bytes sent to peers.", n.bytes_out);
  counter("frames_rejected_total", "Malformed frames received.", n.frames_rejected);
  counter("frames_dropped_total", "Frames dropped on a full link queue.", n.frames_dropped);
  counter("handshakes_failed_total", "Refused or timed-out handshakes.", n.handshakes_failed);
  counter("reconnects_total", "Links re-established to known nodes.", n.reconnects);
  counter("sync_dropped_total",
          "Sync frames dropped: malformed, for no hosted replica, or from an unannounced sender.",
          n.sync_dropped);
  counter("connections_refused_total",
          "Cluster connections closed at accept: too many in their handshake.",
          n.connections_refused);
  counter("accept_errors_total", "Failed accepts on the cluster port.", n.accept_errors);
  counter("gossip_rejected_total", "Malformed gossip frames or member records.", n.gossip_rejected);
  counter("members_forgotten_total", "Members learned by gossip, never reached, forgotten.",
          n.members_forgotten);
  counter("members", "Members known (linked or not).", n.members, "gauge");
  counter("members_removed", "Removal records held: members removed from the cluster.",
          n.members_removed, "gauge");
  counter("removed_refused_total", "Links closed because the peer is a removed member.",
          n.removed_refused);
  counter("removed", "1 when this node learned that it was removed from the cluster.",
          node_.removed() ? 1 : 0, "gauge");
  counter("replica_type_mismatches",
          "Namesake replicas of another CRDT type on linked nodes (never neighbours).",
          n.replica_type_mismatches, "gauge");
  if (http_stats_) {
    const HttpServerStats h = http_stats_();
    out +=
        "# HELP link_shortener_http_connections_refused_total HTTP connections closed at "
        "accept, by the bound reached.\n"
        "# TYPE link_shortener_http_connections_refused_total counter\n";
    out += fmt::format(
        "link_shortener_http_connections_refused_total{{reason=\"max_connections\"}} {}\n"
        "link_shortener_http_connections_refused_total{{reason=\"per_address\"}} {}\n",
        h.refused_server_full, h.refused_address_full);
    const auto http_counter = [&](std::string_view name, std::string_view help, std::uint64_t v) {
      out += fmt::format(
          "# HELP link_shortener_http_{0} {1}\n# TYPE link_shortener_http_{0} counter\n"
          "link_shortener_http_{0} {2}\n",
          name, help, v);
    };
    http_counter("accept_errors_total", "Failed accepts on the HTTP port.", h.accept_errors);
    http_counter("bad_requests_total",
                 "Requests the server refused by itself (malformed, too large) and closed.",
                 h.bad_requests);
    http_counter("header_timeouts_total", "Connections closed with a request head unfinished.",
                 h.header_timeouts);
  }

  // One family per metric, a line per replica (the exposition format wants families whole).
  auto metrics_op = store_.metrics();
  const auto [links_m, redirects_m] = co_await std::move(metrics_op);
  const auto replica = [&](std::string_view metric, std::string_view type,
                           std::uint64_t SyncMetrics::*field) {
    out += fmt::format("# TYPE deltacrdt_replica_{} {}\n", metric, type);
    out += fmt::format("deltacrdt_replica_{}{{replica=\"links\"}} {}\n", metric, links_m.*field);
    out += fmt::format("deltacrdt_replica_{}{{replica=\"redirects\"}} {}\n", metric,
                       redirects_m.*field);
  };
  replica("deltas_sent_total", "counter", &SyncMetrics::deltas_sent);
  replica("delta_bytes_sent_total", "counter", &SyncMetrics::delta_bytes_sent);
  replica("deltas_received_total", "counter", &SyncMetrics::deltas_received);
  replica("delta_bytes_received_total", "counter", &SyncMetrics::delta_bytes_received);
  replica("redundant_bytes_removed_total", "counter", &SyncMetrics::redundant_bytes_removed);
  replica("catchup_rounds_total", "counter", &SyncMetrics::catchup_rounds);
  replica("catchups_completed_total", "counter", &SyncMetrics::catchups_completed);
  replica("payloads_rejected_total", "counter", &SyncMetrics::payloads_rejected);
  replica("transfers_dropped_total", "counter", &SyncMetrics::transfers_dropped);
  replica("storage_errors_total", "counter", &SyncMetrics::storage_errors);
  replica("buffer_bytes", "gauge", &SyncMetrics::buffer_bytes);
  replica("max_ack_lag", "gauge", &SyncMetrics::max_ack_lag);
  Response res = text(req, http::status::ok, std::move(out));
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  co_return res;
}

}  // namespace deltacrdt::shortener
