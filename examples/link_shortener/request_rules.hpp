// Rules a request head must meet before its body is read, shared by the server and the
// fuzzer. Pure; thread-safe.
#pragma once

#include <iterator>
#include <optional>
#include <string_view>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace deltacrdt::shortener {

struct Refusal {
  unsigned status;
  std::string_view reason;
};

// Why a request's Transfer-Encoding is refused, if it is (the server answers and closes):
//  - anything but exactly "chunked" (one field, one coding): 400. RFC 9112 section 6.3: the
//    body's length is unknown. (Beast reads "xchunked" or "chunked, gzip" as no body, and
//    would then parse the body as the next request on the connection: request smuggling.)
//  - "chunked": 411 Length Required. The API's bodies are a few hundred bytes, so requiring
//    a Content-Length costs clients nothing, and keeps Beast 1.81's chunk parser off the
//    network: fed a final chunk one byte at a time, it fails an assertion and aborts the
//    process (found by fuzz/http.cpp; reproduced by tests/examples_link_shortener_hostile).
inline std::optional<Refusal> transfer_encoding_refusal(
    const boost::beast::http::request_parser<boost::beast::http::string_body>& p) {
  const auto& req = p.get();
  const auto [first, last] = req.equal_range(boost::beast::http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  std::string_view v(first->value().data(), first->value().size());
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (std::next(first) != last || !p.chunked() || !boost::beast::iequals(v, "chunked")) {
    return Refusal{400, "unsupported Transfer-Encoding"};
  }
  return Refusal{411, "chunked request bodies are not accepted: send a Content-Length"};
}

}  // namespace deltacrdt::shortener
