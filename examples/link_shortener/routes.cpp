// plan_route (see routes.hpp).
#include "examples/link_shortener/routes.hpp"

#include <utility>

#include <boost/json.hpp>

#include "examples/link_shortener/codes.hpp"

namespace deltacrdt::shortener {

namespace {

using boost::beast::http::verb;

RoutePlan answer(std::string name, unsigned status, std::string message, bool json = false) {
  RoutePlan p;
  p.name = std::move(name);
  p.status = status;
  p.message = std::move(message);
  p.json = json;
  return p;
}

// A 405 answers in plain text on every route, JSON ones included.
RoutePlan not_allowed(std::string name, std::string allow) {
  RoutePlan p = answer(std::move(name), 405, "method not allowed");
  p.allow = std::move(allow);
  return p;
}

RoutePlan with_code(Route route, std::string name, std::string_view code) {
  RoutePlan p;
  p.route = route;
  p.name = std::move(name);
  p.code = std::string(code);
  return p;
}

}  // namespace

RoutePlan plan_route(verb method, std::string_view target, std::string_view body) {
  const std::size_t query_at = target.find('?');
  const std::string_view query =
      query_at == std::string_view::npos
          ? std::string_view{}
          : target.substr(query_at + 1, target.find('#', query_at) - query_at - 1);
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target.front() != '/') return answer("other", 404, "not found");

  if (target == "/" && (method == verb::get || method == verb::head)) {
    return with_code(Route::page, "page", {});
  }
  if (target.starts_with("/static/")) {
    if (method != verb::get && method != verb::head) return not_allowed("asset", "GET, HEAD");
    const std::string_view name = target.substr(8);
    if (name != "app.js" && name != "app.css") return answer("asset", 404, "not found");
    return with_code(Route::asset, "asset", name);
  }
  if (target == "/api/links" && method == verb::get) {
    RoutePlan p = with_code(Route::api_list, "api_list", {});
    p.json = true;
    const std::optional<std::string> limit = form_field(query, "limit");
    if (limit) {
      std::size_t n = 0;
      for (const char c : *limit) {
        if (c < '0' || c > '9' || n > 1000) return answer("api_list", 400, "limit must be 1-100", true);
        n = n * 10 + static_cast<std::size_t>(c - '0');
      }
      if (n < 1 || n > 100) return answer("api_list", 400, "limit must be 1-100", true);
      p.limit = n;
    }
    p.cursor = form_field(query, "cursor").value_or("");
    return p;
  }
  if (target == "/api/cluster") {
    if (method != verb::get) return not_allowed("api_cluster", "GET");
    RoutePlan p = with_code(Route::api_cluster, "api_cluster", {});
    p.json = true;
    return p;
  }

  if (target == "/") {
    if (method != verb::post) return not_allowed("shorten", "GET, HEAD, POST");
    bool malformed = false;
    auto url = form_field(body, "url", &malformed);
    if (!url) {
      return answer("shorten", 422,
                    malformed ? "the url field has a malformed percent escape"
                              : "missing form field 'url' (send url=... as "
                                "application/x-www-form-urlencoded, e.g. curl -d url=...)");
    }
    RoutePlan p;
    p.route = Route::shorten;
    p.name = "shorten";
    p.url = std::move(*url);
    return p;
  }
  if (target == "/api/links") {
    if (method != verb::post) return not_allowed("api_create", "GET, POST");
    boost::system::error_code ec;
    const boost::json::value parsed = boost::json::parse(body, ec);
    const boost::json::string* url = nullptr;
    if (!ec && parsed.is_object()) {
      if (const auto* v = parsed.as_object().if_contains("url"); v != nullptr) {
        url = v->if_string();
      }
    }
    if (url == nullptr) {
      return answer("api_create", 422, "body must be a JSON object with a string field \"url\"",
                    true);
    }
    RoutePlan p;
    p.route = Route::api_create;
    p.name = "api_create";
    p.url = std::string(*url);
    p.json = true;
    return p;
  }
  if (target.starts_with("/api/links/")) {
    if (method != verb::get) return not_allowed("api_get", "GET");
    const std::string_view code = target.substr(11);
    if (!looks_like_code(code)) return answer("api_get", 404, "unknown code", true);
    RoutePlan p = with_code(Route::api_get, "api_get", code);
    p.json = true;
    return p;
  }
  if (target == "/_health") return with_code(Route::health, "health", {});
  if (target == "/_ready") return with_code(Route::ready, "ready", {});
  if (target == "/_cluster") return with_code(Route::cluster, "cluster", {});
  if (target.starts_with("/_cluster/members/")) {
    if (method != verb::delete_) return not_allowed("remove_member", "DELETE");
    const std::optional<std::string> name = form_decode(target.substr(18), false);
    if (!name || name->empty() || name->size() > 255) {
      return answer("remove_member", 404, "no such member", true);
    }
    RoutePlan p = with_code(Route::remove_member, "remove_member", *name);
    p.json = true;
    return p;
  }
  if (target == "/metrics") return with_code(Route::metrics, "metrics", {});
  if (target.ends_with("/aggregates")) {
    const std::string_view code = target.substr(1, target.size() - 1 - 11);
    if (method != verb::get) return not_allowed("aggregates", "GET");
    if (!looks_like_code(code)) return answer("aggregates", 404, "unknown code");
    return with_code(Route::aggregates, "aggregates", code);
  }
  const std::string_view code = target.substr(1);
  if (method == verb::delete_) {
    if (!looks_like_code(code)) return answer("delete", 404, "unknown code");
    return with_code(Route::remove, "delete", code);
  }
  if (method == verb::get || method == verb::head) {
    if (!looks_like_code(code)) return answer("redirect", 404, "not found");
    return with_code(Route::redirect, "redirect", code);
  }
  return not_allowed("other", "GET, HEAD, DELETE");
}

}  // namespace deltacrdt::shortener
