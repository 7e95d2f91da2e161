// link-shortener processes on 127.0.0.1, driven over HTTP: links and redirect counts
// replicate across a 3-node cluster, survive a partition (TCP proxies cut), SIGKILL and an
// empty data directory; bad input gets 4xx and changes nothing; the command line refuses
// bad values. Bounded in time; every child process is killed and reaped by its handle.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/child_process.hpp"
#include "tests/http_client.hpp"
#include "tests/tcp_proxy.hpp"
#include "tests/test_support.hpp"

using namespace std::chrono_literals;
using deltacrdt::testing::ChildProcess;
using deltacrdt::testing::http_exchange;
using deltacrdt::testing::http_request;
using deltacrdt::testing::HttpReply;
using deltacrdt::testing::parse_reply;
using deltacrdt::testing::TcpProxy;
namespace fs = std::filesystem;

using deltacrdt::testing::eventually;
using deltacrdt::testing::free_port;

namespace {

const char* shortener_path() {
  const char* p = std::getenv("DELTACRDT_LINK_SHORTENER");
  REQUIRE_MESSAGE(p != nullptr, "DELTACRDT_LINK_SHORTENER must name the link-shortener program");
  return p;
}

// A scratch directory with a secret file; removed at the end.
struct Scratch {
  fs::path root;
  fs::path secret;
  Scratch() {
    root = fs::temp_directory_path() /
           ("deltacrdt-shortener-" + std::to_string(::getpid()) + "-" + std::to_string(next()++));
    fs::remove_all(root);
    fs::create_directories(root);
    secret = root / "secret";
    std::ofstream(secret) << "a-cluster-secret-for-tests-0123456789\n";
    ::chmod(secret.c_str(), 0600);
  }
  ~Scratch() { fs::remove_all(root); }
  fs::path dir(const std::string& name) const {
    fs::create_directories(root / name);
    return root / name;
  }
  static int& next() {
    static int n = 0;
    return n;
  }
};

// One link-shortener process; waits for its ready line.
struct Shortener {
  std::unique_ptr<ChildProcess> child;
  std::uint16_t http = 0;
  std::string cluster;

  Shortener(const std::string& name, const fs::path& data_dir, const fs::path& secret,
            const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{shortener_path(),
                                  "--name",
                                  name,
                                  "--http",
                                  "127.0.0.1:0",
                                  "--data-dir",
                                  data_dir.string(),
                                  "--secret-file",
                                  secret.string(),
                                  "--sync-interval",
                                  "50",
                                  "--log-level",
                                  "warn"};
    bool has_listen = false;
    for (const auto& e : extra) has_listen = has_listen || e == "--listen";
    if (!has_listen) argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<ChildProcess>(argv);
    const auto line = child->read_line(15s);
    REQUIRE_MESSAGE(line.has_value(), "link-shortener did not start");
    const std::string marker = ": http 127.0.0.1:";
    const auto at = line->find(marker);
    REQUIRE_MESSAGE(at != std::string::npos, *line);
    http = static_cast<std::uint16_t>(std::stoi(line->substr(at + marker.size())));
    cluster = line->substr(line->find("cluster ") + 8);
  }

  HttpReply get(const std::string& target) { return http_request(http, "GET", target); }
  HttpReply del(const std::string& target) { return http_request(http, "DELETE", target); }
  HttpReply post_form(const std::string& body) {
    return http_request(http, "POST", "/", body, "application/x-www-form-urlencoded");
  }
  std::string shorten(const std::string& url) {
    const HttpReply r = post_form("url=" + url);
    REQUIRE_MESSAGE(r.status == 201, r.status, " ", r.body);
    CHECK(r.header("location") == "http://127.0.0.1:" + std::to_string(http) + "/" + r.body);
    return r.body;
  }
  // Whether code resolves to url here, without counting a redirect.
  bool knows(const std::string& code, const std::string& url) {
    const HttpReply r = get("/api/links/" + code);
    return r.status == 200 && r.body.find("\"url\":\"" + url + "\"") != std::string::npos;
  }
  std::string aggregates(const std::string& code) { return get("/" + code + "/aggregates").body; }
  long links() {
    const std::string body = get("/metrics").body;
    const std::string key = "\nlink_shortener_links ";
    const auto at = body.find(key);
    return at == std::string::npos ? -1 : std::stol(body.substr(at + key.size()));
  }
  int live_members() {
    const std::string body = get("/_cluster").body;
    int n = 0;
    for (std::size_t at = 0; (at = body.find("\"status\":\"up\"", at)) != std::string::npos; ++at) {
      ++n;
    }
    return n;
  }
};

}  // namespace

