// Error values for the API edge: decoding untrusted bytes never throws and never aborts;
// it returns a boost::system::result carrying one of these codes.
#pragma once

#include <string>
#include <system_error>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace deltacrdt {

enum class Errc {
  truncated = 1,  // input ended before the encoded value did
  bad_magic,      // not an encoded deltacrdt value
  bad_version,    // a format version this build does not read
  wrong_type,     // encoded value of another CRDT type
  bad_checksum,   // bytes changed after encoding
  corrupt,        // structurally invalid content (a broken invariant)
  too_large,      // a declared size beyond the configured bound
};

namespace detail {
class ErrorCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "deltacrdt"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::truncated:
        return "input truncated";
      case Errc::bad_magic:
        return "not a deltacrdt encoding (bad magic)";
      case Errc::bad_version:
        return "unsupported format version";
      case Errc::wrong_type:
        return "encoding holds a different CRDT type";
      case Errc::bad_checksum:
        return "checksum mismatch";
      case Errc::corrupt:
        return "corrupt encoding";
      case Errc::too_large:
        return "declared size exceeds limit";
    }
    return "unknown deltacrdt error";
  }
};
}  // namespace detail

inline const boost::system::error_category& error_category() noexcept {
  static const detail::ErrorCategory category;
  return category;
}

inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

template <class T>
using Result = boost::system::result<T>;

}  // namespace deltacrdt

template <>
struct boost::system::is_error_code_enum<deltacrdt::Errc> : std::true_type {};
