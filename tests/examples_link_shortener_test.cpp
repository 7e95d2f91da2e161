// The link shortener's parts in process: short codes, URL and form rules, and the API over
// two real nodes when different URLs meet on one code concurrently.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "cluster/io_threads.hpp"
#include "examples/link_shortener/api.hpp"
#include "examples/link_shortener/codes.hpp"
#include "tests/tcp_proxy.hpp"
#include "tests/test_support.hpp"

using namespace deltacrdt;
using namespace deltacrdt::shortener;
using namespace std::chrono_literals;

using deltacrdt::testing::eventually;
using deltacrdt::testing::free_port;

namespace {

// Two nodes, each behind a TCP proxy it advertises, so that every link between them
// crosses both proxies and cutting them partitions the pair. Each has a LinkStore and an
// Api (write concern local: no data directories here). Starts partitioned.
constexpr const char* kAdminToken = "admin-token-0123456789";

struct TwoNodes {
  IoThreads io{1};
  std::uint16_t port_a = free_port(), port_b = free_port();
  testing::TcpProxy to_a{port_a}, to_b{port_b};
  std::unique_ptr<Node> a, b;
  std::unique_ptr<LinkStore> store_a, store_b;
  RequestMetrics metrics;
  std::unique_ptr<Api> api_a, api_b;

  TwoNodes() {
    cut();
    NodeOptions o;
    o.secret = "a-test-secret-0123456789";
    o.logger = std::make_shared<Logger>(LogLevel::warn);
    o.reconnect_min = 20ms;
    o.reconnect_max = 100ms;
    o.name = "a";
    o.listen = "127.0.0.1:" + std::to_string(port_a);
    o.advertise = to_a.address();
    a = std::make_unique<Node>(o);
    o.name = "b";
    o.listen = "127.0.0.1:" + std::to_string(port_b);
    o.advertise = to_b.address();
    o.seeds = {to_a.address()};
    b = std::make_unique<Node>(o);
    store_a = std::make_unique<LinkStore>(*a, SyncOptions{});
    store_b = std::make_unique<LinkStore>(*b, SyncOptions{});
    api_a = std::make_unique<Api>(*store_a, *a, metrics,
                                  ApiOptions{WriteConcern::local(), ReadConcern::local(), "x",
                                             kAdminToken});
    api_b = std::make_unique<Api>(*store_b, *b, metrics,
                                  ApiOptions{WriteConcern::local(), ReadConcern::local(), "x", ""});
  }
  void cut() {
    to_a.cut();
    to_b.cut();
  }
  void heal() {
    to_a.restore();
    to_b.restore();
  }
  bool linked() { return a->live_members().size() == 1 && b->live_members().size() == 1; }

  // Runs a LinkStore coroutine to its end.
  template <class F>
  void call_store(LinkStore& store, F f) {
    asio::co_spawn(io.context(), f(store), asio::use_future).get();
  }

  Response call(Api& api, http::verb method, const std::string& target, std::string body = "",
                std::string authorization = "") {
    Request req{method, target, 11};
    req.set(http::field::host, "short.test");
    if (!authorization.empty()) req.set(http::field::authorization, authorization);
    req.body() = std::move(body);
    req.prepare_payload();
    return asio::co_spawn(io.context(), api.handle(req), asio::use_future).get();
  }
};

}  // namespace

