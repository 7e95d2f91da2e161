// make-seeds DIR: writes the seed corpus of every fuzz target into DIR/<target>/, built with
// the library's own encoders (values, frames, handshakes, recorded protocol exchanges, data
// directories) in each target's input layout. fuzz/corpus/ holds its output, committed;
// `scripts/fuzz --seeds` regenerates it. Deterministic: the same build writes the same files.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/removed_members.hpp"
#include "cluster/replica_core.hpp"
#include "cluster/wire.hpp"
#include "fuzz/crdt_types.hpp"
#include "fuzz/fuzz_input.hpp"
#include "fuzz/storage_input.hpp"
#include "fuzz/sync_input.hpp"
#include "transport/frame.hpp"
#include "transport/handshake.hpp"

namespace {

using namespace deltacrdt;
using namespace deltacrdt::fuzz;
using namespace deltacrdt::transport;
namespace fs = std::filesystem;

fs::path root;
int written = 0;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = root / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << bytes;
  ++written;
}

HlcTimestamp ts(std::uint64_t i) { return HlcTimestamp::from_parts(1000 + i, 0); }

// ---- crdt_decode ----

// A value after a few operations of two replicas, and the delta of one more operation.
template <class T>
std::pair<T, T> history(const std::function<T(T&, ReplicaId, int)>& op) {
  T a, b;
  for (int i = 0; i < 6; ++i) b.join(op(a, 1 + static_cast<ReplicaId>(i % 2), i));
  T delta = op(a, 2, 6);
  return {a, delta};
}

template <class T>
void crdt_seeds(std::size_t index, const std::string& name,
                const std::function<T(T&, ReplicaId, int)>& op) {
  auto [state, delta] = history<T>(op);
  const auto write = [&](const std::string& suffix, const T& a, const T& b, std::uint8_t flags) {
    FuzzWriter w;
    w.u8(static_cast<std::uint8_t>(index)).u8(flags);
    w.blob(payload_of(encode(a))).blob(payload_of(encode(b)));
    w.u16(7).u16(64).u16(3);  // streaming piece sizes
    seed("crdt_decode", name + "_" + suffix, w.str());
  };
  write("state_delta", state, delta, 0);
  write("delta_state", delta, state, 0);
  write("bottom_state", T{}, state, 0);
  if constexpr (requires { T::kOldestReadableVersion; } &&
                !requires(T& t) { t.retire(ReplicaId{1}, ReplicaId{2}); }) {
    // A causal value with no out-of-order dots encodes alike in format 1 and 2 (the
    // counters' format 1 lacks the retired marks: no such seed for them).
    write("state_v1", state, T{}, kOldestVersion);
  }
}

std::string key(int i) { return "k" + std::to_string(i % 4); }