TEST_SUITE("examples.link_shortener.process") {
  TEST_CASE("a link created on any node redirects on every node; counts add up cluster-wide") {
    // Each node pushes to one other only (random:1 over three nodes is their ring), so
    // every write reaches the third node through the second.
    Scratch s;
    Shortener n1("n1", s.dir("n1"), s.secret, {"--neighbours", "random:1"});
    Shortener n2("n2", s.dir("n2"), s.secret,
                 {"--seeds", n1.cluster, "--neighbours", "random:1"});
    Shortener n3("n3", s.dir("n3"), s.secret,
                 {"--seeds", n1.cluster, "--neighbours", "random:1"});
    REQUIRE(eventually([&] { return n3.live_members() == 2 && n2.live_members() == 2; }));
    for (Shortener* n : {&n1, &n2, &n3}) {
      CHECK(n->get("/_cluster").body.find("\"neighbours\":\"random:1\"") != std::string::npos);
      CHECK(eventually([&] {
        const std::string body = n->get("/_cluster").body;
        const auto at = body.find("\"pushing_to\":[\"");
        return at != std::string::npos && body.find(',', at) == std::string::npos;  // one name
      }));
    }

    const std::string url = "https://example.com/docs?page=1";
    const std::string code = n1.shorten("https%3A%2F%2Fexample.com%2Fdocs%3Fpage%3D1");
    for (Shortener* n : {&n2, &n3}) CHECK(eventually([&] { return n->knows(code, url); }));
    const HttpReply redirect = n3.get("/" + code);
    CHECK(redirect.status == 302);
    CHECK(redirect.header("location") == url);
    CHECK(redirect.body == url);
    // The same URL shortened elsewhere gets the same code.
    CHECK(n3.shorten(url) == code);

    // 1 (above) + 2 + 3 + 1 redirects on three nodes.
    for (int i = 0; i < 2; ++i) CHECK(n1.get("/" + code).status == 302);
    for (int i = 0; i < 3; ++i) CHECK(n2.get("/" + code).status == 302);
    CHECK(n1.get("/" + code).status == 302);
    for (Shortener* n : {&n1, &n2, &n3}) {
      CHECK(eventually([&] { return n->aggregates(code) == "Redirects: 7"; }));
    }
    CHECK(n2.get("/api/links/" + code).body.find("\"redirects\":7") != std::string::npos);

    // JSON API on one node, read on another.
    const HttpReply created = http_request(
        n2.http, "POST", "/api/links", R"({"url":"https://json.example/x"})", "application/json");
    REQUIRE(created.status == 201);
    const auto code_at = created.body.find("\"code\":\"") + 8;
    const std::string json_code =
        created.body.substr(code_at, created.body.find('"', code_at) - code_at);
    CHECK(created.body.find("\"short_url\":\"http://127.0.0.1:" + std::to_string(n2.http) + "/" +
                            json_code + "\"") != std::string::npos);
    CHECK(eventually([&] { return n1.knows(json_code, "https://json.example/x"); }));

    // A delete on one node removes the link everywhere.
    CHECK(n2.del("/" + code).status == 204);
    for (Shortener* n : {&n1, &n2, &n3}) {
      CHECK(eventually([&] { return n->get("/api/links/" + code).status == 404; }));
    }
    CHECK(n3.get("/" + code).status == 404);
    CHECK(n1.links() == 1);
  }

  TEST_CASE("during a partition every side shortens and counts; after healing all agree") {
    Scratch s;
    const std::uint16_t p1 = free_port(), p2 = free_port(), p3 = free_port();
    TcpProxy to1(p1), to2(p2), to3(p3);
    const auto listen = [](std::uint16_t p) { return "127.0.0.1:" + std::to_string(p); };
    Shortener n1("n1", s.dir("n1"), s.secret,
                 {"--listen", listen(p1), "--advertise", to1.address()});
    Shortener n2("n2", s.dir("n2"), s.secret,
                 {"--listen", listen(p2), "--advertise", to2.address(), "--seeds", to1.address()});
    Shortener n3("n3", s.dir("n3"), s.secret,
                 {"--listen", listen(p3), "--advertise", to3.address(), "--seeds", to1.address()});
    REQUIRE(eventually([&] {
      return n1.live_members() == 2 && n2.live_members() == 2 && n3.live_members() == 2;
    }));
    const std::string shared = n1.shorten("https://shared.example/");
    for (Shortener* n : {&n2, &n3}) {
      REQUIRE(eventually([&] { return n->knows(shared, "https://shared.example/"); }));
    }

    // Every link crosses a proxy: cutting all three leaves each node alone.
    to1.cut();
    to2.cut();
    to3.cut();
    REQUIRE(eventually([&] {
      return n1.live_members() == 0 && n2.live_members() == 0 && n3.live_members() == 0;
    }));
    const std::string c1 = n1.shorten("https://one.example/");
    const std::string c2 = n2.shorten("https://two.example/");
    const std::string c3 = n3.shorten("https://three.example/");
    for (int i = 0; i < 2; ++i) CHECK(n1.get("/" + shared).status == 302);
    for (int i = 0; i < 2; ++i) CHECK(n2.get("/" + shared).status == 302);
    CHECK(n3.get("/" + shared).status == 302);
    CHECK(n1.aggregates(shared) == "Redirects: 2");
    CHECK(n3.aggregates(shared) == "Redirects: 1");
    CHECK(n1.get("/" + c2).status == 404);  // not yet: n2 is unreachable

    to1.restore();
    to2.restore();
    to3.restore();
    for (Shortener* n : {&n1, &n2, &n3}) {
      CHECK(eventually([&] { return n->links() == 4; }, 30s));
      CHECK(eventually([&] { return n->aggregates(shared) == "Redirects: 5"; }));
      CHECK(n->knows(c1, "https://one.example/"));
      CHECK(n->knows(c2, "https://two.example/"));
      CHECK(n->knows(c3, "https://three.example/"));
    }
  }

  TEST_CASE("acknowledged links survive SIGKILL; a node with an empty directory catches up") {
    Scratch s;
    std::vector<std::string> codes;
    {
      Shortener alone("n2", s.dir("n2"), s.secret);
      for (int i = 0; i < 40; ++i)
        codes.push_back(alone.shorten("https://kill.example/" + std::to_string(i)));
      alone.child->signal(SIGKILL);  // right after the last 201
      CHECK(alone.child->wait(5s).value_or(0) == 128 + SIGKILL);
    }
    Shortener restarted("n2", s.dir("n2"), s.secret);
    for (int i = 0; i < 40; ++i) {
      CHECK(restarted.knows(codes[static_cast<std::size_t>(i)],
                            "https://kill.example/" + std::to_string(i)));
    }
    CHECK(restarted.links() == 40);

    // A new node with an empty data directory, writing with the majority concern: it
    // catches up everything, and its own writes are held by n2 when they return.
    Shortener fresh("n3", s.dir("n3"), s.secret,
                    {"--seeds", restarted.cluster, "--write-concern", "majority"});
    // Ready means caught up: once /_ready says so, every link is there.
    CHECK(eventually([&] { return fresh.get("/_ready").status == 200; }));
    CHECK(fresh.links() == 40);
    CHECK(eventually([&] { return fresh.live_members() == 1; }));
    const std::string code = fresh.shorten("https://majority.example/");
    CHECK(restarted.knows(code, "https://majority.example/"));
  }

  TEST_CASE("a node that starts empty answers 503, not 404, until it is ready") {
    Scratch s;
    // Its seed never answers, so it hears of no peer; it would be alone after a minute.
    Shortener waiting("n1", s.dir("n1"), s.secret,
                      {"--seeds", "127.0.0.1:1", "--alone-after", "60000"});
    const HttpReply ready = waiting.get("/_ready");
    CHECK(ready.status == 503);
    CHECK(ready.header("retry-after") == "1");
    CHECK(waiting.get("/_health").status == 200);  // liveness is another matter
    const HttpReply unknown = waiting.get("/abcdefgh");
    CHECK(unknown.status == 503);
    CHECK(unknown.header("retry-after") == "1");
    CHECK(waiting.get("/api/links/abcdefgh").status == 503);
    CHECK(waiting.get("/abcdefgh/aggregates").status == 503);
    CHECK(waiting.del("/abcdefgh").status == 503);
    // Writes, and reads of what it holds, are served meanwhile.
    const std::string code = waiting.shorten("https://early.example/");
    CHECK(waiting.get("/" + code).status == 302);

    Shortener alone("n2", s.dir("n2"), s.secret, {"--seeds", "127.0.0.1:1", "--alone-after", "300"});
    CHECK(eventually([&] { return alone.get("/_ready").status == 200; }));
    CHECK(alone.get("/abcdefgh").status == 404);
    CHECK(alone.get("/api/links/abcdefgh").status == 404);
  }

  TEST_CASE("X-Write-Concern and X-Read-Concern choose one request's concerns; majority counts "
            "a node down") {
    Scratch s;
    Shortener n1("n1", s.dir("n1"), s.secret, {"--write-timeout", "300", "--read-timeout", "300"});
    auto n2 = std::make_unique<Shortener>("n2", s.dir("n2"), s.secret,
                                          std::vector<std::string>{"--seeds", n1.cluster});
    REQUIRE(eventually([&] { return n1.live_members() == 1; }));
    const auto post = [&](const std::string& url, const std::string& concern) {
      return http_request(n1.http, "POST", "/", "url=" + url, "application/x-www-form-urlencoded",
                          {"X-Write-Concern: " + concern});
    };
    const HttpReply all = post("https://all.example/", "all");
    REQUIRE(all.status == 201);
    CHECK(n2->knows(all.body, "https://all.example/"));  // both nodes hold it on return
    const auto get = [&](const std::string& target, const std::string& concern) {
      return http_request(n1.http, "GET", target, "", "", {"X-Read-Concern: " + concern});
    };
    CHECK(get("/" + all.body, "all").status == 302);
    CHECK(get("/api/links/" + all.body, "majority").status == 200);
    n2->child->signal(SIGKILL);
    CHECK(n2->child->wait(5s).value_or(0) == 128 + SIGKILL);
    n2.reset();
    // n1 alone is one node of two: not a majority, although the default (durable) is met.
    const HttpReply minority = post("https://minority.example/", "majority");
    CHECK(minority.status == 503);
    CHECK(minority.body.find("1 of 2") != std::string::npos);
    CHECK(minority.header("retry-after") == "1");
    const HttpReply local = post("https://local.example/", "local");
    CHECK(local.status == 201);
    CHECK(n1.post_form("url=https://default.example/").status == 201);
    const HttpReply bad = post("https://bad.example/", "most");
    CHECK(bad.status == 400);
    CHECK(bad.body.find("X-Write-Concern") != std::string::npos);
    CHECK(n1.links() == 4);  // all, minority (stored, unconfirmed), local, default
    const HttpReply del =
        http_request(n1.http, "DELETE", "/" + local.body, "", "", {"X-Write-Concern: majority"});
    CHECK(del.status == 503);  // removed here, not confirmed by a majority
    // Reads: a majority needs n2 too; a local read is served from n1's state.
    const HttpReply stale = get("/" + all.body, "majority");
    CHECK(stale.status == 503);
    CHECK(stale.body.find("1 of 2") != std::string::npos);
    CHECK(stale.header("retry-after") == "1");
    CHECK(get("/api/links/" + all.body, "all").status == 503);
    CHECK(get("/" + all.body + "/aggregates", "majority").status == 503);
    CHECK(get("/" + all.body, "local").status == 302);
    CHECK(n1.get("/" + all.body).status == 302);  // the default: local
    CHECK(get("/" + all.body, "quorum").status == 400);
  }

  // A node restarted with its data is ready at once and, reading locally, would answer 404
  // for links written while it was down until it caught up; with majority reads it never
  // does: a lookup either waits for enough nodes (503 until it is linked) or finds the link.
  TEST_CASE("after a restart, majority lookups find every link a majority acknowledged") {
    Scratch s;
    const std::vector<std::string> concerns{"--write-concern", "majority", "--read-concern",
                                            "majority", "--read-timeout", "2000"};
    const auto with = [&](std::vector<std::string> extra) {
      extra.insert(extra.end(), concerns.begin(), concerns.end());
      return extra;
    };
    Shortener n1("n1", s.dir("n1"), s.secret, with({}));
    Shortener n2("n2", s.dir("n2"), s.secret, with({"--seeds", n1.cluster}));
    auto n3 = std::make_unique<Shortener>("n3", s.dir("n3"), s.secret,
                                          with({"--seeds", n1.cluster}));
    REQUIRE(eventually([&] { return n1.live_members() == 2 && n3->live_members() == 2; }));
    std::vector<std::string> codes;
    for (int i = 0; i < 6; ++i) {
      Shortener& at = i % 3 == 0 ? n1 : i % 3 == 1 ? n2 : *n3;
      codes.push_back(at.shorten("https://before.example/" + std::to_string(i)));
    }
    n3->child->signal(SIGKILL);
    CHECK(n3->child->wait(5s).value_or(0) == 128 + SIGKILL);
    n3.reset();
    for (int i = 0; i < 10; ++i) {  // n1 and n2 are a majority of three
      codes.push_back((i % 2 == 0 ? n1 : n2).shorten("https://during.example/" + std::to_string(i)));
    }
    {
      // Back first with a seed that never answers: it finds no one, so it cannot know the
      // cluster's size - but it is not alone, and its majority lookups must wait (503)
      // rather than answer from its own, stale state (404).
      Shortener cut_off("n3", s.dir("n3"), s.secret, with({"--seeds", "127.0.0.1:1"}));
      const auto get = [&](const std::string& code, const std::string& concern) {
        return http_request(cut_off.http, "GET", "/api/links/" + code, "", "",
                            {"X-Read-Concern: " + concern})
            .status;
      };
      CHECK(get(codes.front(), "majority") == 503);  // held here, but unconfirmed
      CHECK(get(codes.back(), "majority") == 503);
      CHECK(get(codes.front(), "local") == 200);
    }
    Shortener back("n3", s.dir("n3"), s.secret, with({"--seeds", n1.cluster}));
    int not_found = 0, found = 0;
    // Those written while it was down first: asked before n3 has found anyone, a lookup
    // must wait (503), not answer from n3 alone.
    for (auto code_at = codes.rbegin(); code_at != codes.rend(); ++code_at) {
      const std::string& code = *code_at;
      for (int attempt = 0; attempt < 100; ++attempt) {
        const int status = back.get("/api/links/" + code).status;
        not_found += status == 404 ? 1 : 0;
        if (status == 200) {
          ++found;
          break;
        }
        std::this_thread::sleep_for(50ms);
      }
    }
    CHECK(not_found == 0);
    CHECK(found == static_cast<int>(codes.size()));
  }

  TEST_CASE("a node removed through the admin route no longer counts in `all`, and is "
            "refused when it comes back with its data") {
    Scratch s;
    const fs::path token = s.root / "admin.token";
    std::ofstream(token) << "an-admin-token-for-tests-0123\n";
    ::chmod(token.c_str(), 0600);
    const std::vector<std::string> admin{"--admin-token-file", token.string(), "--write-timeout",
                                         "500"};
    Shortener n1("n1", s.dir("n1"), s.secret, admin);
    Shortener n2("n2", s.dir("n2"), s.secret, {"--seeds", n1.cluster});
    auto n3 = std::make_unique<Shortener>("n3", s.dir("n3"), s.secret,
                                          std::vector<std::string>{"--seeds", n1.cluster});
    REQUIRE(eventually([&] { return n1.live_members() == 2 && n3->live_members() == 2; }));
    const auto post_all = [&](const std::string& url) {
      return http_request(n1.http, "POST", "/", "url=" + url, "application/x-www-form-urlencoded",
                          {"X-Write-Concern: all"});
    };
    REQUIRE(post_all("https://three.example/").status == 201);
    n3->child->signal(SIGKILL);
    CHECK(n3->child->wait(5s).value_or(0) == 128 + SIGKILL);
    n3.reset();
    CHECK(post_all("https://two-of-three.example/").status == 503);

    const auto remove = [&](const std::string& auth) {
      return http_request(n1.http, "DELETE", "/_cluster/members/n3", "", "",
                          {"Authorization: " + auth});
    };
    CHECK(remove("Bearer not-the-token").status == 401);
    CHECK(http_request(n2.http, "DELETE", "/_cluster/members/n3", "", "",
                       {"Authorization: Bearer an-admin-token-for-tests-0123"})
              .status == 403);  // n2 has no token file
    const HttpReply removed = remove("Bearer an-admin-token-for-tests-0123");
    CHECK(removed.status == 200);
    CHECK(removed.body.find("\"removed\":true") != std::string::npos);
    CHECK(eventually([&] {
      return n2.get("/_cluster").body.find("\"name\":\"n3\",\"status\":\"removed\"") !=
             std::string::npos;
    }));
    CHECK(post_all("https://two-of-two.example/").status == 201);

    // Back with its data: refused by both, it says so, and what it writes stays with it.
    Shortener back("n3", s.dir("n3"), s.secret, {"--seeds", n1.cluster + "," + n2.cluster});
    CHECK(eventually([&] { return back.get("/_cluster").body.find("\"removed\":true") != std::string::npos; }));
    CHECK(back.get("/_ready").status == 503);
    const std::string stale = back.shorten("https://stale.example/");
    std::this_thread::sleep_for(1s);
    CHECK(n1.get("/api/links/" + stale).status == 404);
    CHECK(n1.get("/_cluster").body.find("\"name\":\"n3\",\"status\":\"removed\"") !=
          std::string::npos);
    CHECK(post_all("https://still-two.example/").status == 201);
  }

  TEST_CASE("invalid urls and malformed requests get 4xx and change nothing") {
    Scratch s;
    Shortener n("n1", s.dir("n1"), s.secret);
    const auto status_of_form = [&](const std::string& body) { return n.post_form(body).status; };
    CHECK(status_of_form("") == 422);
    CHECK(status_of_form("other=1") == 422);
    CHECK(status_of_form("url=ftp%3A%2F%2Fexample.com") == 422);
    CHECK(status_of_form("url=example.com") == 422);
    CHECK(status_of_form("url=https%3A%2F%2Fa.com%2F" + std::string(2040, 'x')) == 422);
    CHECK(status_of_form("url=https%3A%2F%2Fa.com%2F%0D%0ASet-Cookie%3A+x") == 422);
    CHECK(status_of_form("url=https%3A%2F%2Fa.com%2F%zz") == 422);
    const auto status_of_json = [&](const std::string& body) {
      return http_request(n.http, "POST", "/api/links", body, "application/json").status;
    };
    CHECK(status_of_json("not json") == 422);
    CHECK(status_of_json(R"(["https://a.com"])") == 422);
    CHECK(status_of_json(R"({"url": 5})") == 422);
    CHECK(status_of_json(R"({"url": "mailto:x@y.z"})") == 422);
    const HttpReply unknown = n.get("/Abc123");
    CHECK(unknown.status == 404);
    CHECK(n.get("/not-a-code!").status == 404);
    CHECK(n.get("/Abc123/aggregates").status == 404);
    CHECK(n.get("/api/links/Abc123").status == 404);
    CHECK(n.del("/Abc123").status == 404);
    CHECK(http_request(n.http, "PUT", "/", "url=https%3A%2F%2Fa.com").status == 405);
    CHECK(http_request(n.http, "DELETE", "/").status == 405);
    CHECK(http_request(n.http, "GET", "/").status == 200);  // the web page

    // Malformed HTTP: garbage, an oversized header, an oversized body.
    CHECK(parse_reply(http_exchange(n.http, "GARBAGE\r\n\r\n")).status == 400);
    CHECK(parse_reply(http_exchange(n.http, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                                std::string(20000, 'a') + "\r\n\r\n"))
              .status == 431);
    CHECK(parse_reply(http_exchange(n.http,
                                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                    "100000\r\n\r\nurl=https"))
              .status == 413);
    // A client that sends half a request and stalls does not hold up anyone else.
    std::thread stalled([&] { (void)http_exchange(n.http, "GET /_health HTTP/1.1\r\nHo", 1500); });
    std::this_thread::sleep_for(100ms);
    CHECK(n.get("/_health").status == 200);
    stalled.join();

    CHECK(n.links() == 0);
    const std::string metrics = n.get("/metrics").body;
    CHECK(metrics.find("link_shortener_requests_total{route=\"shorten\",status=\"422\"} 7") !=
          std::string::npos);
    CHECK(parse_reply(
              http_exchange(n.http, "GET ?x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
              .status == 404);
    // And it still works.
    const std::string code = n.shorten("https%3A%2F%2Fok.example%2F");
    CHECK(n.get("/" + code).header("location") == "https://ok.example/");
    // HEAD: the headers of a GET, no body.
    const HttpReply head = http_request(n.http, "HEAD", "/" + code);
    CHECK(head.status == 302);
    CHECK(head.header("location") == "https://ok.example/");
    CHECK(head.body.empty());
    CHECK(n.links() == 1);
  }

  TEST_CASE("the command line refuses bad values with exit 2; SIGTERM exits 0") {
    Scratch s;
    const auto run = [&](std::vector<std::string> args) {
      args.insert(args.begin(), shortener_path());
      ChildProcess p(args);
      std::string out;
      while (auto line = p.read_line(5s)) out += *line + "\n";
      return std::pair{p.wait(10s).value_or(-1), out};
    };
    const std::string dir = s.dir("n").string(), secret = s.secret.string();
    const auto [help_code, help] = run({"--help"});
    CHECK(help_code == 0);
    CHECK(help.find("--write-concern") != std::string::npos);
    CHECK(run({"--name", "n", "--data-dir", dir}).first == 2);  // no secret
    CHECK(
        run({"--name", "n", "--data-dir", (s.root / "missing").string(), "--insecure-dev"}).first ==
        2);
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", secret, "--http", "1.2.3.4"})
              .first == 2);
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", secret, "--write-concern", "most"})
              .first == 2);
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", secret, "--sync-interval", "0"})
              .first == 2);
    CHECK(help.find("--neighbours") != std::string::npos);
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", secret, "--neighbours", "a,,b"})
              .first == 2);
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", secret, "--neighbours", "all,a"})
              .first == 2);
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", secret, "--neighbours",
               "random:0"})
              .first == 2);
    std::ofstream(s.root / "short") << "tiny\n";
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", (s.root / "short").string()})
              .first == 2);
    CHECK(
        run({"--name", "n", "--data-dir", dir, "--insecure-dev", "--secret-file", secret}).first ==
        2);

    // TLS needs all three files.
    CHECK(run({"--name", "n", "--data-dir", dir, "--secret-file", secret, "--tls-cert", secret})
              .first == 2);

    Shortener n("n", s.dir("n"), s.secret);
    CHECK(n.get("/_health").status == 200);
    n.child->signal(SIGTERM);
    CHECK(n.child->wait(10s) == std::optional<int>(0));
  }
}
