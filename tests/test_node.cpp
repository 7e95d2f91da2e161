// test-node: one Node in its own process, driven line by line on stdin, for the multi-process
// tests (tests/cluster_process_test.cpp). Hosts an AWLWWMap<string, string> "links" and a
// PNCounter "hits".
//
//   test-node --name N [--listen IP:PORT] [--advertise HOST:PORT] [--seeds A,B] --secret S
//             [--data-dir DIR] [--snapshot-bytes N] [--forget-after MS]
//             [--handshake-timeout MS] [--max-handshakes-per-address N]
//
// Prints "ready <address>" once listening. Commands, one reply line each:
//   put K V -> ok | dput K V -> ok K (durable) | info -> info ID SEQ
//   get K -> value V / none | size -> size N | incr N -> ok
//   count -> count N | members -> members a,b | known -> known N (members known, linked
//   or not) | metrics -> metrics key=value ... (NodeMetrics) | digest -> digest X
//   quit -> bye
// SIGINT/SIGTERM: stop the node (goodbye on every link) and exit 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/node.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/pncounter.hpp"

using namespace deltacrdt;
using Map = AWLWWMap<std::string, std::string>;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep))
    if (!part.empty()) out.push_back(part);
  return out;
}

int usage(const std::string& why) {
  std::fprintf(stderr,
               "test-node: %s\nusage: test-node --name N [--listen IP:PORT] "
               "[--advertise HOST:PORT] [--seeds A,B] --secret S\n",
               why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  NodeOptions o;
  std::uint64_t snapshot_bytes = 0;  // 0: the default threshold
  o.cluster = "test";
  o.link.heartbeat_interval = std::chrono::milliseconds(100);
  o.link.idle_timeout = std::chrono::milliseconds(1000);
  o.reconnect_min = std::chrono::milliseconds(50);
  o.reconnect_max = std::chrono::milliseconds(500);
  o.gossip_interval = std::chrono::milliseconds(200);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--name")
      o.name = v;
    else if (a == "--listen")
      o.listen = v;
    else if (a == "--advertise")
      o.advertise = v;
    else if (a == "--seeds")
      o.seeds = split(v, ',');
    else if (a == "--secret")
      o.secret = v;
    else if (a == "--data-dir")
      o.data_dir = v;
    else if (a == "--snapshot-bytes")
      snapshot_bytes = std::stoull(v);
    else if (a == "--forget-after")
      o.forget_unreached_after = std::chrono::milliseconds(std::stoll(v));
    else if (a == "--handshake-timeout")
      o.link.handshake_timeout = std::chrono::milliseconds(std::stoll(v));
    else if (a == "--max-handshakes-per-address")
      o.max_handshakes_per_address = std::stoull(v);
    else
      return usage("unknown option " + a);
  }
  // Block the signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::unique_ptr<Node> node;
  try {
    node = std::make_unique<Node>(o);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  Replica<Map>* links_ptr = nullptr;
  Replica<PNCounter>* hits_ptr = nullptr;
  try {
    ReplicaOptions<Map> ro;
    if (snapshot_bytes != 0) ro.sync.snapshot_log_bytes = snapshot_bytes;
    links_ptr = &node->add_replica<Map>("links", ro);
    hits_ptr = &node->add_replica<PNCounter>("hits");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test-node: %s\n", e.what());
    return 1;
  }
  auto& links = *links_ptr;
  auto& hits = *hits_ptr;
  std::thread([&node, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    node->stop();
    std::fflush(stdout);
    std::_Exit(0);
  }).detach();
  std::printf("ready %s\n", node->address().c_str());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, k, v;
    in >> cmd;
    if (cmd == "put" && in >> k >> v) {
      links.put(k, v).get();
      std::printf("ok\n");
    } else if (cmd == "dput" && in >> k >> v) {
      links.put(k, v, WriteConcern::durable()).get();
      std::printf("ok %s\n", k.c_str());
    } else if (cmd == "info") {
      std::printf("info %llu %llu\n", static_cast<unsigned long long>(links.id()),
                  static_cast<unsigned long long>(links.sequence().get()));
    } else if (cmd == "get" && in >> k) {
      const auto value = links.get(k).get();
      std::printf(value ? "value %s\n" : "none\n", value ? value->c_str() : "");
    } else if (cmd == "size") {
      std::printf("size %zu\n", links.read([](const Map& m) { return m.size(); }).get());
    } else if (cmd == "incr" && in >> v) {
      const ReplicaId id = hits.id();
      const auto by = std::stoull(v);
      hits.mutate([id, by](PNCounter& c) { return c.increment(id, by); }).get();
      std::printf("ok\n");
    } else if (cmd == "count") {
      std::printf(
          "count %lld\n",
          static_cast<long long>(hits.read([](const PNCounter& c) { return c.value(); }).get()));
    } else if (cmd == "members") {
      std::string names;
      for (const auto& m : node->live_members()) names += (names.empty() ? "" : ",") + m;
      std::printf("members %s\n", names.c_str());
    } else if (cmd == "known") {
      std::printf("known %zu\n", node->known_members().size());
    } else if (cmd == "metrics") {
      const NodeMetrics m = node->metrics();
      std::printf(
          "metrics peers=%zu handshakes_failed=%llu connections_refused=%llu accept_errors=%llu "
          "gossip_rejected=%llu members_forgotten=%llu members=%zu sync_dropped=%llu "
          "frames_rejected=%llu\n",
          m.peers, static_cast<unsigned long long>(m.handshakes_failed),
          static_cast<unsigned long long>(m.connections_refused),
          static_cast<unsigned long long>(m.accept_errors),
          static_cast<unsigned long long>(m.gossip_rejected),
          static_cast<unsigned long long>(m.members_forgotten), m.members,
          static_cast<unsigned long long>(m.sync_dropped),
          static_cast<unsigned long long>(m.frames_rejected));
    } else if (cmd == "digest") {
      std::printf("digest %llu\n", static_cast<unsigned long long>(
                                       links.read([](const Map& m) { return m.digest(); }).get()));
    } else if (cmd == "quit") {
      std::printf("bye\n");
      std::fflush(stdout);
      break;
    } else {
      std::printf("error unknown command\n");
    }
    std::fflush(stdout);
  }
  node->stop();
  return 0;
}
