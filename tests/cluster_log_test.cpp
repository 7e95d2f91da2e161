// Structured logs (cluster/log.hpp): values that came from elsewhere cannot forge a line or
// drive a terminal, and throttled events are logged once per interval with a count.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cluster/log.hpp"

using namespace deltacrdt;

namespace {

std::string field(std::string_view value) {
  std::string line;
  Logger::append(line, "k", value);
  return line;
}

}  // namespace

TEST_SUITE("cluster.log") {
  TEST_CASE("plain values stay bare, others are quoted and escaped") {
    CHECK(field("n1") == " k=n1");
    CHECK(field("") == " k=\"\"");
    CHECK(field("two words") == " k=\"two words\"");
    CHECK(field("a=b") == " k=\"a=b\"");
    CHECK(field("say \"hi\"") == " k=\"say \\\"hi\\\"\"");
    CHECK(field("back\\slash") == " k=\"back\\\\slash\"");
    CHECK(field("n\xc3\xa9ud") == " k=n\xc3\xa9ud");  // UTF-8 text passes as it is
  }

  // A listener the node dials controls up to 200 bytes of a logged refusal reason.
  TEST_CASE("control bytes and invalid UTF-8 cannot break a line or reach a terminal") {
    const std::string forged = "refused\r\nts=2026 level=info event=link_up peer=evil";
    const std::string line = field(forged);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find('\r') == std::string::npos);
    CHECK(line == " k=\"refused\\r\\nts=2026 level=info event=link_up peer=evil\"");
    CHECK(field("\x1b[31mred\x1b[0m") == " k=\"\\x1b[31mred\\x1b[0m\"");
    CHECK(field(std::string("nul\0byte", 8)) == " k=\"nul\\x00byte\"");
    CHECK(field("\x7f") == " k=\"\\x7f\"");
    CHECK(field("\xc2\x9b") == " k=\"\\xc2\\x9b\"");  // C1 control (CSI) in UTF-8
    CHECK(field("\xff\xfe") == " k=\"\\xff\\xfe\"");  // not UTF-8 at all
    CHECK(field("\xe2\x82") == " k=\"\\xe2\\x82\"");  // a character cut short
    CHECK(field("tab\there") == " k=\"tab\\there\"");
    for (int b = 0; b < 256; ++b) {
      const std::string line1 = field(std::string(1, static_cast<char>(b)));
      for (char c : line1) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
    }
  }

  TEST_CASE("a whole line is one line, whatever its values") {
    std::vector<std::string> lines;
    Logger log(LogLevel::debug, [&](const std::string& l) { lines.push_back(l); });
    log.log(LogLevel::warn, "link_rejected", {{"reason", "x\ny\rz"}, {"peer", "\x1b]0;t\x07"}});
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find_first_of("\r\n\x1b\x07") == std::string::npos);
  }

  TEST_CASE("a throttled event passes once per interval and reports what it held back") {
    LogThrottle t(std::chrono::milliseconds(200));
    std::uint64_t held = 99;
    CHECK(t.allow("e", held));
    CHECK(held == 0);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(t.allow("e", held));
    CHECK(t.allow("other", held));  // keys are throttled apart
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    CHECK(t.allow("e", held));
    CHECK(held == 5);
  }
}
