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

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cluster/storage.hpp"
#include "crdt/codec.hpp"

namespace deltacrdt {

// A data directory that cannot be used: missing, unreadable, or holding damaged files that
// recovery must not guess around. The message names the path and the reason.
class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace storage_detail {

inline constexpr std::uint16_t kFormatVersion = 1;
inline constexpr std::size_t kIdFileBytes = 4 + 2 + 2 + 8 + 8 + 8;  // with the checksum
inline constexpr std::size_t kSnapshotHeaderBytes = 4 + 2 + 2 + 8 + 8 + 8;
inline constexpr std::size_t kWalHeaderBytes = 4 + 2 + 2 + 8 + 8 + 8;
inline constexpr std::size_t kRecordOverhead = 4 + 8 + 8;  // length, seq, checksum
inline constexpr std::uint32_t kMaxRecordBytes = 1u << 30;
// A sanity bound on sequence numbers read from disk (c counts deltas: at a billion a second
// it takes 146 years to reach), so that c + 1 never wraps. Beyond it a file is damaged.
inline constexpr std::uint64_t kMaxSeq = std::uint64_t{1} << 62;

inline void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
inline void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline std::uint64_t get(std::string_view b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= std::uint64_t{static_cast<unsigned char>(b[at + i])} << (8 * i);
  return v;
}
inline void seal(std::string& out) { detail::append_le64(out, detail::hash_bytes(out)); }
inline bool sealed(std::string_view b) {
  return b.size() >= 8 && detail::read_le64(b.data() + b.size() - 8) ==
                              detail::hash_bytes(b.substr(0, b.size() - 8));
}

inline std::string header(const char (&magic)[5], ReplicaId id, std::uint64_t value) {
  std::string out(magic, 4);
  put16(out, kFormatVersion);
  put16(out, 0);
  detail::append_le64(out, id);
  detail::append_le64(out, value);
  return out;
}

inline boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

inline bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::string out;
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw StorageError(p.string() + ": cannot open: " + std::strerror(errno));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw StorageError(p.string() + ": cannot read: " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

inline void fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes `bytes` to dir/name atomically: a temporary file, fsync, rename, directory fsync.
inline bool write_atomically(const std::filesystem::path& dir, const std::string& name,
                             std::string_view bytes) {
  const auto tmp = dir / (name + ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = write_all(fd, bytes) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), (dir / name).c_str()) != 0) return false;
  fsync_dir(dir);
  return true;
}

// The snapshot file of replica `id`: fills r.snapshot and r.snapshot_seq (left empty when
// there is no file). Throws StorageError when the file is damaged.
inline void read_snapshot(const std::filesystem::path& path, ReplicaId id, Recovered& r) {
  if (!std::filesystem::exists(path)) return;
  const std::string b = read_file(path);
  const auto bad = [&](const char* why) { return StorageError(path.string() + ": " + why); };
  if (b.size() < kSnapshotHeaderBytes + 8 || b.compare(0, 4, "DCSN") != 0) {
    throw bad("not a snapshot");
  }
  if (get(b, 4, 2) != kFormatVersion) throw bad("unknown format version");
  if (!sealed(b)) throw bad("checksum mismatch (damaged)");
  if (get(b, 8, 8) != id) throw bad("belongs to another replica id");
  const std::uint64_t len = get(b, 24, 8);
  if (len != b.size() - kSnapshotHeaderBytes - 8) throw bad("length mismatch");
  r.snapshot_seq = get(b, 16, 8);
  if (r.snapshot_seq > kMaxSeq) throw bad("seq beyond the sanity bound (damaged)");
  r.snapshot = b.substr(kSnapshotHeaderBytes, static_cast<std::size_t>(len));
}

// Where a scan of log bytes stopped.
struct LogScan {
  bool header_ok = false;
  std::size_t good = 0;            // bytes up to the end of the last valid record
  std::uint64_t record_bytes = 0;  // bytes of the records kept (those not in the snapshot)
  std::uint64_t base = 0;          // the header's base seq
  bool any = false;                // at least one record
  std::uint64_t first_seq = 0;     // of the first and last records (when any)
  std::uint64_t last_seq = 0;
  // Why the log is damaged before its end (empty: it is intact, or ends in a torn write).
  std::string damage;
};

// Whether a record passing its checksum starts anywhere in b[from, end). Only called on the
// bytes past a record that failed, to tell the tail a crash tore (nothing intact follows:
// the last appends never reached the disk whole) from damage in the middle of the log.
inline bool intact_record_after(std::string_view b, std::size_t from) {
  for (std::size_t at = from; at + kRecordOverhead <= b.size(); ++at) {
    const std::uint64_t len = get(b, at, 4);
    if (len > kMaxRecordBytes || b.size() - at < kRecordOverhead + len) continue;
    if (sealed(b.substr(at, kRecordOverhead + static_cast<std::size_t>(len)))) return true;
  }
  return false;
}

// Appends to r.deltas the records of log bytes `b` that the snapshot in `r` does not hold,
// stopping at the first torn or corrupt record. A record that fails its checksum with an
// intact record after it, or a seq that goes back, is damage rather than a torn tail: the
// scan stops there too and says so in `damage` (records after it may have been
// acknowledged, so the caller must not cut them silently).
inline LogScan scan_log(std::string_view b, ReplicaId id, Recovered& r) {
  LogScan out;
  out.header_ok = b.size() >= kWalHeaderBytes && b.compare(0, 4, "DCWL") == 0 &&
                  get(b, 4, 2) == kFormatVersion && sealed(b.substr(0, kWalHeaderBytes)) &&
                  get(b, 8, 8) == id;
  if (!out.header_ok) return out;
  out.base = get(b, 16, 8);
  std::size_t good = kWalHeaderBytes;
  while (b.size() - good >= kRecordOverhead) {
    const std::uint64_t len = get(b, good, 4);
    const bool fits = len <= kMaxRecordBytes && b.size() - good >= kRecordOverhead + len;
    const std::string_view rec =
        fits ? b.substr(good, kRecordOverhead + static_cast<std::size_t>(len)) : b.substr(good);
    if (!fits || !sealed(rec)) {
      if (intact_record_after(b, good + 1)) {
        out.damage = "the record at offset " + std::to_string(good) +
                     " is damaged and intact records follow it (damage in the middle of the "
                     "log, not a write torn by a crash)";
      }
      break;
    }
    const std::uint64_t seq = get(b, good + 4, 8);
    if (seq > kMaxSeq) {
      out.damage =
          "the record at offset " + std::to_string(good) + " has a seq beyond the sanity bound";
      break;
    }
    if (out.any && seq < out.last_seq) {  // c never decreases along the log
      out.damage = "the record at offset " + std::to_string(good) + " has seq " +
                   std::to_string(seq) + ", below the " + std::to_string(out.last_seq) +
                   " before it";
      break;
    }
    if (!out.any) out.first_seq = seq;
    out.any = true;
    out.last_seq = seq;
    if (seq >= r.snapshot_seq) {  // older records are in the snapshot
      r.deltas.push_back({seq, std::string(rec.substr(12, len))});
      out.record_bytes += rec.size();
    }
    good += rec.size();
  }
  out.good = good;
  return out;
}

}  // namespace storage_detail

