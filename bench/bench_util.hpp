// Helpers shared by the benchmarks: the key set and timing.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace deltacrdt::bench {

using Clock = std::chrono::steady_clock;

// Key i: 16 hex digits of a scrambled i (spread over the hash space, 16 bytes each).
inline std::string key(std::size_t i) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(i) * 0x9E3779B97F4A7C15ull);
  return buf;
}

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace deltacrdt::bench
