// Rules a request head must meet before its body is read, shared by the server and the
// fuzzer. Pure; thread-safe.
#pragma once

#include <iterator>
#include <string_view>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace deltacrdt::shortener {

// RFC 9112 section 6.3: a request whose Transfer-Encoding is anything but exactly "chunked"
// (one field, one coding) has no reliable length; the server must answer 400 and close.
// (Beast reads "xchunked" or "chunked, gzip" as no body, and would then parse the body as
// the next request on the connection: request smuggling.)
inline bool acceptable_transfer_encoding(
    const boost::beast::http::request_parser<boost::beast::http::string_body>& p) {
  const auto& req = p.get();
  const auto [first, last] = req.equal_range(boost::beast::http::field::transfer_encoding);
  if (first == last) return true;
  if (std::next(first) != last || !p.chunked()) return false;
  std::string_view v(first->value().data(), first->value().size());
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return boost::beast::iequals(v, "chunked");
}

}  // namespace deltacrdt::shortener