TEST_SUITE("examples.link_shortener") {
  TEST_CASE("short codes are 8 base62 digits, a pure function of url and attempt") {
    const std::string url = "https://example.com/some/page?q=1";
    const std::string code = short_code(url);
    CHECK(code.size() == kCodeLength);
    CHECK(looks_like_code(code));
    CHECK(short_code(url) == code);
    CHECK(short_code(url, 0) == code);
    std::set<std::string> attempts;
    for (unsigned a = 0; a < kMaxCodeAttempts; ++a) attempts.insert(short_code(url, a));
    CHECK(attempts.size() == kMaxCodeAttempts);
    std::set<std::string> codes;
    for (int i = 0; i < 10000; ++i) codes.insert(short_code("https://e.org/" + std::to_string(i)));
    CHECK(codes.size() == 10000);
  }

  TEST_CASE("only absolute http and https urls without controls, up to 2048 bytes, pass") {
    CHECK_FALSE(url_problem("https://example.com").has_value());
    CHECK_FALSE(url_problem("HTTP://Example.com/a?b=c#d").has_value());
    CHECK_FALSE(url_problem("http://user@host:8080/x").has_value());
    CHECK(url_problem("").value() == "url is empty");
    CHECK(url_problem("ftp://example.com").has_value());
    CHECK(url_problem("example.com").has_value());
    CHECK(url_problem("javascript:alert(1)").has_value());
    CHECK(url_problem("https://").has_value());
    CHECK(url_problem("https:///path").has_value());
    CHECK(url_problem("https://:80/").has_value());
    CHECK(url_problem("https://a b.com").has_value());
    CHECK(url_problem("https://a.com/\r\nSet-Cookie: x").has_value());
    CHECK(url_problem(std::string("https://a.com/\0", 15)).has_value());
    CHECK(url_problem("https://a.com/\x7f").has_value());
    const std::string longest = "https://a.com/" + std::string(kMaxUrlBytes - 14, 'x');
    CHECK_FALSE(url_problem(longest).has_value());
    CHECK(url_problem(longest + "x").has_value());
  }

  TEST_CASE("form fields decode + and percent escapes, and refuse broken escapes") {
    CHECK(form_field("url=https%3A%2F%2Fa.com%2Fx%3Fy%3D1", "url") == "https://a.com/x?y=1");
    CHECK(form_field("a=1&url=x+y&url=second", "url") == "x y");
    CHECK_FALSE(form_field("a=1&b=2", "url").has_value());
    CHECK(form_field("url", "url") == "");
    bool malformed = false;
    CHECK_FALSE(form_field("url=%4", "url", &malformed).has_value());
    CHECK(malformed);
    malformed = false;
    CHECK_FALSE(form_field("url=%zz", "url", &malformed).has_value());
    CHECK(malformed);
    CHECK_FALSE(looks_like_code(""));
    CHECK_FALSE(looks_like_code("abc/def"));
    CHECK_FALSE(looks_like_code("aaaaaaaaaaaaaaaaa"));
    CHECK(looks_like_code("Zz09"));
  }

  // Two nodes, not yet linked, give one code to different URLs; once linked, the code is
  // reported as ambiguous (300) instead of silently leading to one of them, a shorten of
  // either URL moves to its next code, and a delete clears the code.
  TEST_CASE("different urls written to one code concurrently are reported, never merged") {
    TwoNodes n;
    LinkStore& store_a = *n.store_a;
    LinkStore& store_b = *n.store_b;
    const auto call = [&](http::verb method, const std::string& target, std::string body = "") {
      return n.call(*n.api_a, method, target, std::move(body));
    };
    const std::string one = "https://one.example/", two = "https://two.example/";
    const std::string code = short_code(one);
    (void)store_a.links().put(code, one).get();
    (void)store_b.links().put(code, two).get();
    n.heal();
    REQUIRE(eventually([&] {
      return store_a.links()
                 .read([&](const Links& m) {
                   int slots = 0;
                   m.for_each_slot(code, [&](const Links::Slot&) { ++slots; });
                   return slots;
                 })
                 .get() == 2;
    }));

    const Response ambiguous = call(http::verb::get, "/" + code);
    CHECK(ambiguous.result() == http::status::multiple_choices);
    CHECK(ambiguous.body().find(one) != std::string::npos);
    CHECK(ambiguous.body().find(two) != std::string::npos);
    CHECK(ambiguous[http::field::location].empty());

    // Shortening either URL again takes its next code and leaves the ambiguous one alone.
    const Response again = call(http::verb::post, "/", "url=" + one);
    CHECK(again.result() == http::status::created);
    CHECK(again.body() == short_code(one, 1));
    CHECK(again[http::field::location] == "http://short.test/" + short_code(one, 1));
    CHECK(call(http::verb::get, "/" + code).result() == http::status::multiple_choices);
    const Response json = call(http::verb::get, "/api/links/" + code);
    CHECK(json.body().find("conflicting_urls") != std::string::npos);

    CHECK(call(http::verb::delete_, "/" + code).result() == http::status::no_content);
    CHECK(call(http::verb::get, "/" + code).result() == http::status::not_found);
    CHECK(call(http::verb::get, "/" + short_code(one, 1)).result() == http::status::found);
    CHECK(eventually([&] { return !store_b.links().get(code).get().has_value(); }));
  }

  TEST_CASE("a re-shorten concurrent with a delete of the same url wins (add-wins)") {
    TwoNodes n;
    n.heal();
    REQUIRE(eventually([&] { return n.linked(); }));
    const std::string url = "https://add-wins.example/";
    const Response created = n.call(*n.api_a, http::verb::post, "/", "url=" + url);
    REQUIRE(created.result() == http::status::created);
    const std::string code = created.body();
    REQUIRE(eventually([&] { return n.store_b->links().get(code).get() == url; }));

    n.cut();
    REQUIRE(eventually([&] { return n.a->live_members().empty() && n.b->live_members().empty(); }));
    CHECK(n.call(*n.api_a, http::verb::delete_, "/" + code).result() == http::status::no_content);
    CHECK(n.call(*n.api_a, http::verb::get, "/" + code).result() == http::status::not_found);
    const Response again = n.call(*n.api_b, http::verb::post, "/", "url=" + url);
    CHECK(again.result() == http::status::created);
    CHECK(again.body() == code);

    n.heal();
    CHECK(eventually([&] { return n.store_a->links().get(code).get() == url; }));
    CHECK(n.call(*n.api_a, http::verb::get, "/" + code).result() == http::status::found);
    CHECK(n.store_b->links().get(code).get() == url);
  }

  TEST_CASE("the admin route removes a member only with the admin token; /_cluster lists it "
            "as removed") {
    TwoNodes n;
    n.heal();
    REQUIRE(eventually([&] { return n.linked(); }));
    n.cut();
    REQUIRE(eventually([&] { return n.a->live_members().empty(); }));
    const std::string route = "/_cluster/members/b";
    CHECK(n.call(*n.api_b, http::verb::delete_, "/_cluster/members/a", "", "Bearer x").result() ==
          http::status::forbidden);  // no token configured: disabled
    const Response anonymous = n.call(*n.api_a, http::verb::delete_, route);
    CHECK(anonymous.result() == http::status::unauthorized);
    CHECK(anonymous[http::field::www_authenticate] == "Bearer");
    CHECK(n.call(*n.api_a, http::verb::delete_, route, "", "Bearer admin-token-0123456788")
              .result() == http::status::unauthorized);
    CHECK(n.call(*n.api_a, http::verb::get, route).result() == http::status::method_not_allowed);
    CHECK(n.a->members().front().status == MemberInfo::Status::down);

    const std::string bearer = std::string("Bearer ") + kAdminToken;
    const Response removed = n.call(*n.api_a, http::verb::delete_, route, "", bearer);
    CHECK(removed.result() == http::status::ok);
    CHECK(removed.body() == "{\"member\":\"b\",\"removed\":true,\"already_removed\":false}\n");
    CHECK(n.call(*n.api_a, http::verb::delete_, route, "", bearer).body().find(
              "\"already_removed\":true") != std::string::npos);
    CHECK(n.call(*n.api_a, http::verb::delete_, "/_cluster/members/a", "", bearer).result() ==
          http::status::bad_request);  // itself
    CHECK(n.call(*n.api_a, http::verb::delete_, "/_cluster/members/zz%20top", "", bearer).result() ==
          http::status::not_found);
    const std::string cluster = n.call(*n.api_a, http::verb::get, "/_cluster").body();
    CHECK(cluster.find("{\"name\":\"b\",\"status\":\"removed\",\"removed_at_ms\":") !=
          std::string::npos);
    // b, cut off, knows nothing yet; healed, it learns that it was removed.
    CHECK_FALSE(n.b->removed());
    n.heal();
    CHECK(eventually([&] { return n.b->removed(); }));
    CHECK(n.call(*n.api_b, http::verb::get, "/_ready").result() ==
          http::status::service_unavailable);
    CHECK(n.call(*n.api_b, http::verb::get, "/metrics").body().find("deltacrdt_node_removed 1\n") !=
          std::string::npos);
    const std::string metrics_a = n.call(*n.api_a, http::verb::get, "/metrics").body();
    CHECK(metrics_a.find("deltacrdt_node_members_removed 1\n") != std::string::npos);
    CHECK(metrics_a.find("deltacrdt_node_removed 0\n") != std::string::npos);
  }

  TEST_CASE("the web page and its files are served with a policy that runs only this node's "
            "script; the listing pages newest first; the panel compares members") {
    TwoNodes n;
    n.heal();
    REQUIRE(eventually([&] { return n.linked(); }));
    const Response page = n.call(*n.api_a, http::verb::get, "/");
    CHECK(page.result() == http::status::ok);
    CHECK(page[http::field::content_type] == "text/html; charset=utf-8");
    CHECK(page["Content-Security-Policy"].find("script-src 'self'") != std::string_view::npos);
    CHECK(page["X-Content-Type-Options"] == "nosniff");
    CHECK(page.body().find("<label for=\"url\">") != std::string::npos);
    CHECK(n.call(*n.api_a, http::verb::get, "/static/app.js")[http::field::content_type] ==
          "text/javascript; charset=utf-8");
    CHECK(n.call(*n.api_a, http::verb::get, "/static/app.css").result() == http::status::ok);
    CHECK(n.call(*n.api_a, http::verb::get, "/static/other.js").result() == http::status::not_found);
    CHECK(n.call(*n.api_a, http::verb::put, "/").result() == http::status::method_not_allowed);

    std::vector<std::string> codes;
    for (int i = 0; i < 3; ++i) {
      const Response r = n.call(*n.api_a, http::verb::post, "/",
                                "url=https://list.example/" + std::to_string(i));
      REQUIRE(r.result() == http::status::created);
      codes.push_back(r.body());
    }
    (void)n.call(*n.api_a, http::verb::get, "/" + codes[0]);  // one redirect
    const auto json_of = [&](const std::string& target) {
      const Response r = n.call(*n.api_a, http::verb::get, target);
      REQUIRE(r.result() == http::status::ok);
      return boost::json::parse(r.body()).as_object();
    };
    const auto first = json_of("/api/links?limit=2");
    REQUIRE(first.at("links").as_array().size() == 2);
    CHECK(first.at("links").as_array()[0].at("code").as_string() == codes[2]);  // newest first
    CHECK(first.at("links").as_array()[1].at("code").as_string() == codes[1]);
    REQUIRE(first.at("next").is_string());
    const std::string next(first.at("next").as_string());
    const auto second = json_of("/api/links?limit=2&cursor=" + next);
    REQUIRE(second.at("links").as_array().size() == 1);
    const auto& last = second.at("links").as_array()[0].as_object();
    CHECK(last.at("code").as_string() == codes[0]);
    CHECK(last.at("url").as_string() == "https://list.example/0");
    CHECK(last.at("redirects").as_int64() == 1);
    CHECK(last.at("short_url").as_string() == "http://short.test/" + codes[0]);
    CHECK(second.at("next").is_null());
    CHECK(n.call(*n.api_a, http::verb::get, "/api/links?limit=0").result() == http::status::bad_request);
    CHECK(n.call(*n.api_a, http::verb::get, "/api/links?limit=101").result() == http::status::bad_request);
    CHECK(n.call(*n.api_a, http::verb::get, "/api/links?cursor=zz").result() == http::status::bad_request);

    // The panel: a's own figures, and b's once b published them (main does it every second).
    const auto panel = json_of("/api/cluster");
    CHECK(panel.at("node").as_string() == "a");
    const auto& members = panel.at("members").as_array();
    REQUIRE(members.size() == 2);
    CHECK(members[0].at("self").as_bool());
    CHECK(members[0].at("links").as_int64() == 3);
    CHECK(members[1].at("name").as_string() == "b");
    CHECK(members[1].at("links").is_null());  // b has published nothing yet
    CHECK_FALSE(panel.at("agree").as_bool());
    REQUIRE(eventually([&] {
      return n.store_b->links().read([](const Links& m) { return m.size(); }).get() == 3 &&
             n.store_b->redirects().read([](const Redirects& r) { return r.size(); }).get() == 1;
    }));
    n.call_store(*n.store_b, [](LinkStore& s) { return s.publish_figures(); });
    REQUIRE(eventually([&] {
      const auto p = json_of("/api/cluster");
      return p.at("members").as_array()[1].at("links").is_int64() && p.at("agree").as_bool();
    }));
  }
}