void crdt_corpus() {
  crdt_seeds<StringMap>(0, "awlww", [](StringMap& m, ReplicaId r, int i) {
    return i % 5 == 4 ? m.remove(key(i)) : m.put(r, key(i), "v" + std::to_string(i), ts(i));
  });
  crdt_seeds<CompactMap>(1, "awlww_compact", [](CompactMap& m, ReplicaId r, int i) {
    return m.put(r, CompactString(key(i)), CompactString(std::string(i * 7, 'x')), ts(i));
  });
  crdt_seeds<StringSet>(2, "orset", [](StringSet& s, ReplicaId r, int i) {
    return i % 3 == 2 ? s.remove(key(i)) : s.add(r, key(i));
  });
  crdt_seeds<CounterMap>(3, "counter_map", [](CounterMap& m, ReplicaId r, int i) {
    return i % 4 == 3 ? m.remove(key(i))
                      : m.update(key(i), [&](CausalCounter::Ref& c) { return c.increment(r, i); });
  });
  crdt_seeds<NestedMap>(4, "nested_map", [](NestedMap& m, ReplicaId r, int i) {
    using Inner = ORMap<std::string, ORSet<std::string>>;
    return m.update(key(i), [&](Inner::Ref& inner) {
      return inner.update(key(i + 1), [&](ORSet<std::string>::Ref& s) { return s.add(r, key(i)); });
    });
  });
  crdt_seeds<EWFlag>(5, "ew_flag", [](EWFlag& f, ReplicaId r, int i) {
    return i % 2 == 0 ? f.enable(r) : f.disable();
  });
  crdt_seeds<StringMV>(6, "mv_register", [](StringMV& m, ReplicaId r, int i) {
    return m.assign(r, "v" + std::to_string(i));
  });
  crdt_seeds<CausalCounter>(7, "causal_counter", [](CausalCounter& c, ReplicaId r, int i) {
    return i % 5 == 4 ? c.reset() : c.increment(r, i - 2);
  });
  crdt_seeds<GCounter>(8, "gcounter", [](GCounter& c, ReplicaId r, int i) {
    return c.increment(r, static_cast<std::uint64_t>(i + 1));
  });
  crdt_seeds<PNCounter>(9, "pncounter", [](PNCounter& c, ReplicaId r, int i) {
    return i % 2 == 0 ? c.increment(r, 3) : c.decrement(r, 1);
  });
  crdt_seeds<VectorClock>(10, "vector_clock",
                          [](VectorClock& v, ReplicaId r, int) { return v.increment(r); });
  crdt_seeds<StringLWW>(11, "lww_register", [](StringLWW& l, ReplicaId r, int i) {
    return l.assign(r, "v" + std::to_string(i), ts(i));
  });
  // Contexts: with gaps (runs in the cloud), and the 2^62 claim of the wedge.
  CausalContext gaps, claim;
  for (std::uint64_t c : {1, 2, 5, 6, 7, 11}) gaps.insert(Dot{1, c});
  gaps.insert_range(2, 3, 90);
  claim.insert_range(0xEE, 1, kMaxDotCounter);
  FuzzWriter w;
  w.u8(12).u8(0).blob(payload_of(encode(gaps))).blob(payload_of(encode(claim)));
  seed("crdt_decode", "context_gaps_claim", w.str());
  FuzzWriter hostile;
  hostile.u8(0).u8(0).blob(payload_of(encode(StringMap{}.context_delta(claim))));
  hostile.blob(payload_of(encode(history<StringMap>([](StringMap& m, ReplicaId r, int i) {
                                   return m.put(r, key(i), "v", ts(i));
                                 }).first)));
  seed("crdt_decode", "awlww_claim_2_62", hostile.str());
}

// ---- frame ----

void frame_corpus() {
  Handshake client(Handshake::Role::client, {"fuzz", "peer", 9, "another-secret-0123456789"});
  const std::string hello = client.start();
  FrameDecoder d;
  d.feed(hello);
  const Frame hello_frame = **d.next();
  {
    FuzzWriter w;
    w.u8(0).u16(1024).bytes(hello);
    seed("frame", "raw_hello", w.str());
  }
  {
    FuzzWriter w;
    w.u8(1).u16(1024).u8(static_cast<std::uint8_t>(hello_frame.type)).blob(hello_frame.payload);
    w.u8(static_cast<std::uint8_t>(FrameType::auth)).blob(std::string(40, 'm'));
    seed("frame", "structured_hello_auth", w.str());
  }
  {
    // As a client: the server's answer (a hello_ack with a MAC that cannot verify).
    Handshake server(Handshake::Role::server, {"fuzz", "srv", 3, "fuzz-secret-0123456789"});
    const std::string ack = server.on_frame(hello_frame);
    FuzzWriter w;
    w.u8(2).u16(1024).bytes(ack);
    seed("frame", "raw_hello_ack_to_client", w.str());
  }
  {
    std::string stream;
    append_frame(stream, FrameType::heartbeat, {});
    append_frame(stream, FrameType::sync, std::string(300, 's'));
    append_frame(stream, FrameType::refuse, "cluster name mismatch");
    FuzzWriter w;
    w.u8(0).u16(200).bytes(stream);
    seed("frame", "raw_frames_over_bound", w.str());
  }
}

// ---- wire ----

