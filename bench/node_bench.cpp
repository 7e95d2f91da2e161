// node-bench: two nodes in two processes on loopback TCP. This process runs node A; it starts
// itself again (`--serve`) as node B, driven on stdin. Measures: 1M puts on A until B has
// them all (keys/s, bytes on the wire per key); latency of one put against 1M keys until B's
// on_diffs sees it (p50/p99, default sync interval); a fresh node C catching up 1M keys.
// `node-bench [keys] [--tls]`: --tls runs every link over TLS 1.3 (certificates made with the
// openssl command). Prints Markdown.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.hpp"
#include "cluster/node.hpp"
#include "crdt/awlww_map.hpp"
#include "tests/child_process.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;
using bench::Clock;
using bench::key;
using bench::seconds_since;

namespace {

constexpr const char* kSecret = "bench-secret-0123456789";

// With --tls: the directory holding ca.pem, node.pem and node.key (one certificate for every
// node is enough here: peers are verified against the CA).
std::string tls_dir;

NodeOptions options(const std::string& name) {
  NodeOptions o;
  o.name = name;
  o.cluster = "bench";
  o.secret = kSecret;
  o.logger = std::make_shared<Logger>(LogLevel::warn);
  if (!tls_dir.empty()) o.tls = {tls_dir + "/node.pem", tls_dir + "/node.key", tls_dir + "/ca.pem"};
  return o;
}

// A CA and a node certificate made with the openssl command in a new temporary directory.
std::string make_certificates() {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("deltacrdt-bench-tls-" + std::to_string(::getpid())))
                              .string();
  std::filesystem::create_directories(dir);
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  const std::string cmds[] = {
      "openssl req -x509" + ec + "-days 2 -subj /CN=bench-ca -keyout " + dir + "/ca.key -out " +
          dir + "/ca.pem",
      "openssl req" + ec + "-subj /CN=node -keyout " + dir + "/node.key -out " + dir + "/node.csr",
      "openssl x509 -req -days 2 -in " + dir + "/node.csr -CA " + dir + "/ca.pem -CAkey " + dir +
          "/ca.key -CAcreateserial -out " + dir + "/node.pem"};
  for (const auto& c : cmds) {
    if (std::system((c + " >/dev/null 2>&1").c_str()) != 0) {
      throw std::runtime_error("openssl failed: " + c);
    }
  }
  return dir;
}

// Node B or C: "size" -> size N; "watch K V" -> seen (once K has value V); "quit".
int serve(const std::string& name, const std::string& seed) {
  NodeOptions o = options(name);
  o.seeds = {seed};
  Node node(o);
  std::mutex mu;
  std::condition_variable cv;
  std::string watched_key, watched_value;
  bool seen = false;
  ReplicaOptions<Map> ro;  // notified on the node's own notification thread
  ro.on_diffs = [&](const std::vector<KeyChange<std::string, std::string>>& changes) {
    std::lock_guard lock(mu);
    for (const auto& c : changes) {
      if (c.key == watched_key && c.value && *c.value == watched_value) seen = true;
    }
    cv.notify_all();
  };
  auto& links = node.add_replica<Map>("links", ro);
  std::printf("ready %s\n", node.address().c_str());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "size") {
      std::printf("size %zu\n", links.read([](const Map& m) { return m.size(); }).get());
    } else if (cmd == "watch") {
      std::unique_lock lock(mu);
      in >> watched_key >> watched_value;
      seen = false;
      lock.unlock();
      std::printf("armed\n");
      std::fflush(stdout);
      lock.lock();
      cv.wait_for(lock, 5s, [&] { return seen; });
      std::printf(seen ? "seen\n" : "timeout\n");
    } else if (cmd == "bytes") {
      std::printf("bytes %llu\n", static_cast<unsigned long long>(node.metrics().bytes_in +
                                                                  node.metrics().bytes_out));
    } else if (cmd == "quit") {
      break;
    }
    std::fflush(stdout);
  }
  node.stop();  // no notification runs after this; the callback's state goes next
  return 0;
}

