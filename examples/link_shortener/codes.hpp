// Short codes and URL rules of the link shortener (docs/link-shortener.md). Pure functions:
// no I/O, thread-safe.
//
// A code is a pure function of the URL and an attempt number: the first kCodeLength base62
// digits of xxHash3-64(url, seed = attempt). Two nodes shortening the same URL at the same
// time therefore write the same key, and the two writes converge to one link.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <xxhash.h>

namespace deltacrdt::shortener {

// 8 base62 digits: 62^8 (about 2^47.6) codes, so that two different URLs meet on a code
// only by a hash collision, which LinkStore detects (never silently shares).
inline constexpr std::size_t kCodeLength = 8;
// How many derived codes a URL may try when earlier ones are taken by other URLs.
inline constexpr unsigned kMaxCodeAttempts = 8;
inline constexpr std::size_t kMaxUrlBytes = 2048;

inline constexpr std::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

inline std::string short_code(std::string_view url, unsigned attempt = 0) {
  std::uint64_t h = XXH3_64bits_withSeed(url.data(), url.size(), attempt);
  std::string code(kCodeLength, '0');
  for (char& c : code) {
    c = kBase62[h % 62];
    h /= 62;
  }
  return code;
}

// A path segment that could be a code: 1-16 base62 characters. Anything else is not looked
// up at all.
inline bool looks_like_code(std::string_view s) {
  if (s.empty() || s.size() > 16) return false;
  for (const char c : s) {
    if (kBase62.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// Why `url` cannot be shortened, or nullopt when it can: it must be an absolute http or
// https URL with a host, at most kMaxUrlBytes, of printable ASCII only. URLs are ASCII (RFC
// 3986: other characters are percent-encoded, and international host names are written in
// punycode); raw bytes beyond ASCII would go out as they came in a Location header and in
// JSON that is then not valid UTF-8, and spaces or control characters would break both.
inline std::optional<std::string> url_problem(std::string_view url) {
  if (url.empty()) return "url is empty";
  if (url.size() > kMaxUrlBytes) {
    return "url is longer than " + std::to_string(kMaxUrlBytes) + " bytes";
  }
  for (const char c : url) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == 0x7f) return "url contains spaces or control characters";
    if (b > 0x7f) {
      return "url contains non-ASCII bytes: percent-encode them (RFC 3986), and write an "
             "international host name in punycode";
    }
  }
  const auto lower_prefix = [&](std::string_view p) {
    if (url.size() < p.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const char c = url[i];
      const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      if (l != p[i]) return false;
    }
    return true;
  };
  std::size_t rest = 0;
  if (lower_prefix("http://")) {
    rest = 7;
  } else if (lower_prefix("https://")) {
    rest = 8;
  } else {
    return "url must start with http:// or https://";
  }
  const std::string_view authority = url.substr(rest, url.find_first_of("/?#", rest) - rest);
  const std::size_t at = authority.rfind('@');
  const std::string_view host = at == std::string_view::npos ? authority : authority.substr(at + 1);
  if (host.empty() || host.front() == ':') return "url has no host";
  return std::nullopt;
}

// Decodes one application/x-www-form-urlencoded component ('+' is a space, %XX a byte), or
// nullopt when a percent escape is malformed. With plus_is_space false, a URL path segment
// ('+' is itself).
inline std::optional<std::string> form_decode(std::string_view s, bool plus_is_space = true) {
  std::string out;
  out.reserve(s.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The decoded value of the first `field` in an urlencoded form body, or nullopt when it is
// absent or its escapes are malformed (then *malformed is set, if given).
inline std::optional<std::string> form_field(std::string_view body, std::string_view field,
                                             bool* malformed = nullptr) {
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    const auto name = form_decode(pair.substr(0, eq));
    if (!name || *name != field) continue;
    auto value = form_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value && malformed != nullptr) *malformed = true;
    return value;
  }
  return std::nullopt;
}

}  // namespace deltacrdt::shortener
