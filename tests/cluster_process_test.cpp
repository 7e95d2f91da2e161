// Nodes as separate processes on 127.0.0.1 (tests/test_node.cpp): convergence, SIGKILL and
// restart, graceful SIGTERM, and a partition made by cutting TCP proxies. Bounded in time;
// every child process is killed and reaped by its handle's destructor.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/child_process.hpp"
#include "tests/tcp_proxy.hpp"

using namespace std::chrono_literals;
using deltacrdt::testing::ChildProcess;
using deltacrdt::testing::TcpProxy;

namespace {

const char* test_node_path() {
  const char* p = std::getenv("DELTACRDT_TEST_NODE");
  REQUIRE_MESSAGE(p != nullptr, "DELTACRDT_TEST_NODE must name the test-node executable");
  return p;
}

// A test-node process; waits for its "ready" line.
struct NodeProcess {
  std::unique_ptr<ChildProcess> child;
  std::string address;

  NodeProcess(const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> argv{test_node_path(), "--name", name, "--secret",
                                  "s3cret-0123456789"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<ChildProcess>(argv);
    const auto line = child->read_line(10s);
    REQUIRE_MESSAGE(line.has_value(), "test-node did not start");
    REQUIRE(line->rfind("ready ", 0) == 0);
    address = line->substr(6);
  }
  std::string ask(const std::string& cmd) { return child->request(cmd); }
  std::size_t size() {
    const std::string r = ask("size");
    return r.rfind("size ", 0) == 0 ? std::stoul(r.substr(5)) : 0;
  }
};

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 15s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// A port that was free a moment ago (the kernel does not hand it out again at once).
std::uint16_t free_port() {
  deltacrdt::asio::io_context io;
  deltacrdt::asio::ip::tcp::acceptor probe(io, {deltacrdt::asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint().port();
}

}  // namespace

TEST_SUITE("cluster.process") {
  TEST_CASE("three processes converge; one killed with SIGKILL and restarted catches up") {
    NodeProcess a("a", {});
    NodeProcess b("b", {"--seeds", a.address});
    auto c = std::make_unique<NodeProcess>("c", std::vector<std::string>{"--seeds", a.address});
    REQUIRE(eventually([&] { return c->ask("members") == "members a,b"; }));
    for (int i = 0; i < 50; ++i) {
      REQUIRE(a.ask("put a" + std::to_string(i) + " 1") == "ok");
      REQUIRE(b.ask("put b" + std::to_string(i) + " 2") == "ok");
      REQUIRE(c->ask("put c" + std::to_string(i) + " 3") == "ok");
    }
    REQUIRE(a.ask("incr 4") == "ok");
    REQUIRE(c->ask("incr 5") == "ok");
    CHECK(eventually([&] { return a.size() == 150 && b.size() == 150 && c->size() == 150; }));
    CHECK(eventually([&] { return b.ask("count") == "count 9"; }));
    CHECK(a.ask("digest") == b.ask("digest"));

    // SIGKILL c: no goodbye. The others notice by the idle timeout and keep going.
    const std::string c_address = c->address;
    c->child->signal(SIGKILL);
    c.reset();
    CHECK(eventually([&] { return a.ask("members") == "members b"; }));
    REQUIRE(a.ask("put while-c-was-down 1") == "ok");
    // Restarted on the same port with nothing (no storage yet): a new replica id that
    // catches up from the others, who redial it.
    c = std::make_unique<NodeProcess>("c", std::vector<std::string>{"--listen", c_address});
    CHECK(eventually([&] { return c->size() == 151; }));
    CHECK(eventually([&] { return c->ask("count") == "count 9"; }));
    CHECK(c->ask("digest") == a.ask("digest"));
  }

  TEST_CASE("SIGTERM stops a node cleanly with exit status 0") {
    NodeProcess a("a", {});
    NodeProcess b("b", {"--seeds", a.address});
    REQUIRE(eventually([&] { return a.ask("members") == "members b"; }));
    b.child->signal(SIGTERM);
    const auto status = b.child->wait(5s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    // It said goodbye: a sees it gone well before the idle timeout would have.
    CHECK(eventually([&] { return a.ask("members") == "members "; }, 900ms));
  }

  TEST_CASE("during a partition both sides accept writes; after healing they converge") {
    // Each node listens on its own port and advertises a proxy in front of it, so every
    // link between them, whoever dials, crosses a proxy the test can cut.
    const std::uint16_t a_port = free_port(), b_port = free_port();
    TcpProxy to_a(a_port), to_b(b_port);
    NodeProcess a(
        "a", {"--listen", "127.0.0.1:" + std::to_string(a_port), "--advertise", to_a.address()});
    NodeProcess b("b", {"--listen", "127.0.0.1:" + std::to_string(b_port), "--advertise",
                        to_b.address(), "--seeds", to_a.address()});
    REQUIRE(eventually([&] { return a.ask("members") == "members b"; }));
    REQUIRE(a.ask("put before 0") == "ok");
    REQUIRE(eventually([&] { return b.size() == 1; }));

    to_a.cut();
    to_b.cut();
    CHECK(eventually(
        [&] { return a.ask("members") == "members " && b.ask("members") == "members "; }));
    for (int i = 0; i < 20; ++i) {
      REQUIRE(a.ask("put left" + std::to_string(i) + " a") == "ok");
      REQUIRE(b.ask("put right" + std::to_string(i) + " b") == "ok");
    }
    REQUIRE(a.ask("incr 2") == "ok");
    REQUIRE(b.ask("incr 3") == "ok");
    CHECK(a.size() == 21);
    CHECK(b.size() == 21);

    to_a.restore();
    to_b.restore();
    CHECK(eventually([&] { return a.size() == 41 && b.size() == 41; }));
    CHECK(eventually([&] { return a.ask("count") == "count 5" && b.ask("count") == "count 5"; }));
    CHECK(a.ask("digest") == b.ask("digest"));
  }
}
