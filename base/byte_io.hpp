// Little-endian fixed-width writing and bounds-checked reading of protocol payloads that are
// not CRDT values (digest lists, key-hash ranges). A reader never trusts a declared count:
// it checks that the bytes are there before reserving anything. Pure; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace deltacrdt::detail {

class ByteWriter {
 public:
  void u8(std::uint8_t v) { put(v, 1); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void bytes(std::string_view b) {
    u64(b.size());
    out_.append(b);
  }
  std::size_t size() const { return out_.size(); }
  std::string take() { return std::move(out_); }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

// Every read returns false (and leaves the reader failed) when the input is too short.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  bool u8(std::uint8_t& v) {
    std::uint64_t x = 0;
    if (!get(x, 1)) return false;
    v = static_cast<std::uint8_t>(x);
    return true;
  }
  bool u32(std::uint32_t& v) {
    std::uint64_t x = 0;
    if (!get(x, 4)) return false;
    v = static_cast<std::uint32_t>(x);
    return true;
  }
  bool u64(std::uint64_t& v) { return get(v, 8); }
  bool bytes(std::string_view& b) {
    std::uint64_t n = 0;
    if (!u64(n) || n > in_.size() - at_) return fail();
    b = in_.substr(at_, static_cast<std::size_t>(n));
    at_ += static_cast<std::size_t>(n);
    return true;
  }
  // A count of elements of `width` bytes each that must all be present.
  bool count(std::uint64_t& n, std::size_t width) {
    if (!u64(n) || n > (in_.size() - at_) / width) return fail();
    return true;
  }
  template <class Int>
  bool list(std::vector<Int>& out) {
    std::uint64_t n = 0;
    if (!count(n, sizeof(Int))) return false;
    out.resize(static_cast<std::size_t>(n));
    for (Int& x : out) {
      std::uint64_t v = 0;
      get(v, sizeof(Int));
      x = static_cast<Int>(v);
    }
    return true;
  }
  std::string_view rest() const { return ok_ ? in_.substr(at_) : std::string_view{}; }
  bool done() const { return ok_ && at_ == in_.size(); }

 private:
  bool get(std::uint64_t& v, std::size_t n) {
    if (!ok_ || in_.size() - at_ < n) return fail();
    v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v |= std::uint64_t{static_cast<unsigned char>(in_[at_ + i])} << (8 * i);
    }
    at_ += n;
    return true;
  }
  bool fail() {
    ok_ = false;
    return false;
  }
  std::string_view in_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

template <class Int>
void write_list(ByteWriter& w, const std::vector<Int>& xs) {
  w.u64(xs.size());
  for (Int x : xs) {
    if constexpr (sizeof(Int) == 4) {
      w.u32(static_cast<std::uint32_t>(x));
    } else {
      w.u64(static_cast<std::uint64_t>(x));
    }
  }
}

}  // namespace deltacrdt::detail