void wire_corpus() {
  const SyncMessage messages[] = {
      DeltaBatch{4, 6, "delta-bytes"},
      DeltaAck{4, 6},
      StateChunk{77, 3, 9, 12, "chunk-bytes"},
      StateAck{77, 3, false},
      DigestOffer{78, 1, 6, "digests"},
      BucketChunk{78, 2, "entries"},
      DigestDone{78, 3},
      DigestAnswer{78, 3, DigestStatus::unknown_transfer, "keys"},
      CatchUpRequest{11},
      CatchUpRequest{12, {3, 9}},
      CatchUpStarted{11, 79},
  };
  for (const SyncMessage& m : messages) {
    seed("wire", "sync_" + std::to_string(static_cast<int>(kind_of(m))),
         FuzzWriter().u8(0).bytes(wire::encode_sync("links", 5, 6, m)).str());
  }
  wire::Gossip g{{"n1", "127.0.0.1:7001", 42, 1000},
                 {{"links", 5}, {"redirects", 6}},
                 {{"n2", "127.0.0.1:7002", 43, 2000, true, true},
                  {"n3", "[::1]:7003", 44, 3000, false, true}}};
  seed("wire", "gossip", FuzzWriter().u8(1).bytes(wire::encode_gossip(g)).str());
  g.removed = {{"n4", 45, 1700000000000, {7, 9}}, {"n5", 46, 1700000000001, {}}};
  seed("wire", "gossip_removed", FuzzWriter().u8(1).bytes(wire::encode_gossip(g)).str());
  RemovedMembers file;
  for (const RemovedMember& m : g.removed) file.add(m, m.removed_at_ms);
  seed("wire", "removed_file", FuzzWriter().u8(4).bytes(file.encode_file()).str());
  detail::ByteWriter w64;
  detail::write_list(w64, std::vector<std::uint64_t>{1, 2, 3});
  seed("wire", "list64", FuzzWriter().u8(2).bytes(w64.take()).str());
  detail::ByteWriter w32;
  detail::write_list(w32, std::vector<std::uint32_t>{7, 8});
  seed("wire", "list32", FuzzWriter().u8(3).bytes(w32.take()).str());
}

// ---- sync: recorded exchanges between a neighbour and the target's replica ----

// Runs `neighbour` against a replica set up exactly as the sync target's, and records every
// message the neighbour sends it, with the time between them.
void record_exchange(const std::string& name, std::uint8_t opts, SyncMap neighbour_state,
                     const std::function<void(ReplicaCore<SyncMap>&, Time)>& during) {
  SyncOptions o;
  o.max_sync_bytes = (opts & 1) != 0 ? 2048 : 64 * 1024;
  o.digest_min_entries = (opts & 2) != 0 ? 0 : 1024;
  o.max_incoming_transfer_bytes = 1 << 20;
  o.max_buffer_bytes = 1 << 20;
  ReplicaCore<SyncMap> target(kSelf, o, seed_state(), 5);
  MemoryStorage storage(kSelf);
  target.attach_storage(&storage);
  target.set_neighbours({kNeighbour, kOther});
  ReplicaCore<SyncMap> peer(kNeighbour, o, std::move(neighbour_state), 1);
  peer.set_neighbours({kSelf});
  FuzzWriter w;
  w.u8(opts);
  Time now{};
  Time last_recorded{};
  target.tick(now);
  int recorded = 0;
  for (int step = 0; step < 60 && recorded < 200; ++step) {
    during(peer, now);
    peer.tick(now);
    for (auto& out : peer.take_outbox()) {
      if (out.to != kSelf) continue;
      const bool sealed = kind_of(out.msg) == SyncKind::delta;
      const auto advance =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - last_recorded);
      write_message(w, out.msg, 0, static_cast<std::uint16_t>(advance.count()), sealed);
      last_recorded = now;
      ++recorded;
      target.receive(now, kNeighbour, out.msg);
      target.tick(now);
    }
    for (auto& out : target.take_outbox()) {
      if (out.to == kNeighbour) peer.receive(now, kSelf, out.msg);
    }
    now += std::chrono::milliseconds(50);
  }
  seed("sync", name, w.str());
}

void sync_corpus() {
  SyncMap mostly_same = seed_state();
  for (int i = 0; i < 6; ++i) {
    (void)mostly_same.put(kNeighbour, "n" + std::to_string(i), "x", HlcTimestamp{500u + i});
  }
  const auto idle = [](ReplicaCore<SyncMap>&, Time) {};
  record_exchange("digest_catchup", 2, mostly_same, idle);
  record_exchange("whole_state_small_chunks", 1, mostly_same, idle);
  int n = 0;
  record_exchange("deltas", 0, SyncMap{}, [&n](ReplicaCore<SyncMap>& peer, Time now) {
    peer.mutate(now, [&](SyncMap& m) {
      ++n;
      return n % 4 == 0 ? m.remove("d" + std::to_string(n - 1))
                        : m.put(kNeighbour, "d" + std::to_string(n), "v", HlcTimestamp{900u + n});
    });
  });
  // The wedge: a delta whose context claims 2^62 dots.
  CausalContext claim;
  claim.insert_range(0xEE, 1, kMaxDotCounter);
  const SyncMessage m = DeltaBatch{0, 1, encode(SyncMap{}.context_delta(claim))};
  FuzzWriter w;
  w.u8(0);
  write_message(w, m, 0, 10, true);
  seed("sync", "claim_2_62", w.str());
}

