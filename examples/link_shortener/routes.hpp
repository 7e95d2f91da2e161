// Which route an HTTP request takes and what it carries, decided from its method, target
// and body alone. Pure (no store, no node, no I/O), so that the fuzzer runs exactly the
// request handling the server runs; Api::route dispatches on the plan. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <boost/beast/http/verb.hpp>

namespace deltacrdt::shortener {

enum class Route {
  shorten,     // POST /            (form field url)
  api_create,  // POST /api/links   ({"url": ...})
  api_get,     // GET  /api/links/<code>
  health,      // /_health   (liveness)
  ready,       // /_ready    (readiness: 503 until caught up)
  cluster,     // /_cluster
  remove_member,  // DELETE /_cluster/members/<name>  (admin)
  page,        // GET /            (the web page)
  asset,       // GET /static/<name>  (its script and style sheet; `code` is the name)
  api_list,    // GET /api/links?limit=N&cursor=C  (recent links, newest first)
  api_cluster,  // GET /api/cluster  (members, their figures, whether they agree)
  metrics,     // /metrics
  aggregates,  // GET /<code>/aggregates
  remove,      // DELETE /<code>
  redirect,    // GET or HEAD /<code>
  answered,    // nothing to run: `status` and `message` are the answer
};

struct RoutePlan {
  Route route = Route::answered;
  std::string name = "other";  // the route's name in metrics
  std::string code;            // the code, for routes that take one (a plausible code);
                               // remove_member: the member's name (percent-decoded)
  std::string url;             // the URL, for shorten and api_create (not yet validated)
  std::size_t limit = 20;      // api_list: links per page (1-100)
  std::string cursor;          // api_list: where the page starts (empty: the newest)
  // For Route::answered: the status, a one-line reason, the Allow header of a 405, and
  // whether the route answers in JSON.
  unsigned status = 0;
  std::string message;
  std::string allow;
  bool json = false;
};

RoutePlan plan_route(boost::beast::http::verb method, std::string_view target,
                     std::string_view body);

}  // namespace deltacrdt::shortener
