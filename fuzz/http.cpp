// Fuzz target: an HTTP request as the link shortener's server handles it before any store
// is touched - Beast's parser with the server's bounds, the head read alone and checked
// against the head's rules (request_rules.hpp) before any body byte is parsed,
// the route and what it carries (routes.hpp), and a URL's validation and short code.
// Whatever the bytes, nothing may crash, and a route must only carry what its rules allow.
//
//   u16 piece size | rest: the bytes a client sent
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/http.hpp>

#include "examples/link_shortener/codes.hpp"
#include "examples/link_shortener/request_rules.hpp"
#include "examples/link_shortener/routes.hpp"
#include "fuzz/fuzz_input.hpp"

namespace {

using namespace deltacrdt::fuzz;
using namespace deltacrdt::shortener;
namespace http = boost::beast::http;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzReader in(data, size);
  const std::size_t piece = 1 + in.u16() % 512;
  const std::string_view bytes = in.rest();
  http::request_parser<http::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(16 * 1024);
  // The head first, alone (as async_read_header): its rules are checked before any of the
  // body is parsed; then the body, eagerly.
  parser.eager(false);
  // As the server's read loop (Beast's own): unconsumed bytes stay buffered, and after
  // need_more the parser is called again only once more bytes have arrived (calling it again
  // without them breaks its contract; Beast asserts on it).
  std::string buffered;
  std::size_t at = 0;
  bool checked_head = false;
  while (!parser.is_done()) {
    if (at == bytes.size()) return 0;  // the client never finished its request
    const std::size_t n = std::min(piece, bytes.size() - at);
    buffered.append(bytes.substr(at, n));
    at += n;
    for (;;) {
      boost::system::error_code ec;
      const std::size_t used =
          parser.put(boost::asio::buffer(buffered.data(), buffered.size()), ec);
      buffered.erase(0, used);
      if (ec == http::error::need_more) break;  // wait for the next piece
      if (ec) return 0;                         // the server answers 4xx and closes
      if (parser.is_header_done() && !checked_head) {
        checked_head = true;
        if (transfer_encoding_refusal(parser)) return 0;  // 400 or 411, and close
        parser.eager(true);
      }
      if (parser.is_done() || used == 0) break;
    }
    require(buffered.size() <= 8 * 1024 + 16 * 1024 + piece, "the parser keeps up");
  }
  if (!parser.is_done()) return 0;
  const auto& req = parser.get();
  require(req.body().size() <= 16 * 1024, "no body beyond the bound");
  const RoutePlan plan = plan_route(req.method(), req.target(), req.body());
  switch (plan.route) {
    case Route::shorten:
    case Route::api_create:
      if (!url_problem(plan.url)) {
        for (char c : plan.url) {
          require(static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f,
                  "an accepted URL is printable ASCII");
        }
        require(looks_like_code(short_code(plan.url)), "a URL's code is a code");
      }
      break;
    case Route::api_get:
    case Route::aggregates:
    case Route::remove:
    case Route::redirect:
      require(looks_like_code(plan.code), "a route carries only a plausible code");
      break;
    case Route::answered:
      require(plan.status >= 400 && plan.status < 500, "a refusal is a 4xx");
      break;
    case Route::api_list:
      require(plan.limit >= 1 && plan.limit <= 100, "a listing's limit is 1-100");
      break;
    case Route::asset:
      require(plan.code == "app.js" || plan.code == "app.css", "only the page's own files");
      break;
    default:
      break;
  }
  return 0;
}
