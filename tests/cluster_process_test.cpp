// Nodes as separate processes on 127.0.0.1 (tests/test_node.cpp): convergence, SIGKILL and
// restart, graceful SIGTERM, and a partition made by cutting TCP proxies. Bounded in time;
// every child process is killed and reaped by its handle's destructor.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/child_process.hpp"
#include "tests/tcp_proxy.hpp"
#include "tests/test_support.hpp"

using namespace std::chrono_literals;
using deltacrdt::testing::ChildProcess;
using deltacrdt::testing::TcpProxy;

using deltacrdt::testing::eventually;
using deltacrdt::testing::free_port;

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

}  // namespace

TEST_SUITE("cluster.process") {
  // A writer doing durable puts is killed with SIGKILL at random moments. After each restart
  // every put that returned is present, and the replica id and c have not gone back.
  TEST_CASE("durable puts survive SIGKILL at random moments") {
    const auto dir =
        std::filesystem::temp_directory_path() / ("deltacrdt-kill-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::mt19937 rng(20261121);
    std::set<std::string> acknowledged;
    std::string id;
    unsigned long long last_seq = 0;
    int next_key = 0;
    const int rounds = 20;
    for (int round = 0; round < rounds; ++round) {
      CAPTURE(round);
      // Small snapshot threshold: some kills land while a snapshot is being written.
      NodeProcess w("w", {"--data-dir", dir.string(), "--snapshot-bytes", "8192"});
      const std::string info = w.ask("info");
      std::istringstream in(info);
      std::string word, this_id;
      unsigned long long seq = 0;
      in >> word >> this_id >> seq;
      REQUIRE(word == "info");
      if (round == 0) id = this_id;
      CHECK(this_id == id);                    // the same replica across restarts
      CHECK(seq >= last_seq);                  // c never goes back
      CHECK(w.size() >= acknowledged.size());  // (writes in flight at the kill may be there too)
      for (const std::string& k : acknowledged) REQUIRE(w.ask("get " + k) == "value v");
      // A burst of pipelined durable puts, killed after a random delay.
      std::string burst;
      const int n = 50 + static_cast<int>(rng() % 200);
      for (int i = 0; i < n; ++i) burst += "dput k" + std::to_string(next_key + i) + " v\n";
      w.child->write(burst);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
      w.child->signal(SIGKILL);
      REQUIRE(w.child->wait(5s).has_value());
      // Every "ok" the writer printed before dying was acknowledged as durable.
      while (auto line = w.child->read_line(100ms)) {
        if (line->rfind("ok ", 0) == 0) acknowledged.insert(line->substr(3));
      }
      next_key += n;
      last_seq = seq;
    }
    CHECK(acknowledged.size() > 0);
    {
      // However early the kills fell (a slow machine may have logged too little to pass the
      // snapshot threshold), one more life writes enough for a snapshot to be taken, after
      // recovering everything acknowledged once more.
      NodeProcess w("w", {"--data-dir", dir.string(), "--snapshot-bytes", "8192"});
      for (const std::string& k : acknowledged) REQUIRE(w.ask("get " + k) == "value v");
      const int n = 400;
      std::string burst;
      for (int i = 0; i < n; ++i) burst += "dput k" + std::to_string(next_key + i) + " v\n";
      w.child->write(burst);
      int oks = 0;
      while (oks < n) {
        const auto line = w.child->read_line(10s);
        REQUIRE(line.has_value());
        oks += line->rfind("ok ", 0) == 0 ? 1 : 0;
      }
      CHECK(eventually([&] { return std::filesystem::exists(dir / "links" / "snapshot"); }));
    }
    std::filesystem::remove_all(dir);
  }

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
