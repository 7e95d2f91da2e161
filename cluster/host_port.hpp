// host:port addresses as nodes and programs write them, and their parsing. Pure.
#pragma once

#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace deltacrdt {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

// "host:port" or "[v6]:port". Throws std::invalid_argument naming `what` on bad input.
inline HostPort parse_host_port(std::string_view s, std::string_view what) {
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(std::string(what) + " address '" + std::string(s) +
                                 "': " + std::string(why) + " (expected host:port)");
  };
  const std::size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) throw bad("no host or no port");
  std::string_view host = s.substr(0, colon);
  const std::string_view port = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    throw bad("port must be a number 0-65535");
  }
  if (host.empty()) throw bad("empty host");
  return HostPort{std::string(host), static_cast<std::uint16_t>(value)};
}

}  // namespace deltacrdt
