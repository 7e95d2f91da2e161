// Hostile input over the network to real node processes (tests/test_node.cpp) on loopback:
// a delta claiming 2^62 dots from an authenticated peer, sync frames from replica ids the
// peer never announced, floods of unauthenticated connections (from source addresses of
// 127/8 other than the good clients'), descriptor exhaustion, invented gossip, and a
// connection that never speaks. In each, a good node or client keeps being served while
// the bad input arrives. Bounded in time; children are killed and reaped by their handles.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crdt/awlww_map.hpp"
#include "crdt/type_signature.hpp"
#include "tests/child_process.hpp"
#include "tests/raw_peer.hpp"
#include "transport/frame.hpp"
#include "tests/test_support.hpp"

using namespace std::chrono_literals;
using namespace deltacrdt;
using deltacrdt::testing::ChildProcess;
using deltacrdt::testing::eventually;
using deltacrdt::testing::RawPeer;
using Map = AWLWWMap<std::string, std::string>;

namespace {

const char* kSecret = "hostile-process-test-secret";

const char* node_path() {
  const char* p = std::getenv("DELTACRDT_TEST_NODE");
  REQUIRE_MESSAGE(p != nullptr, "DELTACRDT_TEST_NODE must name the test-node program");
  return p;
}

struct TestNode {
  std::unique_ptr<ChildProcess> child;
  std::string address;
  TestNode(const std::string& name, std::vector<std::string> extra = {}, rlim_t max_files = 0,
           const std::string& log_path = {}) {
    std::vector<std::string> argv{node_path(), "--name", name, "--secret", kSecret};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<ChildProcess>(argv, max_files, log_path);
    const auto line = child->read_line(15s);
    REQUIRE_MESSAGE(line.has_value(), "test-node did not start");
    REQUIRE(line->rfind("ready ", 0) == 0);
    address = line->substr(6);
  }
  std::string request(const std::string& cmd) { return child->request(cmd); }
  // One NodeMetrics field from the `metrics` command; -1 when absent.
  long long metric(const std::string& key) {
    std::istringstream in(request("metrics"));
    std::string word;
    while (in >> word) {
      if (word.rfind(key + "=", 0) == 0) return std::stoll(word.substr(key.size() + 1));
    }
    return -1;
  }
  std::uint16_t port() const {
    return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }
};

// VmRSS of a process, in KiB.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

int open_files(pid_t pid) {
  int n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n - 2;  // . and ..
}

// A TCP connection from `source_ip` to 127.0.0.1:port; -1 if refused.
int connect_from(const std::string& source_ip, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, source_ip.c_str(), &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the other end closed fd (reads EOF or an error within `wait`).
bool closed_by_peer(int fd, std::chrono::milliseconds wait) {
  timeval tv{static_cast<time_t>(wait.count() / 1000),
             static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

struct Sockets {
  std::vector<int> fds;
  ~Sockets() {
    for (int fd : fds) ::close(fd);
  }
};

SyncMessage delta_message(const Map& d) { return DeltaBatch{0, 1, encode(d)}; }

// Puts on `writer`, each checked on `reader`: the good client that must keep being served.
void good_traffic(TestNode& writer, TestNode& reader, const std::string& prefix, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string k = prefix + std::to_string(i);
    REQUIRE(writer.request("put " + k + " v") == "ok");
  }
  const std::string last = prefix + std::to_string(n - 1);
  CHECK(eventually([&] { return reader.request("get " + last) == "value v"; }, 10s));
}

}  // namespace

TEST_SUITE("cluster.hostile_process") {
  // The 57-byte delta: it wedged the receiving node (and every node it later synced with)
  // while /_health kept answering, and SIGTERM no longer stopped it.
  TEST_CASE("a delta claiming 2^62 dots, sent by an authenticated peer, wedges nothing") {
    TestNode n1("n1");
    TestNode n2("n2", {"--seeds", n1.address});
    REQUIRE(eventually([&] { return n1.request("members") == "members n2"; }, 10s));
    RawPeer evil(n1.address, "test", "evil", kSecret);
    REQUIRE(evil.wait_up());
    const ReplicaId evil_id = 0xE71;
    evil.send_gossip({{"evil", "", 1}, {{"links", evil_id, type_signature<Map>()}}, {}});
    CausalContext claim;
    claim.insert_range(0xEE, 1, kMaxDotCounter);
    const Map hostile = Map{}.context_delta(claim);
    REQUIRE(encode(hostile).size() == 57);
    std::atomic<bool> done{false};
    std::thread attack([&] {
      while (!done.load()) {
        evil.send_sync("links", evil_id, evil.replica_id("links"), delta_message(hostile));
        std::this_thread::sleep_for(50ms);
      }
    });
    good_traffic(n1, n2, "a", 30);
    good_traffic(n2, n1, "b", 30);
    done = true;
    attack.join();
    // A node that joins afterwards catches up from nodes whose contexts hold the claim.
    TestNode n3("n3", {"--seeds", n1.address});
    CHECK(eventually([&] { return n3.request("get a0") == "value v"; }, 15s));
    CHECK(n3.request("put c v") == "ok");
    CHECK(eventually([&] { return n1.request("get c") == "value v"; }, 10s));
    n1.child->signal(SIGTERM);
    CHECK(n1.child->wait(10s) == 0);
  }

  TEST_CASE("sync frames from a replica id the peer never announced are dropped and counted") {
    TestNode n1("n1");
    RawPeer evil(n1.address, "test", "evil", kSecret);
    REQUIRE(evil.wait_up());
    const ReplicaId announced = 0xE71, forged = 0xBEEF;
    evil.send_gossip({{"evil", "", 1}, {{"links", announced, type_signature<Map>()}}, {}});
    Map none;
    const Map by_forged = none.put(forged, "forged", "x", HlcTimestamp{1});
    evil.send_sync("links", forged, evil.replica_id("links"), delta_message(by_forged));
    CHECK(eventually([&] { return n1.metric("sync_dropped") >= 1; }, 10s));
    CHECK(n1.request("get forged") == "none");
    Map mine;
    const Map by_announced = mine.put(announced, "honest", "y", HlcTimestamp{1});
    evil.send_sync("links", announced, evil.replica_id("links"), delta_message(by_announced));
    CHECK(eventually([&] { return n1.request("get honest") == "value y"; }, 10s));
  }

  // 100 connections announcing 4 MiB frames used to add 400 MB of memory in 3 s.
  TEST_CASE("unauthenticated connections cost little, and one address cannot take every slot") {
    TestNode n1("n1", {"--handshake-timeout", "3000"});
    const long before = rss_kib(n1.child->pid());
    Sockets flood;
    // From 127.0.0.2: frame headers announcing 4 MiB, then 64 KiB of "payload" each.
    std::string header("DCRW\x01\x01\x00\x00", 8);
    const std::uint32_t four_mib = 4u << 20;
    for (int i = 0; i < 4; ++i) header.push_back(static_cast<char>((four_mib >> (8 * i)) & 0xff));
    const std::string junk(64 * 1024, 'j');
    for (int i = 0; i < 100; ++i) {
      const int fd = connect_from("127.0.0.2", n1.port());
      if (fd < 0) continue;
      flood.fds.push_back(fd);
      (void)::send(fd, header.data(), header.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    // From 127.0.0.3: 100 connections that say nothing.
    Sockets silent;
    for (int i = 0; i < 100; ++i) {
      const int fd = connect_from("127.0.0.3", n1.port());
      if (fd >= 0) silent.fds.push_back(fd);
    }
    // A good node from 127.0.0.1 links and replicates all the while.
    TestNode n2("n2", {"--seeds", n1.address});
    CHECK(eventually([&] { return n1.request("members") == "members n2"; }, 10s));
    good_traffic(n2, n1, "k", 20);
    CHECK(eventually([&] { return n1.metric("connections_refused") >= 84; }, 10s));
    CHECK(n1.metric("frames_rejected") >= 1);
    const long after = rss_kib(n1.child->pid());
    INFO("rss before ", before, " KiB, after ", after, " KiB");
    CHECK(after - before < 32 * 1024);
    // Those that were let in and never authenticated are closed at the handshake timeout.
    int closed = 0;
    const auto deadline = std::chrono::steady_clock::now() + 8s;
    for (int fd : silent.fds) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      closed += closed_by_peer(fd, std::max(left, 10ms)) ? 1 : 0;
    }
    CHECK(closed == static_cast<int>(silent.fds.size()));
    CHECK(n1.metric("handshakes_failed") >= 16);
  }

  // Under a descriptor limit, accept used to fail thousands of times a second (EMFILE),
  // starving everything else on the node.
  TEST_CASE("out of descriptors, accepting backs off instead of spinning, and recovers") {
    TestNode n1("n1", {"--max-handshakes-per-address", "1000"}, 64);
    Sockets flood;
    for (int i = 0; i < 120; ++i) {
      const int fd = connect_from("127.0.0.2", n1.port());
      if (fd >= 0) flood.fds.push_back(fd);
    }
    std::this_thread::sleep_for(3s);
    const long long errors = n1.metric("accept_errors");
    INFO("accept errors in 3 s: ", errors);
    CHECK(errors >= 1);
    CHECK(errors < 200);
    CHECK(n1.request("put during v") == "ok");  // the node itself keeps working
    CHECK(n1.request("get during") == "value v");
    for (int fd : flood.fds) ::close(fd);
    flood.fds.clear();
    TestNode n2("n2", {"--seeds", n1.address});
    CHECK(eventually([&] { return n1.request("members") == "members n2"; }, 15s));
    CHECK(eventually([&] { return n2.request("get during") == "value v"; }, 10s));
  }

  // One gossip frame naming 2,000 invented members used to leave 2,017 members listed for
  // good and hundreds of descriptors redialing them; a malformed address was never dialed
  // again after its dial threw.
  TEST_CASE("gossip naming thousands of invented members is bounded, then forgotten") {
    TestNode n1("n1", {"--forget-after", "3000"});
    TestNode n2("n2", {"--seeds", n1.address});
    REQUIRE(eventually([&] { return n1.request("members") == "members n2"; }, 10s));
    {
      RawPeer evil(n1.address, "test", "evil", kSecret);
      REQUIRE(evil.wait_up());
      wire::Gossip g{{"evil", "", 1}, {}, {}};
      for (int i = 0; i < 2000; ++i) {
        // Loopback ports nothing listens on (dials fail at once).
        g.members.push_back(
            {"ghost-" + std::to_string(i), "127.0.0.1:" + std::to_string(1 + i), 1});
      }
      for (const char* bad : {"not-an-address", "[::1", "host:99999", ":80"}) {
        g.members.push_back({std::string("bad-") + bad, bad, 1});
      }
      evil.send_gossip(g);
      CHECK(eventually([&] { return n1.metric("gossip_rejected") >= 1; }, 10s));
      const long long known = n1.metric("members");
      INFO("members known: ", known);
      CHECK(known <= 1024);
      CHECK(known > 2);
      good_traffic(n2, n1, "g", 20);
      CHECK(open_files(n1.child->pid()) < 200);
    }
    // The invented members were never reached, and nothing names them any more.
    CHECK(eventually([&] { return n1.metric("members") <= 2; }, 15s));  // n2 and evil (down)
    CHECK(n1.metric("members_forgotten") >= 1000);
    good_traffic(n1, n2, "h", 10);
  }

  // A listener the node dials controls up to 200 bytes of a refusal reason that the node
  // logs: CR, LF and ESC in it used to reach the log as they came (forged lines, terminal
  // escapes).
  TEST_CASE("a refusal reason from a listener cannot forge a log line or drive a terminal") {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    Sockets owned{{listener}};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    const std::string listen_at = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    const std::string log_path =
        (std::filesystem::temp_directory_path() / ("deltacrdt-log-" + std::to_string(::getpid())))
            .string();
    TestNode n1("n1", {"--seeds", listen_at}, 0, log_path);
    const int conn = ::accept(listener, nullptr, nullptr);
    REQUIRE(conn >= 0);
    owned.fds.push_back(conn);
    char hello[1024];
    REQUIRE(::recv(conn, hello, sizeof hello, 0) > 0);  // the node's hello
    const std::string forged =
        "no\r\nts=2026-01-01T00:00:00.000Z level=error event=forged node=n1\x1b[2J\x1b]0;pwned\x07";
    const std::string refuse = transport::make_frame(transport::FrameType::refuse, forged);
    REQUIRE(::send(conn, refuse.data(), refuse.size(), MSG_NOSIGNAL) > 0);
    // The node keeps serving its own client meanwhile.
    CHECK(n1.request("put k v") == "ok");
    CHECK(eventually([&] {
      std::ifstream in(log_path);
      const std::string log((std::istreambuf_iterator<char>(in)), {});
      return log.find("event=link_rejected") != std::string::npos;
    }, 10s));
    n1.child->signal(SIGTERM);
    n1.child->wait(10s);
    std::ifstream in(log_path);
    const std::string log((std::istreambuf_iterator<char>(in)), {});
    std::filesystem::remove(log_path);
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      CHECK(line.rfind("ts=", 0) == 0);  // every line is one the node wrote whole
    }
    CHECK(log.find('\x1b') == std::string::npos);
    CHECK(log.find('\r') == std::string::npos);
    CHECK(log.find('\x07') == std::string::npos);
    CHECK(log.find("\\r\\nts=2026") != std::string::npos);  // there, escaped
  }

  // A pre-auth connection that sent nothing used to be closed by the idle timeout, before
  // the documented handshake timeout, and was neither logged nor counted.
  TEST_CASE("a connection that never speaks is closed at the handshake timeout, and counted") {
    TestNode n1("n1", {"--handshake-timeout", "4000"});  // test-node's idle timeout is 1 s
    const int fd = connect_from("127.0.0.1", n1.port());
    REQUIRE(fd >= 0);
    Sockets held{{fd}};
    CHECK_FALSE(closed_by_peer(fd, 2000ms));  // well past the idle timeout, still open
    CHECK(closed_by_peer(fd, 8000ms));
    CHECK(eventually([&] { return n1.metric("handshakes_failed") >= 1; }, 5s));
  }
}
