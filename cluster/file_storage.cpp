// FileStorage (cluster/file_storage.hpp): the data directory's files, with POSIX I/O.
#include "cluster/file_storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "base/bytes.hpp"
#include "cluster/storage_format.hpp"

namespace deltacrdt {
namespace storage_detail {

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

bool write_all(int fd, std::string_view bytes) {
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

std::string read_file(const std::filesystem::path& p) {
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

void fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes `bytes` to dir/name atomically: a temporary file, fsync, rename, directory fsync.
bool write_atomically(const std::filesystem::path& dir, const std::string& name,
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
void read_snapshot(const std::filesystem::path& path, ReplicaId id, Recovered& r) {
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
bool intact_record_after(std::string_view b, std::size_t from) {
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
LogScan scan_log(std::string_view b, ReplicaId id, Recovered& r) {
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

FileStorage::FileStorage(std::filesystem::path dir, FsyncPolicy policy, ReplicaId new_id)
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

FileStorage::~FileStorage() {
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

Result<void> FileStorage::append(std::uint64_t seq, std::string_view delta) {
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

Result<void> FileStorage::sync() {
  if (policy_ == FsyncPolicy::never || !dirty_) return {};
  if (::fdatasync(wal_fd_) != 0) return storage_detail::last_error();
  dirty_ = false;
  return {};
}

Result<Storage::SnapshotWriter> FileStorage::begin_snapshot(std::uint64_t seq) {
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

void FileStorage::finish_snapshot(bool written) {
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

Storage::SnapshotBasis FileStorage::snapshot_basis() {
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

std::string FileStorage::wal_header(std::uint64_t base) const {
  std::string h = storage_detail::header("DCWL", recovered_.id, base);
  storage_detail::seal(h);
  return h;
}

void FileStorage::load_snapshot() {
  storage_detail::read_snapshot(dir_ / "snapshot", recovered_.id, recovered_);
}

void FileStorage::load_log() {
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

void FileStorage::merge_next_log(const std::string& old, const storage_detail::LogScan& old_scan) {
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

}  // namespace deltacrdt
