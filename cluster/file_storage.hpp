// FileStorage: the file-backed Storage (docs/storage-format.md). One directory per replica:
//
//   replica.id   the replica id, written once when the directory is first used
//   snapshot     the newest snapshot of the whole state, replaced atomically
//   wal          the deltas logged since that snapshot, one checksummed record each
//
//   wal.next     while a snapshot is taken: the deltas logged since it began
//
// Snapshots are written to a temporary file, fsynced and renamed over the old one (and the
// directory fsynced); `wal.next` then replaces `wal`. Recovery loads the snapshot, replays
// the log (and `wal.next`, when a crash came mid-snapshot) and stops at the first torn or
// corrupt record (a crash mid-write), cutting the log there so appends continue from a
// clean end. POSIX I/O; not thread-safe (one owner).
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cluster/storage.hpp"

namespace deltacrdt {

// A data directory that cannot be used: missing, unreadable, or holding damaged files that
// recovery must not guess around. The message names the path and the reason.
class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace storage_detail {
struct LogScan;
}  // namespace storage_detail

class FileStorage final : public Storage {
 public:
  // Opens the store in `dir`, which must exist and be a readable, writable directory. An
  // empty directory becomes a new store for `new_id`; otherwise the id on disk is kept and
  // `new_id` is ignored. Throws StorageError for a missing or unusable directory and for
  // damaged id or snapshot files; a torn end of the log is recovered from, not an error.
  FileStorage(std::filesystem::path dir, FsyncPolicy policy, ReplicaId new_id);
  ~FileStorage() override;
  FileStorage(const FileStorage&) = delete;
  FileStorage& operator=(const FileStorage&) = delete;

  // What was on disk when the store was opened.
  const Recovered& recovered() const { return recovered_; }
  // Frees the recovered snapshot and deltas (a copy of the whole state) once the replica
  // was built from them; recovered() then holds only the id and the sequence numbers.
  void release_recovered() {
    recovered_.snapshot = std::string();
    recovered_.deltas = std::vector<Recovered::Delta>();
  }

  ReplicaId id() const override { return recovered_.id; }
  Result<void> append(std::uint64_t seq, std::string_view delta) override;
  Result<void> sync() override;

  // The log is rotated: appends go to a fresh `wal.next` from here on, so the old `wal`
  // holds exactly what the snapshot adds to the previous one and is never copied on the
  // owner's thread. finish_snapshot renames `wal.next` over it.
  Result<SnapshotWriter> begin_snapshot(std::uint64_t seq) override;

  // The snapshot is durable: `wal.next` (what came after it) replaces the old log. If it
  // failed, the new records are appended to the old log instead, which then holds
  // everything since the previous snapshot again (rare, so the copy is acceptable). A crash
  // at any point leaves files that recovery reads correctly (see FileStorage()).
  void finish_snapshot(bool written) override;

  std::uint64_t log_bytes() const override { return log_bytes_; }

  // The snapshot being taken holds the old snapshot plus the log records appended before
  // begin_snapshot: both are read back from the files, which appends (past that offset)
  // and finish_snapshot (after the writer) leave alone meanwhile.
  SnapshotBasis snapshot_basis() override;

 private:
  std::string wal_header(std::uint64_t base) const;
  void load_snapshot();

  // Replays the log; cuts a torn or corrupt tail. A missing or unreadable log header starts
  // a fresh log (nothing durable can be in a log whose header never reached the disk).
  void load_log();

  // A crash during a snapshot left `wal.next` (appends made since it began) beside `wal`:
  // its records, after the intact ones of `wal` (`old`, scanned as `old_scan`), are the
  // rest of the log. Both are rewritten as one `wal` (torn tail cut) and `wal.next`
  // removed. A `wal.next` that cannot be the continuation of `wal` (a damaged header, a
  // base or a record below wal's last seq: the files do not belong together) is an error:
  // merging would put a seq decrease in the middle of the log, and every later open would
  // cut the records after it.
  void merge_next_log(const std::string& old, const storage_detail::LogScan& old_scan);

  std::filesystem::path dir_;
  FsyncPolicy policy_;
  Recovered recovered_;
  int wal_fd_ = -1;
  std::uint64_t next_seq_ = 0;  // the last appended c: appends may not go below it
  std::uint64_t log_bytes_ = 0;
  bool dirty_ = false;          // appended since the last fdatasync
  std::uint64_t wal_size_ = 0;  // bytes in the log file
  bool snapshotting_ = false;
  bool failed_ = false;              // a torn append could not be cut: no more appends
  bool two_logs_ = false;            // wal and wal.next both hold live records
  bool next_log_renamable_ = false;  // ... and wal.next may replace wal (the snapshot holds wal)
  std::uint64_t snapshot_seq_ = 0;
  std::uint64_t snapshot_log_offset_ = 0;
};

}  // namespace deltacrdt