class FileStorage final : public Storage {
 public:
  // Opens the store in `dir`, which must exist and be a readable, writable directory. An
  // empty directory becomes a new store for `new_id`; otherwise the id on disk is kept and
  // `new_id` is ignored. Throws StorageError for a missing or unusable directory and for
  // damaged id or snapshot files; a torn end of the log is recovered from, not an error.
  FileStorage(std::filesystem::path dir, FsyncPolicy policy, ReplicaId new_id)
      : dir_(std::move(dir)), policy_(policy) {
    namespace sd = storage_detail;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir_, ec)) {
      throw StorageError(dir_.string() + ": data directory does not exist or is not a directory");
    }
    if (::access(dir_.c_str(), R_OK | W_OK | X_OK) != 0) {
      throw StorageError(dir_.string() + ": data directory is not readable and writable");
    }
    const bool has_id = std::filesystem::exists(dir_ / "replica.id");
    if (!has_id) {
      if (std::filesystem::exists(dir_ / "snapshot") || std::filesystem::exists(dir_ / "wal")) {
        throw StorageError(dir_.string() + ": replica.id is missing but data files exist");
      }
      if (new_id == 0) throw StorageError("a new store needs a non-zero replica id");
      std::string bytes = sd::header("DCID", new_id, 0);
      sd::seal(bytes);
      if (!sd::write_atomically(dir_, "replica.id", bytes)) {
        throw StorageError(dir_.string() + ": cannot write replica.id: " + std::strerror(errno));
      }
    }
    const std::string id_bytes = sd::read_file(dir_ / "replica.id");
    if (id_bytes.size() != sd::kIdFileBytes || id_bytes.compare(0, 4, "DCID") != 0 ||
        !sd::sealed(id_bytes) || sd::get(id_bytes, 4, 2) != sd::kFormatVersion) {
      throw StorageError(dir_.string() + "/replica.id: damaged or of an unknown version");
    }
    recovered_.id = sd::get(id_bytes, 8, 8);
    load_snapshot();
    load_log();
  }

  ~FileStorage() override {
    if (wal_fd_ >= 0) ::close(wal_fd_);
  }
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

  Result<void> append(std::uint64_t seq, std::string_view delta) override {
    namespace sd = storage_detail;
    if (seq < next_seq_ || seq > sd::kMaxSeq || delta.size() > sd::kMaxRecordBytes) {
      return Errc::corrupt;  // c only grows, and stays within the bound
    }
    std::string rec;
    rec.reserve(delta.size() + sd::kRecordOverhead);
    sd::put32(rec, static_cast<std::uint32_t>(delta.size()));
    detail::append_le64(rec, seq);
    rec.append(delta);
    sd::seal(rec);
    if (failed_) return boost::system::errc::make_error_code(boost::system::errc::io_error);
    if (!sd::write_all(wal_fd_, rec)) {
      const auto error = sd::last_error();
      // A partial record would end the log at recovery, hiding every later append: cut it.
      // If even that fails, no further append is accepted (the log is intact up to here).
      if (::ftruncate(wal_fd_, static_cast<off_t>(wal_size_)) != 0) failed_ = true;
      return error;
    }
    wal_size_ += rec.size();
    if (policy_ == FsyncPolicy::always && ::fdatasync(wal_fd_) != 0) return sd::last_error();
    dirty_ = policy_ != FsyncPolicy::always;
    next_seq_ = seq;
    log_bytes_ += rec.size();
    return {};
  }

  Result<void> sync() override {
    if (policy_ == FsyncPolicy::never || !dirty_) return {};
    if (::fdatasync(wal_fd_) != 0) return storage_detail::last_error();
    dirty_ = false;
    return {};
  }

  // The log is rotated: appends go to a fresh `wal.next` from here on, so the old `wal`
  // holds exactly what the snapshot adds to the previous one and is never copied on the
  // owner's thread. finish_snapshot renames `wal.next` over it.
  Result<SnapshotWriter> begin_snapshot(std::uint64_t seq) override {
    namespace sd = storage_detail;
    if (snapshotting_ || seq < next_seq_) return Errc::corrupt;  // it must hold every delta
    if (two_logs_) {
      // A finished snapshot whose `wal.next` could not be renamed yet: retry. (A failed
      // snapshot whose records could not be moved back leaves two logs that only a restart
      // merges; no snapshot runs until then.)
      if (!next_log_renamable_)
        return boost::system::errc::make_error_code(boost::system::errc::io_error);
      if (::rename((dir_ / "wal.next").c_str(), (dir_ / "wal").c_str()) != 0) {
        return sd::last_error();
      }
      sd::fsync_dir(dir_);
      two_logs_ = false;
    }
    // Appends to the old log that a durable write may still be waiting for reach the disk
    // before the writes move on to the new file (sync() only covers the current one).
    if (dirty_ && policy_ != FsyncPolicy::never && ::fdatasync(wal_fd_) != 0) {
      return sd::last_error();
    }
    // Durable (file and directory entry) before any append can be acknowledged in it.
    if (!sd::write_atomically(dir_, "wal.next", wal_header(seq))) return sd::last_error();
    const int next = ::open((dir_ / "wal.next").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (next < 0) return sd::last_error();
    ::close(wal_fd_);
    wal_fd_ = next;
    dirty_ = false;
    snapshotting_ = true;
    snapshot_seq_ = seq;
    snapshot_log_offset_ = wal_size_;  // the whole old log
    wal_size_ = sd::kWalHeaderBytes;
    log_bytes_ = 0;
    // The writer touches only the snapshot files, so it may run while appends continue.
    return SnapshotWriter(
        [dir = dir_, id = recovered_.id, seq](std::string_view state) -> Result<void> {
          std::string bytes = sd::header("DCSN", id, seq);
          detail::append_le64(bytes, state.size());
          bytes.append(state);
          sd::seal(bytes);
          if (!sd::write_atomically(dir, "snapshot", bytes)) return sd::last_error();
          return {};
        });
  }

  // The snapshot is durable: `wal.next` (what came after it) replaces the old log. If it
  // failed, the new records are appended to the old log instead, which then holds
  // everything since the previous snapshot again (rare, so the copy is acceptable). A crash
  // at any point leaves files that recovery reads correctly (see FileStorage()).
  void finish_snapshot(bool written) override {
    namespace sd = storage_detail;
    if (!snapshotting_) return;
    snapshotting_ = false;
    // Until the files are one log again, appends continue in wal.next and a restart merges
    // the two (merge_next_log).
    two_logs_ = true;
    next_log_renamable_ = written;
    if (written) {
      if (::rename((dir_ / "wal.next").c_str(), (dir_ / "wal").c_str()) == 0) {
        sd::fsync_dir(dir_);
        two_logs_ = false;
      }
      return;
    }
    // The snapshot failed: the old log and wal.next's records become one log again, written
    // atomically (a crash leaves either the old log beside wal.next, or the merged log, which
    // recovery recognises: see merge_next_log).
    try {
      const std::string old_log = sd::read_file(dir_ / "wal");
      const std::string next = sd::read_file(dir_ / "wal.next");
      if (old_log.size() < snapshot_log_offset_ || next.size() < wal_size_) return;
      std::string merged = old_log.substr(0, snapshot_log_offset_);
      merged.append(next, sd::kWalHeaderBytes, wal_size_ - sd::kWalHeaderBytes);
      if (!sd::write_atomically(dir_, "wal", merged)) return;
      const int fd = ::open((dir_ / "wal").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd < 0) return;  // recovery will find the merged log and remove wal.next
      ::unlink((dir_ / "wal.next").c_str());
      sd::fsync_dir(dir_);
      ::close(wal_fd_);
      wal_fd_ = fd;
      wal_size_ = merged.size();
      log_bytes_ = wal_size_ - sd::kWalHeaderBytes;
      two_logs_ = false;
      dirty_ = false;
    } catch (const StorageError&) {
      // Unreadable: appends continue in wal.next; a restart merges the two.
    }
  }

  std::uint64_t log_bytes() const override { return log_bytes_; }

  // The snapshot being taken holds the old snapshot plus the log records appended before
  // begin_snapshot: both are read back from the files, which appends (past that offset)
  // and finish_snapshot (after the writer) leave alone meanwhile.
  SnapshotBasis snapshot_basis() override {
    if (!snapshotting_) return {};
    return [dir = dir_, id = recovered_.id, limit = snapshot_log_offset_]() -> Result<Recovered> {
      namespace sd = storage_detail;
      Recovered r;
      r.id = id;
      try {
        sd::read_snapshot(dir / "snapshot", id, r);
      } catch (const StorageError&) {
        return Errc::corrupt;
      }
      std::string log(static_cast<std::size_t>(limit), '\0');
      const int fd = ::open((dir / "wal").c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return sd::last_error();
      const ssize_t n = ::pread(fd, log.data(), log.size(), 0);
      ::close(fd);
      if (n != static_cast<ssize_t>(log.size())) return Errc::corrupt;
      const sd::LogScan scan = sd::scan_log(log, id, r);
      // Every record before the offset was whole when it was appended.
      if (!scan.header_ok || scan.good != log.size()) return Errc::corrupt;
      return r;
    };
  }

 private:
  std::string wal_header(std::uint64_t base) const {
    std::string h = storage_detail::header("DCWL", recovered_.id, base);
    storage_detail::seal(h);
    return h;
  }

  void load_snapshot() {
    storage_detail::read_snapshot(dir_ / "snapshot", recovered_.id, recovered_);
  }

  // Replays the log; cuts a torn or corrupt tail. A missing or unreadable log header starts
  // a fresh log (nothing durable can be in a log whose header never reached the disk).
  void load_log() {
    namespace sd = storage_detail;
    const auto path = dir_ / "wal";
    std::string b = std::filesystem::exists(path) ? sd::read_file(path) : std::string();
    const sd::LogScan scan = sd::scan_log(b, recovered_.id, recovered_);
    if (!scan.damage.empty()) throw StorageError(path.string() + ": " + scan.damage);
    const bool header_ok = scan.header_ok;
    const std::size_t good = scan.good;
    recovered_.torn_bytes = b.size() - good;
    log_bytes_ = scan.record_bytes;
    next_seq_ = recovered_.next_seq();
    if (std::filesystem::exists(dir_ / "wal.next")) {
      merge_next_log(b.substr(0, header_ok ? good : 0), scan);
      return;
    }
    if (!header_ok) {
      if (!sd::write_atomically(dir_, "wal", wal_header(recovered_.snapshot_seq))) {
        throw StorageError(path.string() + ": cannot write: " + std::strerror(errno));
      }
    } else if (good < b.size()) {
      if (::truncate(path.c_str(), static_cast<off_t>(good)) != 0) {
        throw StorageError(path.string() + ": cannot cut the torn tail: " + std::strerror(errno));
      }
    }
    wal_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (wal_fd_ < 0) throw StorageError(path.string() + ": cannot open: " + std::strerror(errno));
    wal_size_ = header_ok ? good : sd::kWalHeaderBytes;
  }

  // A crash during a snapshot left `wal.next` (appends made since it began) beside `wal`:
  // its records, after the intact ones of `wal` (`old`, scanned as `old_scan`), are the
  // rest of the log. Both are rewritten as one `wal` (torn tail cut) and `wal.next`
  // removed. A `wal.next` that cannot be the continuation of `wal` (a damaged header, a
  // base or a record below wal's last seq: the files do not belong together) is an error:
  // merging would put a seq decrease in the middle of the log, and every later open would
  // cut the records after it.
  void merge_next_log(const std::string& old, const storage_detail::LogScan& old_scan) {
    namespace sd = storage_detail;
    const auto path = dir_ / "wal.next";
    const std::string b = sd::read_file(path);
    Recovered next;
    next.snapshot_seq = recovered_.snapshot_seq;
    const sd::LogScan scan = sd::scan_log(b, recovered_.id, next);
    const auto mismatch = [&](const std::string& why) {
      return StorageError(path.string() + ": " + why + "; it does not continue " +
                          (dir_ / "wal").string() + " (move one of the two away to open)");
    };
    if (!scan.header_ok) {
      // wal.next is created atomically (header fsynced before any append): never torn.
      throw mismatch("damaged header");
    }
    if (!scan.damage.empty()) throw StorageError(path.string() + ": " + scan.damage);
    const std::string_view records =
        std::string_view(b).substr(sd::kWalHeaderBytes, scan.good - sd::kWalHeaderBytes);
    // A merge that reached the disk before wal.next was removed (a failed snapshot, or this
    // very function, interrupted): `wal` already ends with wal.next's records.
    const bool merged_before = !records.empty() && std::string_view(old).ends_with(records);
    if (!merged_before && old_scan.any && scan.base < old_scan.last_seq) {
      throw mismatch("its base seq " + std::to_string(scan.base) + " is below wal's last seq " +
                     std::to_string(old_scan.last_seq));
    }
    if (!merged_before && old_scan.any && scan.any && scan.first_seq < old_scan.last_seq) {
      throw mismatch("its first record has seq " + std::to_string(scan.first_seq) +
                     ", below wal's last seq " + std::to_string(old_scan.last_seq));
    }
    recovered_.torn_bytes += b.size() - scan.good;
    std::string merged = old.empty() ? wal_header(recovered_.snapshot_seq) : old;
    if (!merged_before) {
      merged.append(records);
      for (auto& d : next.deltas) {
        next_seq_ = std::max(next_seq_, d.seq);
        recovered_.deltas.push_back(std::move(d));
      }
      log_bytes_ += scan.record_bytes;
    }
    if (!sd::write_atomically(dir_, "wal", merged)) {
      throw StorageError((dir_ / "wal").string() + ": cannot write: " + std::strerror(errno));
    }
    ::unlink(path.c_str());
    sd::fsync_dir(dir_);
    wal_fd_ = ::open((dir_ / "wal").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (wal_fd_ < 0) {
      throw StorageError((dir_ / "wal").string() + ": cannot open: " + std::strerror(errno));
    }
    wal_size_ = merged.size();
  }

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
