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

using namespace deltacrdt;
namespace fs = std::filesystem;

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

  // Crash points: the log cut at every byte, and every record corrupted in turn. Recovery
  // must return exactly the records that were whole before the damage, and never fail.
  TEST_CASE("recovery yields exactly the intact prefix of the log, whatever the damage") {
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
      for (std::size_t at : {ends[r], (ends[r] + ends[r + 1]) / 2, ends[r + 1] - 1}) {
        CAPTURE(at);
        std::string bad = full;
        bad[at] = static_cast<char>(bad[at] ^ 0x5a);
        write(d.path / "wal", bad);
        FileStorage s(d.path, FsyncPolicy::never, 5);
        REQUIRE(s.recovered().deltas.size() == r);
        REQUIRE(s.recovered().torn_bytes == full.size() - ends[r]);
      }
    }
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
}
