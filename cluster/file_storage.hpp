// FileStorage: the file-backed Storage (docs/storage-format.md). One directory per replica:
//
//   replica.id   the replica id, written once when the directory is first used
//   snapshot     the newest snapshot of the whole state, replaced atomically
//   wal          the deltas logged since that snapshot, one checksummed record each
//
// Snapshots are written to a temporary file, fsynced and renamed over the old one (and the
// directory fsynced); the log is then replaced by an empty one. Recovery loads the
// snapshot, replays the log and stops at the first torn or corrupt record (a crash
// mid-write), cutting the log there so appends continue from a clean end. POSIX I/O; not
// thread-safe (one owner).
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

  ReplicaId id() const override { return recovered_.id; }

  Result<void> append(std::uint64_t seq, std::string_view delta) override {
    namespace sd = storage_detail;
    if (seq < next_seq_ || delta.size() > sd::kMaxRecordBytes)
      return Errc::corrupt;  // c only grows
    std::string rec;
    rec.reserve(delta.size() + sd::kRecordOverhead);
    sd::put32(rec, static_cast<std::uint32_t>(delta.size()));
    detail::append_le64(rec, seq);
    rec.append(delta);
    sd::seal(rec);
    if (!sd::write_all(wal_fd_, rec)) return sd::last_error();
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

  Result<SnapshotWriter> begin_snapshot(std::uint64_t seq) override {
    if (snapshotting_ || seq < next_seq_) return Errc::corrupt;  // it must hold every delta
    snapshotting_ = true;
    snapshot_seq_ = seq;
    snapshot_log_offset_ = wal_size_;  // records before this are in the snapshot
    // The writer touches only the snapshot files, so it may run while appends continue.
    return SnapshotWriter(
        [dir = dir_, id = recovered_.id, seq](std::string_view state) -> Result<void> {
          namespace sd = storage_detail;
          std::string bytes = sd::header("DCSN", id, seq);
          detail::append_le64(bytes, state.size());
          bytes.append(state);
          sd::seal(bytes);
          if (!sd::write_atomically(dir, "snapshot", bytes)) return sd::last_error();
          return {};
        });
  }

  // The snapshot is durable: the log is rewritten to hold only what was appended since
  // begin_snapshot (usually little). A crash before the rename leaves the whole old log, whose
  // older records recovery skips.
  void finish_snapshot(bool written) override {
    namespace sd = storage_detail;
    snapshotting_ = false;
    if (!written) return;
    std::string tail(wal_size_ - snapshot_log_offset_, '\0');
    const int fd = ::open((dir_ / "wal").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;  // the old log stays; recovery skips what the snapshot holds
    const ssize_t n =
        ::pread(fd, tail.data(), tail.size(), static_cast<off_t>(snapshot_log_offset_));
    ::close(fd);
    if (n != static_cast<ssize_t>(tail.size())) return;
    if (!sd::write_atomically(dir_, "wal", wal_header(snapshot_seq_) + tail)) return;
    const int fresh = ::open((dir_ / "wal").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fresh < 0) return;
    ::close(wal_fd_);
    wal_fd_ = fresh;
    wal_size_ = sd::kWalHeaderBytes + tail.size();
    log_bytes_ = tail.size();
    dirty_ = false;  // write_atomically fsynced it
  }

  std::uint64_t log_bytes() const override { return log_bytes_; }

 private:
  std::string wal_header(std::uint64_t base) const {
    std::string h = storage_detail::header("DCWL", recovered_.id, base);
    storage_detail::seal(h);
    return h;
  }

  void load_snapshot() {
    namespace sd = storage_detail;
    if (!std::filesystem::exists(dir_ / "snapshot")) return;
    const std::string b = sd::read_file(dir_ / "snapshot");
    const auto bad = [&](const char* why) {
      return StorageError((dir_ / "snapshot").string() + ": " + why);
    };
    if (b.size() < sd::kSnapshotHeaderBytes + 8 || b.compare(0, 4, "DCSN") != 0) {
      throw bad("not a snapshot");
    }
    if (sd::get(b, 4, 2) != sd::kFormatVersion) throw bad("unknown format version");
    if (!sd::sealed(b)) throw bad("checksum mismatch (damaged)");
    if (sd::get(b, 8, 8) != recovered_.id) throw bad("belongs to another replica id");
    const std::uint64_t len = sd::get(b, 24, 8);
    if (len != b.size() - sd::kSnapshotHeaderBytes - 8) throw bad("length mismatch");
    recovered_.snapshot_seq = sd::get(b, 16, 8);
    recovered_.snapshot = b.substr(sd::kSnapshotHeaderBytes, static_cast<std::size_t>(len));
  }

  // Replays the log; cuts a torn or corrupt tail. A missing or unreadable log header starts
  // a fresh log (nothing durable can be in a log whose header never reached the disk).
  void load_log() {
    namespace sd = storage_detail;
    const auto path = dir_ / "wal";
    std::string b = std::filesystem::exists(path) ? sd::read_file(path) : std::string();
    std::size_t good = 0;
    next_seq_ = recovered_.snapshot_seq;
    const bool header_ok = b.size() >= sd::kWalHeaderBytes && b.compare(0, 4, "DCWL") == 0 &&
                           sd::get(b, 4, 2) == sd::kFormatVersion &&
                           sd::sealed(std::string_view(b).substr(0, sd::kWalHeaderBytes)) &&
                           sd::get(b, 8, 8) == recovered_.id;
    if (header_ok) {
      good = sd::kWalHeaderBytes;
      std::uint64_t last = 0;
      bool any = false;
      while (b.size() - good >= sd::kRecordOverhead) {
        const std::uint64_t len = sd::get(b, good, 4);
        if (len > sd::kMaxRecordBytes || b.size() - good < sd::kRecordOverhead + len) break;
        const std::string_view rec(b.data() + good, sd::kRecordOverhead + len);
        if (!sd::sealed(rec)) break;
        const std::uint64_t seq = sd::get(b, good + 4, 8);
        if (any && seq < last) break;  // c never decreases along the log
        any = true;
        last = seq;
        if (seq >= recovered_.snapshot_seq) {  // older records are in the snapshot
          recovered_.deltas.push_back({seq, std::string(rec.substr(12, len))});
          next_seq_ = seq;
          log_bytes_ += rec.size();
        }
        good += rec.size();
      }
      recovered_.torn_bytes = b.size() - good;
    } else {
      recovered_.torn_bytes = b.size();
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

  std::filesystem::path dir_;
  FsyncPolicy policy_;
  Recovered recovered_;
  int wal_fd_ = -1;
  std::uint64_t next_seq_ = 0;  // the last appended c: appends may not go below it
  std::uint64_t log_bytes_ = 0;
  bool dirty_ = false;          // appended since the last fdatasync
  std::uint64_t wal_size_ = 0;  // bytes in the log file
  bool snapshotting_ = false;
  std::uint64_t snapshot_seq_ = 0;
  std::uint64_t snapshot_log_offset_ = 0;
};

}  // namespace deltacrdt
