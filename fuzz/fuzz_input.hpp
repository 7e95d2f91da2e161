// The byte layouts the fuzz targets read their inputs in, and a writer for each, so that
// fuzz/make_seeds.cpp builds seed inputs with the library's own encoders. A reader never
// fails: past the end it yields zeros and empty strings, so every input is a valid one.
//
// Checksums are what make random bytes useless to a decoder: a mutated encoding fails its
// xxHash3 check and the parser behind it is never reached. So where a format has one, the
// targets read the bytes *inside* it from the input and seal them themselves (seal_value,
// seal_frame, ...), and separately also feed raw bytes, checksum included, to the same
// decoder. Pure; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "crdt/codec.hpp"

namespace deltacrdt::fuzz {

class FuzzReader {
 public:
  FuzzReader(const std::uint8_t* data, std::size_t size)
      : in_(reinterpret_cast<const char*>(data), size) {}
  explicit FuzzReader(std::string_view in) : in_(in) {}

  bool empty() const { return at_ >= in_.size(); }
  std::size_t remaining() const { return empty() ? 0 : in_.size() - at_; }

  std::uint8_t u8() { return static_cast<std::uint8_t>(fixed(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(fixed(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(fixed(4)); }
  std::uint64_t u64() { return fixed(8); }
  // Up to n bytes (fewer at the end of the input).
  std::string_view bytes(std::size_t n) {
    if (empty()) return {};
    const std::size_t take = n < remaining() ? n : remaining();
    const std::string_view out = in_.substr(at_, take);
    at_ += take;
    return out;
  }
  // A u32 length, then that many bytes (fewer at the end).
  std::string_view blob() { return bytes(u32()); }
  std::string_view rest() { return bytes(remaining()); }

 private:
  std::uint64_t fixed(std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t b = at_ < in_.size() ? static_cast<unsigned char>(in_[at_]) : 0;
      v |= b << (8 * i);
      ++at_;
    }
    return v;
  }
  std::string_view in_;
  std::size_t at_ = 0;
};

class FuzzWriter {
 public:
  FuzzWriter& u8(std::uint8_t v) { return fixed(v, 1); }
  FuzzWriter& u16(std::uint16_t v) { return fixed(v, 2); }
  FuzzWriter& u32(std::uint32_t v) { return fixed(v, 4); }
  FuzzWriter& u64(std::uint64_t v) { return fixed(v, 8); }
  FuzzWriter& bytes(std::string_view b) {
    out_.append(b);
    return *this;
  }
  FuzzWriter& blob(std::string_view b) {
    u32(static_cast<std::uint32_t>(b.size()));
    return bytes(b);
  }
  const std::string& str() const { return out_; }

 private:
  FuzzWriter& fixed(std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string out_;
};

// encode()'s envelope around a payload: magic, tag, version, payload, checksum.
inline std::string seal_value(std::uint16_t tag, std::uint16_t version, std::string_view payload) {
  std::string out(kEncodingMagic.data(), kEncodingMagic.size());
  out.push_back(static_cast<char>(tag & 0xff));
  out.push_back(static_cast<char>(tag >> 8));
  out.push_back(static_cast<char>(version & 0xff));
  out.push_back(static_cast<char>(version >> 8));
  out.append(payload);
  detail::append_le64(out, detail::hash_bytes(out));
  return out;
}

// The payload of an encoding made by encode() (what seal_value wraps again).
inline std::string_view payload_of(std::string_view encoded) {
  if (encoded.size() < kEncodingHeaderBytes + kEncodingTrailerBytes) return {};
  return encoded.substr(kEncodingHeaderBytes,
                        encoded.size() - kEncodingHeaderBytes - kEncodingTrailerBytes);
}

// Where a target found a fault: libFuzzer reports the abort with the input that caused it.
[[noreturn]] inline void fault(const char* what) {
  std::fprintf(stderr, "fuzz: property violated: %s\n", what);
  std::abort();
}
inline void require(bool ok, const char* what) {
  if (!ok) fault(what);
}

}  // namespace deltacrdt::fuzz
