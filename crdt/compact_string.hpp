// CompactString: an immutable byte string, 24 bytes in place, for CRDT keys and values.
//
// Why: a map of short strings pays more for std::string than for its data. A 16-byte key
// and a 32-byte value cost 64 bytes of std::string objects plus two heap blocks (32 and
// 48 bytes with glibc), 144 bytes in all. CompactString keeps up to 23 bytes inside the
// object and a longer string in one heap block of exactly its size (no capacity, no
// terminating NUL): the same key and value cost 24 + 24 + 48 = 96 bytes.
//
// It encodes, hashes into digests and orders exactly like std::string, so a map of
// CompactString and a map of std::string holding the same writes have the same bytes and
// the same digest. Contents never change after construction; assign a new string instead.
// Value type: copies own their bytes. Not thread-safe (like std::string).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <xxhash.h>

namespace deltacrdt {

class CompactString {
 public:
  // The longest string kept inside the object.
  static constexpr std::size_t kInlineCapacity = 23;

  CompactString() noexcept { set_inline_size(0); }
  // Implicit from every string-like type, as std::string is from a C string, so that
  // map.put(self, "code", url, ts) works with CompactString keys and values.
  CompactString(std::string_view s) { init(s.data(), s.size()); }
  CompactString(const std::string& s) { init(s.data(), s.size()); }
  CompactString(const char* s) { init(s, std::strlen(s)); }
  CompactString(const char* s, std::size_t n) { init(s, n); }

  CompactString(const CompactString& o) {
    if (o.is_inline()) {
      std::memcpy(rep_, o.rep_, sizeof rep_);
    } else {
      init(o.heap_ptr(), o.heap_size());
    }
  }
  CompactString(CompactString&& o) noexcept {
    std::memcpy(rep_, o.rep_, sizeof rep_);
    o.set_inline_size(0);
  }
  CompactString& operator=(const CompactString& o) {
    if (this != &o) *this = CompactString(o);
    return *this;
  }
  CompactString& operator=(CompactString&& o) noexcept {
    if (this != &o) {
      release();
      std::memcpy(rep_, o.rep_, sizeof rep_);
      o.set_inline_size(0);
    }
    return *this;
  }
  ~CompactString() { release(); }

  std::size_t size() const noexcept { return is_inline() ? rep_[kTag] : heap_size(); }
  bool empty() const noexcept { return size() == 0; }
  // Not NUL-terminated.
  const char* data() const noexcept {
    return is_inline() ? reinterpret_cast<const char*>(rep_) : heap_ptr();
  }
  std::string_view view() const noexcept { return {data(), size()}; }
  operator std::string_view() const noexcept { return view(); }
  std::string str() const { return std::string(view()); }
  // Whether the bytes live inside the object (no heap block).
  bool is_inline() const noexcept { return rep_[kTag] <= kInlineCapacity; }

  friend bool operator==(const CompactString& a, const CompactString& b) noexcept {
    return a.view() == b.view();
  }
  friend std::strong_ordering operator<=>(const CompactString& a, const CompactString& b) noexcept {
    return a.view() <=> b.view();
  }
  // Against std::string, std::string_view and C strings, without building a CompactString.
  template <class S>
  requires(std::is_convertible_v<const S&, std::string_view> &&
           !std::is_same_v<S, CompactString>) friend bool
  operator==(const CompactString& a, const S& b) noexcept {
    return a.view() == std::string_view(b);
  }
  template <class S>
  requires(std::is_convertible_v<const S&, std::string_view> &&
           !std::is_same_v<S, CompactString>) friend std::strong_ordering
  operator<=>(const CompactString& a, const S& b) noexcept {
    return a.view() <=> std::string_view(b);
  }

  // xxHash3 of the bytes: found by boost::hash (the maps' default hasher) through ADL.
  friend std::size_t hash_value(const CompactString& s) noexcept {
    return static_cast<std::size_t>(XXH3_64bits(s.data(), s.size()));
  }

  friend std::ostream& operator<<(std::ostream& os, const CompactString& s) {
    return os << s.view();
  }

 private:
  static constexpr std::size_t kTag = 23;
  static constexpr unsigned char kHeapTag = 0x80;

  void set_inline_size(std::size_t n) noexcept { rep_[kTag] = static_cast<unsigned char>(n); }
  char* heap_ptr() const noexcept {
    char* p = nullptr;
    std::memcpy(&p, rep_, sizeof p);
    return p;
  }
  std::size_t heap_size() const noexcept {
    std::size_t n = 0;
    std::memcpy(&n, rep_ + sizeof(char*), sizeof n);
    return n;
  }
  void init(const char* s, std::size_t n) {
    if (n <= kInlineCapacity) {
      std::memcpy(rep_, s, n);
      set_inline_size(n);
      return;
    }
    char* p = new char[n];
    std::memcpy(p, s, n);
    std::memcpy(rep_, &p, sizeof p);
    std::memcpy(rep_ + sizeof(char*), &n, sizeof n);
    rep_[kTag] = kHeapTag;
  }
  void release() noexcept {
    if (!is_inline()) delete[] heap_ptr();
  }

  // Inline: bytes [0, size) and the size in rep_[kTag]. Heap: the block's address and the
  // size in the first 16 bytes, kHeapTag in rep_[kTag].
  alignas(char*) unsigned char rep_[24];
};

static_assert(sizeof(CompactString) == 24);

}  // namespace deltacrdt

template <>
struct std::hash<deltacrdt::CompactString> {
  std::size_t operator()(const deltacrdt::CompactString& s) const noexcept { return hash_value(s); }
};
