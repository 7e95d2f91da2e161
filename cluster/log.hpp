// Structured logs: one line per event, logfmt (key=value pairs), with a level.
//
//   ts=2026-11-21T12:00:00.123Z level=info node=n1 event=link_up peer=n2 remote=127.0.0.1:7001
//
// Values with spaces, quotes or '=' are quoted. The sink is any callable taking a finished
// line (default: stderr); the embedding program can route lines into its own logging.
// Thread-safe: lines are formatted by the caller and the sink is called under a mutex.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace deltacrdt {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

inline std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      break;
  }
  return "off";
}

// "debug", "info", "warn", "error" or "off"; nullopt-like false for anything else.
inline bool parse_log_level(std::string_view s, LogLevel& out) {
  for (LogLevel l :
       {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off}) {
    if (s == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

class Logger {
 public:
  using Sink = std::function<void(const std::string& line)>;
  using Field = std::pair<std::string_view, std::string_view>;

  explicit Logger(LogLevel min = LogLevel::info, Sink sink = {})
      : min_(min), sink_(sink ? std::move(sink) : Sink([](const std::string& line) {
          std::fputs(line.c_str(), stderr);
          std::fputc('\n', stderr);
        })) {}

  bool enabled(LogLevel l) const { return l >= min_ && min_ != LogLevel::off; }

  void log(LogLevel level, std::string_view event, std::initializer_list<Field> fields) {
    if (!enabled(level)) return;
    std::string line = "ts=" + timestamp();
    append(line, "level", level_name(level));
    append(line, "event", event);
    for (const auto& [k, v] : fields) append(line, k, v);
    std::lock_guard lock(mu_);
    sink_(line);
  }

 private:
  static void append(std::string& line, std::string_view key, std::string_view value) {
    line += ' ';
    line += key;
    line += '=';
    const bool quote = value.empty() || value.find_first_of(" \"=\t\n") != std::string_view::npos;
    if (!quote) {
      line += value;
      return;
    }
    line += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') line += '\\';
      line += c == '\n' ? ' ' : c;
    }
    line += '"';
  }

  static std::string timestamp() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];  // ample for any int fields (the compiler checks the worst case)
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    return buf;
  }

  LogLevel min_;
  Sink sink_;
  std::mutex mu_;
};

}  // namespace deltacrdt
