// The byte layout of a FileStorage directory (docs/storage-format.md): format constants and
// the helpers that write headers and checksums, shared by FileStorage (file_storage.cpp) and
// by the tests and fuzz targets that build damaged files on purpose.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "crdt/dot.hpp"

namespace deltacrdt {

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

// POSIX file helpers (file_storage.cpp), shared with the node's own files. read_file throws
// StorageError (naming the path) when the file cannot be opened or read; write_atomically
// writes a temporary file, fsyncs it, renames it over dir/name and fsyncs the directory,
// and returns false when any step failed (the old file then stays whole).
std::string read_file(const std::filesystem::path& p);
bool write_atomically(const std::filesystem::path& dir, const std::string& name,
                      std::string_view bytes);

}  // namespace storage_detail
}  // namespace deltacrdt
