// Fuzz target: opening a data directory (cluster/file_storage.hpp) whose `snapshot`, `wal`
// and `wal.next` came from the input, then recovering an AWLWWMap from it (recover_state).
// A damaged directory must give an error, never a crash; and once a directory opened, what
// it recovered must survive: an append, a reopen, and the records are all still there (the
// silent loss of a merged log that went backwards is what this catches).
//
//   u8 files (bit 0: snapshot, 1: wal, 2: wal.next; bit 3/4/5: that file structured)
//   | per file present: raw form: blob bytes; structured form: u64 seq (the snapshot's or
//   the log's base), then for a snapshot blob state, for a log u8 records and per record
//   u64 seq, blob payload, u8 damage (0: none, else flip byte damage of the record)
//
// Structured files are framed and sealed by the target, so recovery's own checks are
// reached; every record payload is sealed as an AWLWWMap encoding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cluster/file_storage.hpp"
#include "cluster/replica_core.hpp"
#include "fuzz/fuzz_input.hpp"
#include "fuzz/storage_input.hpp"

namespace {

using namespace deltacrdt;
using namespace deltacrdt::fuzz;
namespace fs = std::filesystem;

const fs::path& scratch() {
  static const fs::path dir = [] {
    fs::path d =
        fs::temp_directory_path() / ("deltacrdt-fuzz-storage-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

void put_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzReader in(data, size);
  const fs::path& dir = scratch();
  for (const char* f : {"snapshot", "wal", "wal.next", "snapshot.tmp", "wal.tmp", "wal.next.tmp"}) {
    std::error_code ec;
    fs::remove(dir / f, ec);
  }
  put_file(dir / "replica.id", id_file(kStorageId));
  const DirectoryFiles files = read_directory(in);
  if (files.snapshot) put_file(dir / "snapshot", *files.snapshot);
  if (files.wal) put_file(dir / "wal", *files.wal);
  if (files.next) put_file(dir / "wal.next", *files.next);

  std::size_t recovered = 0;
  std::uint64_t next_seq = 0;
  try {
    FileStorage s(dir, FsyncPolicy::never, kStorageId);
    recovered = s.recovered().deltas.size();
    next_seq = s.recovered().next_seq();
    (void)recover_state<StorageMap>(s.recovered());
    require(!fs::exists(dir / "wal.next"), "an opened directory holds one log");
    if (next_seq >= storage_detail::kMaxSeq) return 0;  // c at its bound: no more appends
    require(static_cast<bool>(s.append(next_seq + 1, "appended")), "an opened store appends");
  } catch (const StorageError&) {
    return 0;  // refused, with a reason: fine
  }
  try {
    FileStorage again(dir, FsyncPolicy::never, kStorageId);
    require(again.recovered().deltas.size() == recovered + 1,
            "a reopened store has every record it had, and the one appended");
    require(again.recovered().next_seq() == next_seq + 1, "c survives a reopen");
  } catch (const StorageError&) {
    fault("a directory that opened and took an append no longer opens");
  }
  return 0;
}
