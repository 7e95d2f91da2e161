// The storage target's input layout (fuzz/storage.cpp), with its writer for
// fuzz/make_seeds.cpp: the files of a replica's data directory, raw or framed and sealed
// here (docs/storage-format.md). Pure; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/file_storage.hpp"
#include "cluster/storage_format.hpp"
#include "crdt/awlww_map.hpp"
#include "fuzz/fuzz_input.hpp"

namespace deltacrdt::fuzz {

using StorageMap = AWLWWMap<std::string, std::string>;
inline constexpr ReplicaId kStorageId = 7;

inline std::string id_file(ReplicaId id) {
  std::string b = storage_detail::header("DCID", id, 0);
  storage_detail::seal(b);
  return b;
}

struct LogRecord {
  std::uint64_t seq = 0;
  std::string payload;      // an AWLWWMap payload (sealed into an encoding when framed)
  std::uint8_t damage = 0;  // 0: none; else the record's byte (damage % size) is flipped
};

struct DirectoryFiles {
  std::optional<std::string> snapshot, wal, next;
};

inline std::string sealed_map(std::string_view payload) {
  return seal_value(static_cast<std::uint16_t>(StorageMap::kTypeTag), StorageMap::kFormatVersion,
                    payload);
}

inline std::string snapshot_file(std::uint64_t seq, std::string_view state_payload) {
  const std::string state = sealed_map(state_payload);
  std::string b = storage_detail::header("DCSN", kStorageId, seq);
  detail::append_le64(b, state.size());
  b += state;
  storage_detail::seal(b);
  return b;
}

inline std::string log_file(std::uint64_t base, const std::vector<LogRecord>& records) {
  std::string b = storage_detail::header("DCWL", kStorageId, base);
  storage_detail::seal(b);
  for (const LogRecord& r : records) {
    const std::string delta = sealed_map(r.payload);
    std::string rec;
    storage_detail::put32(rec, static_cast<std::uint32_t>(delta.size()));
    detail::append_le64(rec, r.seq);
    rec += delta;
    storage_detail::seal(rec);
    if (r.damage != 0) rec[r.damage % rec.size()] ^= 0x20;
    b += rec;
  }
  return b;
}

inline DirectoryFiles read_directory(FuzzReader& in) {
  const std::uint8_t which = in.u8();
  DirectoryFiles out;
  const auto read_log = [&](bool structured) {
    if (!structured) return std::string(in.blob());
    const std::uint64_t base = in.u64();
    std::vector<LogRecord> records(in.u8() % 16);
    for (LogRecord& r : records) {
      r.seq = in.u64();
      r.payload = std::string(in.blob());
      r.damage = in.u8();
    }
    return log_file(base, records);
  };
  if (which & 1) {
    if (which & 8) {
      const std::uint64_t seq = in.u64();
      out.snapshot = snapshot_file(seq, in.blob());
    } else {
      out.snapshot = std::string(in.blob());
    }
  }
  if (which & 2) out.wal = read_log((which & 16) != 0);
  if (which & 4) out.next = read_log((which & 32) != 0);
  return out;
}

// A directory in structured form: an optional snapshot, a wal and an optional wal.next.
inline std::string write_directory(
    const std::optional<std::pair<std::uint64_t, std::string>>& snap, std::uint64_t wal_base,
    const std::vector<LogRecord>& wal,
    const std::optional<std::pair<std::uint64_t, std::vector<LogRecord>>>& next) {
  FuzzWriter w;
  std::uint8_t which = 2 | 16;
  if (snap) which |= 1 | 8;
  if (next) which |= 4 | 32;
  w.u8(which);
  if (snap) w.u64(snap->first).blob(snap->second);
  const auto log = [&](std::uint64_t base, const std::vector<LogRecord>& records) {
    w.u64(base).u8(static_cast<std::uint8_t>(records.size()));
    for (const LogRecord& r : records) w.u64(r.seq).blob(r.payload).u8(r.damage);
  };
  log(wal_base, wal);
  if (next) log(next->first, next->second);
  return w.str();
}

}  // namespace deltacrdt::fuzz
