// Storage (cluster/storage.hpp, cluster/file_storage.hpp): recovery after a crash at every
// byte of the log, corrupt records, snapshots, and clear errors for unusable directories.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster/file_storage.hpp"
#include "cluster/storage_format.hpp"
#include "cluster/io_threads.hpp"
#include "cluster/replica.hpp"
#include "cluster/sync_transport.hpp"
#include "crdt/awlww_map.hpp"

using namespace deltacrdt;
namespace fs = std::filesystem;
using Map = AWLWWMap<std::string, std::string>;

namespace {

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() /
           ("deltacrdt-storage-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string payload(std::uint64_t i) {
  return "delta-" + std::to_string(i) + std::string(i % 7, '#');
}

}  // namespace

TEST_SUITE("cluster.storage") {
  TEST_CASE("a new directory gets the given id; reopening keeps it and replays the log") {
    TempDir d;
    {
      FileStorage s(d.path, FsyncPolicy::always, 42);
      CHECK(s.id() == 42);
      CHECK(s.recovered().deltas.empty());
      for (std::uint64_t i = 1; i <= 5; ++i) REQUIRE(s.append(i, payload(i)));
    }
    FileStorage s(d.path, FsyncPolicy::always, 99);  // the id on disk wins
    CHECK(s.id() == 42);
    REQUIRE(s.recovered().deltas.size() == 5);
    CHECK(s.recovered().deltas[3].seq == 4);
    CHECK(s.recovered().deltas[3].bytes == payload(4));
    CHECK(s.recovered().next_seq() == 5);
    CHECK(s.recovered().torn_bytes == 0);
    CHECK_FALSE(s.append(4, "again"));  // c never goes back
    CHECK(s.append(5, "unbuffered delta: c unchanged"));
    CHECK(s.append(6, payload(6)));
  }

  TEST_CASE("a snapshot replaces the log; recovery is snapshot plus later deltas") {
    TempDir d;
    {
      FileStorage s(d.path, FsyncPolicy::batched, 7);
      for (std::uint64_t i = 1; i <= 10; ++i) REQUIRE(s.append(i, payload(i)));
      REQUIRE(s.sync());
      CHECK_FALSE(s.snapshot(9, "too early"));  // would drop delta 10
      REQUIRE(s.snapshot(10, "state-at-10"));
      CHECK(s.log_bytes() == 0);
      for (std::uint64_t i = 11; i <= 13; ++i) REQUIRE(s.append(i, payload(i)));
      REQUIRE(s.sync());
    }
    FileStorage s(d.path, FsyncPolicy::batched, 7);
    CHECK(s.recovered().snapshot == "state-at-10");
    CHECK(s.recovered().snapshot_seq == 10);
    REQUIRE(s.recovered().deltas.size() == 3);
    CHECK(s.recovered().deltas.front().seq == 11);
    CHECK(s.recovered().next_seq() == 13);
  }

  TEST_CASE("appends continue while a snapshot is written; the log keeps only what came after") {
    TempDir d;
    {
      FileStorage s(d.path, FsyncPolicy::batched, 7);
      for (std::uint64_t i = 1; i <= 5; ++i) REQUIRE(s.append(i, payload(i)));
      auto writer = s.begin_snapshot(5);
      REQUIRE(writer.has_value());
      CHECK_FALSE(s.begin_snapshot(5).has_value());  // one at a time
      for (std::uint64_t i = 6; i <= 8; ++i) REQUIRE(s.append(i, payload(i)));
      // The writer may run on another thread while the owner appends.
      std::thread t([&] { REQUIRE((*writer)("state-at-5")); });
      t.join();
      s.finish_snapshot(true);
      REQUIRE(s.append(9, payload(9)));
      REQUIRE(s.sync());
    }
    FileStorage s(d.path, FsyncPolicy::batched, 7);
    CHECK(s.recovered().snapshot == "state-at-5");
    REQUIRE(s.recovered().deltas.size() == 4);  // 6, 7, 8 and 9
    CHECK(s.recovered().deltas.front().bytes == payload(6));
    CHECK(s.recovered().next_seq() == 9);
  }

  TEST_CASE("a crash between the snapshot and the new log loses nothing") {
    TempDir d;
    std::string old_log;
    {
      FileStorage s(d.path, FsyncPolicy::always, 7);
      for (std::uint64_t i = 1; i <= 4; ++i) REQUIRE(s.append(i, payload(i)));
      old_log = read(d.path / "wal");
      REQUIRE(s.snapshot(4, "state-at-4"));
    }
    write(d.path / "wal", old_log);  // as if the log's rename never happened
    FileStorage s(d.path, FsyncPolicy::always, 7);
    CHECK(s.recovered().snapshot_seq == 4);
    // Records below the snapshot's c are skipped; the one at c is replayed (idempotent).
    CHECK(s.recovered().deltas.size() == 1);
    CHECK(s.recovered().next_seq() == 4);
  }

  // A snapshot moves appends to wal.next until it is done. A crash at each step, and a
  // failed snapshot, must all recover every record; a torn end of wal.next is cut.
  TEST_CASE("a crash or a failure mid-snapshot, with appends in wal.next, loses nothing") {
    for (int point = 0; point <= 4; ++point) {
      CAPTURE(point);  // 0, 4: crash before the snapshot is written (4: torn wal.next);
                       // 1: written, wal.next not renamed; 2: finished; 3: snapshot failed
      TempDir d;
      {
        FileStorage s(d.path, FsyncPolicy::always, 7);
        for (std::uint64_t i = 1; i <= 3; ++i) REQUIRE(s.append(i, payload(i)));
        auto writer = s.begin_snapshot(3);
        REQUIRE(writer.has_value());
        CHECK(fs::exists(d.path / "wal.next"));
        for (std::uint64_t i = 4; i <= 6; ++i) REQUIRE(s.append(i, payload(i)));
        if (point == 1 || point == 2) REQUIRE((*writer)("state-at-3"));
        if (point == 2 || point == 3) {
          s.finish_snapshot(point == 2);
          CHECK_FALSE(fs::exists(d.path / "wal.next"));
          REQUIRE(s.append(7, payload(7)));
        }
      }
      if (point == 4) {
        const std::string next = read(d.path / "wal.next");
        write(d.path / "wal.next", next.substr(0, next.size() - 3));  // record 6 torn
      }
      FileStorage s(d.path, FsyncPolicy::always, 7);
      CHECK_FALSE(fs::exists(d.path / "wal.next"));  // merged into one log
      const Recovered& r = s.recovered();
      CHECK(r.snapshot == (point == 1 || point == 2 ? "state-at-3" : ""));
      std::vector<std::uint64_t> seqs;
      for (const auto& x : r.deltas) seqs.push_back(x.seq);
      std::vector<std::uint64_t> expected;
      // Point 1 still has the old log, whose record at the snapshot's c replays (idempotent).
      const std::uint64_t first = point == 1 ? 3 : point == 2 ? 4 : 1;
      const std::uint64_t last = point == 4 ? 5 : point >= 2 ? 7 : 6;
      for (std::uint64_t q = first; q <= last; ++q) expected.push_back(q);
      CHECK(seqs == expected);
      CHECK(r.deltas.back().bytes == payload(last));
      // And the merged log takes appends and reopens the same.
      REQUIRE(s.append(last + 1, payload(last + 1)));
      FileStorage again(d.path, FsyncPolicy::always, 7);
      CHECK(again.recovered().next_seq() == last + 1);
    }
  }

  // Crash points: the log cut at every byte, and every record corrupted in turn. A cut (a
  // torn tail) or damage to the last record recovers exactly the records that were whole
  // before it; damage with intact records after it is an error naming the log, since those
  // records may have been acknowledged.
  TEST_CASE("recovery yields the intact prefix of a torn log and refuses one damaged inside") {
    TempDir d;
    std::vector<std::size_t> ends;  // file size after each append
    {
      FileStorage s(d.path, FsyncPolicy::never, 5);
      ends.push_back(fs::file_size(d.path / "wal"));
      for (std::uint64_t i = 0; i < 12; ++i) {
        REQUIRE(s.append(i + 1, payload(i)));
        ends.push_back(fs::file_size(d.path / "wal"));
      }
    }
    const std::string full = read(d.path / "wal");
    REQUIRE(full.size() == ends.back());
    const auto intact_records = [&](std::size_t size) {
      std::size_t n = 0;
      while (n + 1 < ends.size() && ends[n + 1] <= size) ++n;
      return n;
    };
    for (std::size_t cut = 0; cut <= full.size(); ++cut) {
      CAPTURE(cut);
      write(d.path / "wal", full.substr(0, cut));
      FileStorage s(d.path, FsyncPolicy::never, 5);
      const std::size_t expect = cut < ends[0] ? 0 : intact_records(cut);
      REQUIRE(s.recovered().deltas.size() == expect);
      for (std::size_t i = 0; i < expect; ++i) REQUIRE(s.recovered().deltas[i].bytes == payload(i));
      // The torn tail was cut: appending continues and survives another reopen.
      REQUIRE(s.append(expect + 1, "next"));
    }
    for (std::size_t r = 0; r + 1 < ends.size(); ++r) {
      for (std::size_t at : {ends[r], ends[r] + 5, (ends[r] + ends[r + 1]) / 2, ends[r + 1] - 1}) {
        CAPTURE(at);
        std::string bad = full;
        bad[at] = static_cast<char>(bad[at] ^ 0x5a);
        write(d.path / "wal", bad);
        if (r + 2 < ends.size()) {
          try {
            FileStorage s(d.path, FsyncPolicy::never, 5);
            FAIL("a log damaged before its last record must not open");
          } catch (const StorageError& e) {
            CHECK(std::string(e.what()).find("wal") != std::string::npos);
            CHECK(std::string(e.what()).find("offset " + std::to_string(ends[r])) !=
                  std::string::npos);
          }
          CHECK(read(d.path / "wal") == bad);  // nothing was cut
          continue;
        }
        FileStorage s(d.path, FsyncPolicy::never, 5);
        REQUIRE(s.recovered().deltas.size() == r);
        REQUIRE(s.recovered().torn_bytes == full.size() - ends[r]);
      }
    }
  }

  // A record whose seq goes back has a valid checksum, so no crash wrote it: the log was
  // assembled from files that do not belong together.
  TEST_CASE("a log whose seq goes back is an error, not a torn tail") {
    TempDir d;
    {
      FileStorage s(d.path, FsyncPolicy::always, 5);
      for (std::uint64_t i = 1; i <= 3; ++i) REQUIRE(s.append(i * 10, payload(i)));
    }
    std::string wal = read(d.path / "wal");
    // A record with seq 15 appended after 30, sealed like any other.
    std::string rec;
    storage_detail::put32(rec, 3);
    detail::append_le64(rec, 15);
    rec += "abc";
    storage_detail::seal(rec);
    write(d.path / "wal", wal + rec);
    CHECK_THROWS_AS(FileStorage(d.path, FsyncPolicy::always, 5), StorageError);
  }

  // wal = {5, 6} beside a wal.next = {4, 7} that came from elsewhere: merging them would put
  // a seq decrease in the middle of the log, and every append after the open (acknowledged
  // under fsync always) would be cut at the next open. The pair is refused instead.
  TEST_CASE("a wal.next that does not continue wal is refused, never merged") {
    TempDir a, b;
    {
      FileStorage s(a.path, FsyncPolicy::always, 7);
      REQUIRE(s.append(5, payload(5)));
      REQUIRE(s.append(6, payload(6)));
    }
    {
      FileStorage s(b.path, FsyncPolicy::always, 7);
      REQUIRE(s.begin_snapshot(0).has_value());  // crash mid-snapshot: wal.next stays
      REQUIRE(s.append(4, payload(4)));
      REQUIRE(s.append(7, payload(7)));
    }
    write(b.path / "wal", read(a.path / "wal"));
    const std::string next = read(b.path / "wal.next");
    try {
      FileStorage s(b.path, FsyncPolicy::always, 7);
      FAIL("a mismatched wal.next must not open");
    } catch (const StorageError& e) {
      CHECK(std::string(e.what()).find("wal.next") != std::string::npos);
    }
    CHECK(read(b.path / "wal.next") == next);  // both files left as they were
    CHECK(read(b.path / "wal") == read(a.path / "wal"));
    // The same wal.next after a wal that it does continue merges, and appends survive.
    fs::remove(b.path / "wal");
    {
      FileStorage s(b.path, FsyncPolicy::always, 7);
      REQUIRE(s.recovered().deltas.size() == 2);
      REQUIRE(s.append(8, payload(8)));
    }
    FileStorage again(b.path, FsyncPolicy::always, 7);
    CHECK(again.recovered().next_seq() == 8);
    CHECK(again.recovered().deltas.size() == 3);
  }

  TEST_CASE("unusable directories and damaged files are clear errors") {
    TempDir d;
    CHECK_THROWS_AS(FileStorage(d.path / "missing", FsyncPolicy::always, 1), StorageError);
    write(d.path / "file", "x");
    CHECK_THROWS_AS(FileStorage(d.path / "file", FsyncPolicy::always, 1), StorageError);
    {
      FileStorage s(d.path, FsyncPolicy::always, 3);
      REQUIRE(s.append(1, "a"));
      REQUIRE(s.snapshot(1, "state"));
    }
    std::string snap = read(d.path / "snapshot");
    snap[40] ^= 1;
    write(d.path / "snapshot", snap);
    try {
      FileStorage s(d.path, FsyncPolicy::always, 3);
      FAIL("a damaged snapshot must not open");
    } catch (const StorageError& e) {
      CHECK(std::string(e.what()).find("checksum") != std::string::npos);
    }
    fs::remove(d.path / "replica.id");
    CHECK_THROWS_AS(FileStorage(d.path, FsyncPolicy::always, 3), StorageError);
  }

  TEST_CASE("memory storage keeps what a restart in the same process needs") {
    MemoryStorage m(9);
    REQUIRE(m.append(1, "a"));
    REQUIRE(m.append(2, "b"));
    REQUIRE(m.snapshot(2, "s"));
    REQUIRE(m.append(3, "c"));
    const Recovered r = m.recover();
    CHECK(r.snapshot == "s");
    CHECK(r.deltas.size() == 2);  // the record at the snapshot's c replays (idempotently)
    CHECK(r.next_seq() == 3);
  }

  TEST_CASE("the snapshot basis reads back the old snapshot and the records before begin") {
    TempDir d;
    {
      FileStorage s(d.path, FsyncPolicy::batched, 7);
      CHECK_FALSE(s.snapshot_basis());  // only while a snapshot runs
      for (std::uint64_t i = 1; i <= 3; ++i) REQUIRE(s.append(i, payload(i)));
      REQUIRE(s.snapshot(3, "state-at-3"));
      for (std::uint64_t i = 4; i <= 6; ++i) REQUIRE(s.append(i, payload(i)));
      auto writer = s.begin_snapshot(6);
      REQUIRE(writer.has_value());
      auto basis = s.snapshot_basis();
      REQUIRE(basis);
      for (std::uint64_t i = 7; i <= 8; ++i) REQUIRE(s.append(i, payload(i)));
      // Read on another thread while the owner appended more.
      Result<Recovered> r = Errc::corrupt;
      std::thread t([&] { r = basis(); });
      t.join();
      REQUIRE(r.has_value());
      CHECK(r->snapshot == "state-at-3");
      CHECK(r->snapshot_seq == 3);
      REQUIRE(r->deltas.size() == 3);  // 4, 5 and 6
      CHECK(r->deltas.back().bytes == payload(6));
      CHECK(r->next_seq() == 6);
      REQUIRE((*writer)("state-at-6"));
      s.finish_snapshot(true);
    }
    FileStorage s(d.path, FsyncPolicy::batched, 7);
    CHECK(s.recovered().snapshot == "state-at-6");
    CHECK(s.recovered().deltas.size() == 2);
    CHECK(s.recovered().next_seq() == 8);

    MemoryStorage m(9);
    REQUIRE(m.append(1, "a"));
    REQUIRE(m.snapshot(1, "s1"));
    REQUIRE(m.append(2, "b"));
    REQUIRE(m.begin_snapshot(2).has_value());
    REQUIRE(m.append(3, "c"));
    const Result<Recovered> mr = m.snapshot_basis()();
    REQUIRE(mr.has_value());
    CHECK(mr->snapshot == "s1");
    CHECK(mr->deltas.size() == 2);  // 1 and 2, not 3
    CHECK(mr->next_seq() == 2);
    m.finish_snapshot(false);
  }

  // A replica snapshots in the background while writers go on (rebuilt off the strand, and
  // encoded on it); what a restart recovers is exactly the replica's state.
  TEST_CASE("background snapshots, rebuilt or encoded, recover exactly the replica's state") {
    for (const bool off_strand : {true, false}) {
      CAPTURE(off_strand);
      TempDir d;
      Map expected;
      {
        IoThreads io(2);
        LocalTransport net;
        ReplicaOptions<Map> o;
        o.sync.snapshot_log_bytes = 4096;
        o.sync.sync_interval = std::chrono::milliseconds(5);
        o.sync.snapshot_off_strand = off_strand;
        o.storage = std::make_shared<FileStorage>(d.path, FsyncPolicy::never, 5);
        Replica<Map> r(io.runtime(), 5, net, o);
        std::vector<std::thread> writers;
        for (int w = 0; w < 2; ++w) {
          writers.emplace_back([&, w] {
            for (int i = 0; i < 1500; ++i) {
              const std::string key = "k" + std::to_string((i * 7 + w) % 400);
              if (i % 5 == 4) {
                (void)r.remove(key).get();
              } else {
                (void)r.put(key, "w" + std::to_string(w) + "-" + std::to_string(i)).get();
              }
            }
          });
        }
        for (auto& t : writers) t.join();
        // Let a last snapshot start and finish.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        expected = r.snapshot().get();
      }
      CHECK(fs::exists(d.path / "snapshot"));
      FileStorage s(d.path, FsyncPolicy::never, 5);
      CHECK(s.recovered().snapshot_seq > 0);
      auto recovered = recover_state<Map>(s.recovered());
      REQUIRE(recovered.has_value());
      CHECK(recovered->first == expected);
    }
  }

  // Replay decodes and joins the log in bounded batches (join_each); the result must be the
  // state the deltas make joined one by one, with batches cut by count and by bytes, and a
  // damaged record must still fail the whole recovery.
  TEST_CASE("recover_state replays a long log in batches to exactly the logged state") {
    Map writer;
    Recovered r;
    std::uint64_t seq = 0;
    for (int i = 0; i < 300; ++i) {  // one-key deltas over a 40,000-key snapshot
      if (i == 0) {
        for (int k = 0; k < 40000; ++k) {
          (void)writer.put(1, "s" + std::to_string(k), "v", HlcTimestamp::from_parts(1, 0));
        }
        r.snapshot = encode(writer);
        r.snapshot_seq = ++seq;
      }
      const std::string key = "s" + std::to_string((i * 7919) % 45000);
      Map d = i % 9 == 0 ? writer.remove(key)
                         : writer.put(2, key, "w" + std::to_string(i),
                                      HlcTimestamp::from_parts(2, static_cast<std::uint32_t>(i)));
      r.deltas.push_back({++seq, encode(d)});
    }
    // Two deltas of over half a MiB each: the byte bound cuts a batch after them.
    for (int big = 0; big < 2; ++big) {
      r.deltas.push_back(
          {++seq, encode(writer.put(3, "big" + std::to_string(big), std::string(600'000, 'x'),
                                    HlcTimestamp::from_parts(3, 0)))});
    }
    r.deltas.push_back({++seq, encode(writer.put(3, "last", "v", HlcTimestamp::from_parts(4, 0)))});
    auto recovered = recover_state<Map>(r);
    REQUIRE(recovered.has_value());
    CHECK(recovered->first == writer);
    CHECK(recovered->first.valid());
    CHECK(recovered->second == seq);

    r.deltas[150].bytes[r.deltas[150].bytes.size() / 2] ^= 0x5a;  // corrupt one record
    CHECK_FALSE(recover_state<Map>(r).has_value());
  }

  TEST_CASE("releasing what was recovered frees it and changes nothing on disk") {
    TempDir d;
    {
      FileStorage s(d.path, FsyncPolicy::always, 7);
      REQUIRE(s.append(1, payload(1)));
      REQUIRE(s.snapshot(1, "state-at-1"));
      REQUIRE(s.append(2, payload(2)));
    }
    FileStorage s(d.path, FsyncPolicy::always, 7);
    REQUIRE(s.recovered().deltas.size() == 1);
    s.release_recovered();
    CHECK(s.recovered().snapshot.empty());
    CHECK(s.recovered().deltas.empty());
    CHECK(s.recovered().id == 7);
    REQUIRE(s.append(3, payload(3)));  // appends still check c against what was recovered
    CHECK_FALSE(s.append(2, payload(2)));
    FileStorage again(d.path, FsyncPolicy::always, 7);
    CHECK(again.recovered().snapshot == "state-at-1");
    CHECK(again.recovered().next_seq() == 3);
  }

  // A failed snapshot merges wal.next back into wal atomically, then removes wal.next. A crash
  // between the two leaves both: recovery must see that wal already holds wal.next's records
  // and not replay or append them twice (which would end the log at the repeat).
  TEST_CASE("a crash after a failed snapshot merged the logs, before wal.next was removed") {
    TempDir d;
    std::string leftover;
    {
      FileStorage s(d.path, FsyncPolicy::always, 7);
      for (std::uint64_t i = 1; i <= 3; ++i) REQUIRE(s.append(i, payload(i)));
      REQUIRE(s.begin_snapshot(3).has_value());
      for (std::uint64_t i = 4; i <= 6; ++i) REQUIRE(s.append(i, payload(i)));
      leftover = read(d.path / "wal.next");
      s.finish_snapshot(false);
      CHECK_FALSE(fs::exists(d.path / "wal.next"));
    }
    write(d.path / "wal.next", leftover);
    for (int reopen = 0; reopen < 2; ++reopen) {
      FileStorage s(d.path, FsyncPolicy::always, 7);
      std::vector<std::uint64_t> seqs;
      for (const auto& x : s.recovered().deltas) seqs.push_back(x.seq);
      std::vector<std::uint64_t> expected{1, 2, 3, 4, 5, 6};
      if (reopen == 1) expected.push_back(7);
      CHECK(seqs == expected);
      CHECK_FALSE(fs::exists(d.path / "wal.next"));
      if (reopen == 0) REQUIRE(s.append(7, payload(7)));
    }
  }
}
