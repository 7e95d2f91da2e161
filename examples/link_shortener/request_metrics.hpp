// Request counters of the link shortener's HTTP API and their Prometheus text rendering.
// Thread-safe: one mutex around a small map (a request's cost dwarfs the lock).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace deltacrdt::shortener {

class RequestMetrics {
 public:
  void count(const std::string& route, unsigned status) {
    std::lock_guard lock(mu_);
    ++requests_[{route, status}];
  }
  void count_conflict() {
    std::lock_guard lock(mu_);
    ++conflicts_;
  }

  // Appends the counters in Prometheus text exposition format.
  void render(std::string& out) const {
    std::lock_guard lock(mu_);
    out += "# HELP link_shortener_requests_total HTTP requests by route and status.\n";
    out += "# TYPE link_shortener_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      out += fmt::format("link_shortener_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
                         key.first, key.second, n);
    }
    out +=
        "# HELP link_shortener_ambiguous_codes_total Lookups of a code holding "
        "concurrent writes of different URLs.\n";
    out += "# TYPE link_shortener_ambiguous_codes_total counter\n";
    out += fmt::format("link_shortener_ambiguous_codes_total {}\n", conflicts_);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::uint64_t conflicts_ = 0;
};

}  // namespace deltacrdt::shortener