// ---- storage ----

std::string delta_payload(int i) {
  SyncMap m;
  return std::string(payload_of(encode(m.put(kStorageId, "k" + std::to_string(i), "v", ts(i)))));
}

void storage_corpus() {
  std::vector<LogRecord> wal;
  for (int i = 1; i <= 4; ++i) wal.push_back({static_cast<std::uint64_t>(i), delta_payload(i), 0});
  seed("storage", "wal", write_directory(std::nullopt, 0, wal, std::nullopt));
  SyncMap state;
  for (int i = 1; i <= 4; ++i) (void)state.put(kStorageId, "k" + std::to_string(i), "v", ts(i));
  std::vector<LogRecord> after{{5, delta_payload(5), 0}, {6, delta_payload(6), 0}};
  seed("storage", "snapshot_wal",
       write_directory(std::pair{std::uint64_t{4}, std::string(payload_of(encode(state)))}, 4,
                       after, std::nullopt));
  seed("storage", "wal_and_next",
       write_directory(std::nullopt, 0, wal, std::pair{std::uint64_t{4}, after}));
  std::vector<LogRecord> behind{{3, delta_payload(3), 0}, {7, delta_payload(7), 0}};
  seed("storage", "next_does_not_continue",
       write_directory(std::nullopt, 0, wal, std::pair{std::uint64_t{2}, behind}));
  std::vector<LogRecord> damaged = wal;
  damaged[1].damage = 30;
  seed("storage", "damaged_middle", write_directory(std::nullopt, 0, damaged, std::nullopt));
  std::vector<LogRecord> torn = wal;
  torn.back().damage = 200;
  seed("storage", "damaged_last", write_directory(std::nullopt, 0, torn, std::nullopt));
}

// ---- http ----

void http_corpus() {
  const auto req = [](const std::string& name, const std::string& bytes) {
    seed("http", name, FuzzWriter().u16(97).bytes(bytes).str());
  };
  req("page", "GET / HTTP/1.1\r\nHost: s\r\n\r\n");
  req("list", "GET /api/links?limit=10&cursor=00000000000f4240-abc HTTP/1.1\r\nHost: s\r\n\r\n");
  req("remove_member",
      "DELETE /_cluster/members/n%33 HTTP/1.1\r\nHost: s\r\nAuthorization: Bearer x\r\n\r\n");
  req("shorten_form",
      "POST / HTTP/1.1\r\nHost: s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "Content-Length: 29\r\n\r\nurl=https%3A%2F%2Fexample.com");
  req("shorten_json",
      "POST /api/links HTTP/1.1\r\nHost: s\r\nContent-Length: 31\r\n\r\n"
      "{\"url\":\"https://example.com/a\"}");
  req("follow", "GET /Abc123xY HTTP/1.1\r\nHost: s\r\n\r\n");
  req("head", "HEAD /Abc123xY HTTP/1.1\r\n\r\n");
  req("aggregates", "GET /Abc123xY/aggregates?x=1 HTTP/1.1\r\n\r\n");
  req("describe", "GET /api/links/Abc123xY HTTP/1.1\r\n\r\n");
  req("delete", "DELETE /Abc123xY HTTP/1.1\r\nConnection: close\r\n\r\n");
  req("chunked",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "a\r\nurl=http:/\r\n8\r\n/x.org/a\r\n0\r\n\r\n");
  req("xchunked",
      "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\nDELETE /a HTTP/1.1\r\n\r\n");
  req("metrics", "GET /metrics HTTP/1.0\r\n\r\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make-seeds DIR\n");
    return 2;
  }
  root = argv[1];
  crdt_corpus();
  frame_corpus();
  wire_corpus();
  sync_corpus();
  storage_corpus();
  http_corpus();
  std::printf("make-seeds: %d seeds in %s\n", written, root.c_str());
  return 0;
}