struct Child {
  std::unique_ptr<testing::ChildProcess> p;
  explicit Child(const std::string& name, const std::string& seed) {
    std::vector<std::string> argv{"/proc/self/exe", "--serve", name, seed};
    if (!tls_dir.empty()) argv.push_back(tls_dir);
    p = std::make_unique<testing::ChildProcess>(argv);
    const auto ready = p->read_line(10s);
    if (!ready || ready->rfind("ready", 0) != 0) throw std::runtime_error("child did not start");
  }
  std::size_t size() {
    const std::string r = p->request("size");
    return r.rfind("size ", 0) == 0 ? std::stoul(r.substr(5)) : 0;
  }
  bool wait_size(std::size_t n, std::chrono::seconds limit) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      if (size() >= n) return true;
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::string(argv[1]) == "--serve") {
    if (argc == 5) tls_dir = argv[4];
    return serve(argv[2], argv[3]);
  }
  std::size_t n = 1000000;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--tls") {
      tls_dir = make_certificates();
    } else {
      n = std::stoul(argv[i]);
    }
  }
  std::printf("## node-bench: two nodes, two processes, loopback TCP%s\n\n",
              tls_dir.empty() ? "" : " over TLS 1.3");
  std::printf("| figure | result | wire |\n|---|---|---|\n");
  std::fflush(stdout);

  Node a(options("a"));
  auto& links = a.add_replica<Map>("links");
  Child b("b", a.address());
  while (a.live_members().empty()) std::this_thread::sleep_for(1ms);

  const std::string value(32, 'v');
  const auto bytes0 = a.metrics().bytes_in + a.metrics().bytes_out;
  const auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i)
    links.put(key(i), value, {}, [](std::exception_ptr, std::uint64_t) {});
  const bool ok = b.wait_size(n, 300s);
  const double s = seconds_since(start);
  const auto bytes = a.metrics().bytes_in + a.metrics().bytes_out - bytes0;
  std::printf(
      "| %zu puts on A until B has them all | %.2f s = %.0f k keys/s | %.1f bytes/key |%s\n", n, s,
      static_cast<double>(n) / s / 1e3, static_cast<double>(bytes) / static_cast<double>(n),
      ok ? "" : " TIMEOUT");
  std::fflush(stdout);

  std::this_thread::sleep_for(500ms);
  std::vector<double> ms;
  const auto lat_bytes0 = a.metrics().bytes_in + a.metrics().bytes_out;
  const int samples = 200;
  for (int i = 0; i < samples; ++i) {
    const std::string marker = "m" + std::to_string(i);
    const std::string k = key(static_cast<std::size_t>(i) * 7 % n);
    if (b.p->request("watch " + k + " " + marker) != "armed") break;
    const auto t0 = Clock::now();
    links.put(k, marker, {}, [](std::exception_ptr, std::uint64_t) {});
    const auto reply = b.p->read_line(10s);
    if (!reply || *reply != "seen") break;
    ms.push_back(seconds_since(t0) * 1e3);
    std::this_thread::sleep_for(2ms);
  }
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    const auto pct = [&](double p) {
      return ms[static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1))];
    };
    std::printf(
        "| latency of one put against %zu keys until B's on_diffs sees it (%zu samples) | p50 "
        "%.2f ms, p99 %.2f ms | %.0f bytes/put |\n",
        n, ms.size(), pct(0.5), pct(0.99),
        static_cast<double>(a.metrics().bytes_in + a.metrics().bytes_out - lat_bytes0) /
            static_cast<double>(ms.size()));
  }
  std::fflush(stdout);

  const auto c_bytes0 = a.metrics().bytes_out + a.metrics().bytes_in;
  const auto c_start = Clock::now();
  Child c("c", a.address());
  const bool c_ok = c.wait_size(n, 300s);
  const double cs = seconds_since(c_start);
  const auto c_bytes = a.metrics().bytes_out + a.metrics().bytes_in - c_bytes0;
  std::printf(
      "| fresh node C (new process) catching up %zu keys, from start | %.2f s | %.1f bytes/key "
      "(A's links, includes B's traffic meanwhile) |%s\n",
      n, cs, static_cast<double>(c_bytes) / static_cast<double>(n), c_ok ? "" : " TIMEOUT");
  b.p->request("quit", 1s);
  c.p->request("quit", 1s);
  if (!tls_dir.empty()) std::filesystem::remove_all(tls_dir);
  return 0;
}
