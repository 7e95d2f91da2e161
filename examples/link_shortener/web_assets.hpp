// The link shortener's web page (GET /) and the script and style sheet it loads from this
// node (GET /static/app.js, /static/app.css): nothing is fetched from elsewhere. The page
// talks to the node only through the JSON routes (docs/link-shortener.md). Pure data.
#pragma once

#include <string_view>

namespace deltacrdt::shortener {

std::string_view page_html();
std::string_view app_js();
std::string_view app_css();

}  // namespace deltacrdt::shortener
