// Cereal archives over memory that read and write exactly Cereal's PortableBinary layout:
// a first byte saying whether the data is little-endian (1) or big-endian (0), then every
// arithmetic value in that byte order, byte strings as they are. Encodings made by either
// pair of archives decode with the other.
//
// Why not PortableBinary itself: it goes through a std::streambuf, one virtual call per
// value, and decoding a 1M-key state spent more time there than building the map. These
// append to a std::string and read from a pointer range, inline.
//
// ByteInputArchive never reads past its range (truncation throws cereal::Exception) and
// rejects a first byte other than 0 or 1. Neither archive is thread-safe; both are cheap.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include <cereal/cereal.hpp>

namespace deltacrdt {

namespace detail {
// Reverses the bytes of each of the `size / Width` elements at `p`.
template <std::size_t Width>
void swap_each(unsigned char* p, std::size_t size) {
  if constexpr (Width > 1) {
    for (std::size_t i = 0; i + Width <= size; i += Width) std::reverse(p + i, p + i + Width);
  }
}
inline constexpr bool kNativeLittle = std::endian::native == std::endian::little;
}  // namespace detail

class ByteOutputArchive
    : public cereal::OutputArchive<ByteOutputArchive, cereal::AllowEmptyClassElision> {
 public:
  // Appends to `out` (which must outlive the archive). Data is always written little-endian.
  explicit ByteOutputArchive(std::string& out)
      : cereal::OutputArchive<ByteOutputArchive, cereal::AllowEmptyClassElision>(this), out_(out) {
    const std::uint8_t little = 1;
    (*this)(little);
  }

  // `size` bytes of elements `Width` bytes wide.
  template <std::size_t Width>
  void save_binary(const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    if constexpr (detail::kNativeLittle || Width == 1) {
      out_.append(p, size);
    } else {
      const std::size_t at = out_.size();
      out_.append(p, size);
      detail::swap_each<Width>(reinterpret_cast<unsigned char*>(out_.data() + at), size);
    }
  }

 private:
  std::string& out_;
};

class ByteInputArchive
    : public cereal::InputArchive<ByteInputArchive, cereal::AllowEmptyClassElision> {
 public:
  // Reads `bytes` (which must outlive the archive).
  explicit ByteInputArchive(std::string_view bytes)
      : cereal::InputArchive<ByteInputArchive, cereal::AllowEmptyClassElision>(this),
        begin_(bytes.data()),
        at_(bytes.data()),
        end_(bytes.data() + bytes.size()) {
    std::uint8_t little = 0;
    (*this)(little);
    swap_ = swap_for_marker(little);
  }

  // Reads `bytes` that continue a payload whose marker was already read (a payload decoded
  // in pieces): `swap` is what the marker said.
  struct Continuation {
    bool swap;
    std::uint16_t format_version = kLatestFormat;
  };
  ByteInputArchive(std::string_view bytes, Continuation c)
      : cereal::InputArchive<ByteInputArchive, cereal::AllowEmptyClassElision>(this),
        begin_(bytes.data()),
        at_(bytes.data()),
        end_(bytes.data() + bytes.size()),
        swap_(c.swap),
        version_(c.format_version) {}

  // The format version of the value being read (the envelope's), for loaders that still
  // read an older layout; kLatestFormat means the newest of every type.
  static constexpr std::uint16_t kLatestFormat = 0xffff;
  std::uint16_t format_version() const { return version_; }
  void set_format_version(std::uint16_t v) { version_ = v; }

  // What a byte-order marker says: whether data must be byte-swapped on this host. Throws
  // std::domain_error for a byte that is no marker.
  static bool swap_for_marker(std::uint8_t little) {
    if (little > 1) throw std::domain_error("bad byte-order marker");
    return (little == 1) != detail::kNativeLittle;
  }

  template <std::size_t Width>
  void load_binary(void* data, std::size_t size) {
    if (size > remaining()) throw cereal::Exception("truncated");
    std::memcpy(data, at_, size);
    at_ += size;
    if (swap_) detail::swap_each<Width>(static_cast<unsigned char*>(data), size);
  }

  // The next n bytes, read in place (valid while the archive's bytes are).
  std::string_view read_bytes(std::size_t n) {
    if (n > remaining()) throw cereal::Exception("truncated");
    const std::string_view out(at_, n);
    at_ += n;
    return out;
  }

  // Bytes not read yet, and read so far.
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - at_); }
  std::size_t consumed() const { return static_cast<std::size_t>(at_ - begin_); }

 private:
  const char* begin_;
  const char* at_;
  const char* end_;
  bool swap_ = false;
  std::uint16_t version_ = kLatestFormat;
};

// Arithmetic values, name-value pairs, size tags and binary data, as PortableBinary does.
template <class T>
requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(ByteOutputArchive& ar, const T& t) {
  static_assert(!std::is_floating_point_v<T> || std::numeric_limits<T>::is_iec559);
  ar.template save_binary<sizeof(T)>(&t, sizeof(T));
}
template <class T>
requires std::is_arithmetic_v<T>
void CEREAL_LOAD_FUNCTION_NAME(ByteInputArchive& ar, T& t) {
  static_assert(!std::is_floating_point_v<T> || std::numeric_limits<T>::is_iec559);
  ar.template load_binary<sizeof(T)>(&t, sizeof(T));
}
template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(ByteInputArchive, ByteOutputArchive)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(ByteInputArchive, ByteOutputArchive)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::SizeTag<T>& t) {
  ar(t.size);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(ByteOutputArchive& ar, const cereal::BinaryData<T>& bd) {
  using Element = std::remove_pointer_t<T>;
  ar.template save_binary<sizeof(Element)>(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(ByteInputArchive& ar, cereal::BinaryData<T>& bd) {
  using Element = std::remove_pointer_t<T>;
  ar.template load_binary<sizeof(Element)>(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace deltacrdt

CEREAL_REGISTER_ARCHIVE(deltacrdt::ByteOutputArchive)
CEREAL_REGISTER_ARCHIVE(deltacrdt::ByteInputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(deltacrdt::ByteInputArchive, deltacrdt::ByteOutputArchive)
