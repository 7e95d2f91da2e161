// Structured logs: one line per event, logfmt (key=value pairs), with a level.
//
//   ts=2026-11-21T12:00:00.123Z level=info node=n1 event=link_up peer=n2 remote=127.0.0.1:7001
//
// Values with spaces, quotes, '=' or anything but printable text are quoted, and every
// control byte (CR, LF, ESC...) and every byte that is not valid UTF-8 is escaped, so a value
// that came from elsewhere (a peer's refusal reason, a node name) can neither forge a line
// nor drive a terminal. The sink is any callable taking a finished line (default: stderr);
// the embedding program can route lines into its own logging. Thread-safe: lines are
// formatted by the caller and the sink is called under a mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
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
    log(level, event, std::span<const Field>(fields.begin(), fields.size()));
  }
  void log(LogLevel level, std::string_view event, std::span<const Field> fields) {
    if (!enabled(level)) return;
    std::string line = "ts=" + timestamp();
    append(line, "level", level_name(level));
    append(line, "event", event);
    for (const auto& [k, v] : fields) append(line, k, v);
    std::lock_guard lock(mu_);
    sink_(line);
  }

  // Appends key=value to a line as log() does (quoted and escaped where needed).
  static void append(std::string& line, std::string_view key, std::string_view value) {
    line += ' ';
    line += key;
    line += '=';
    bool quote = value.empty();
    for (std::size_t i = 0; i < value.size() && !quote;) {
      const auto c = static_cast<unsigned char>(value[i]);
      const std::size_t n = utf8_length(value, i);
      quote = c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f || n == 0;
      i += n == 0 ? 1 : n;
    }
    if (!quote) {
      line += value;
      return;
    }
    line += '"';
    for (std::size_t i = 0; i < value.size();) {
      const char c = value[i];
      const std::size_t n = utf8_length(value, i);
      if (n > 1) {
        line.append(value.substr(i, n));
        i += n;
        continue;
      }
      ++i;
      switch (c) {
        case '"':
          line += "\\\"";
          break;
        case '\\':
          line += "\\\\";
          break;
        case '\n':
          line += "\\n";
          break;
        case '\r':
          line += "\\r";
          break;
        case '\t':
          line += "\\t";
          break;
        default:
          if (n == 1 && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
            line += c;
          } else {
            static constexpr char kHex[] = "0123456789abcdef";
            const auto b = static_cast<unsigned char>(c);
            line += "\\x";
            line += kHex[b >> 4];
            line += kHex[b & 15];
          }
      }
    }
    line += '"';
  }

 private:
  // Bytes of the well-formed UTF-8 character at value[i] that is not a C1 control
  // (U+0080-U+009F, which some terminals obey): 1 for ASCII, 2-4 for others, 0 for a byte
  // that starts no such character (escaped as \xNN).
  static std::size_t utf8_length(std::string_view value, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(value[i + k]); };
    const unsigned char c = b(0);
    if (c < 0x80) return 1;
    const std::size_t n = c >= 0xc2 && c <= 0xdf   ? 2
                          : c >= 0xe0 && c <= 0xef ? 3
                          : c >= 0xf0 && c <= 0xf4 ? 4
                                                   : 0;
    if (n == 0 || i + n > value.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
      if ((b(k) & 0xc0) != 0x80) return 0;
    }
    if (n == 2 && c == 0xc2 && b(1) < 0xa0) return 0;   // C1 controls
    if (n == 3 && c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (n == 3 && c == 0xed && b(1) >= 0xa0) return 0;  // surrogates
    if (n == 4 && c == 0xf0 && b(1) < 0x90) return 0;   // overlong
    if (n == 4 && c == 0xf4 && b(1) >= 0x90) return 0;  // beyond U+10FFFF
    return n;
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

// Lets an event be logged at most once per interval, so that a flood of refused connections
// or malformed frames costs one line per interval, not one per attempt. Counts what it held
// back, for the next line to report (`suppressed=N`). Keys are the caller's event names (a
// fixed set). Thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::milliseconds interval = std::chrono::seconds(10))
      : interval_(interval) {}

  // Whether `key` may be logged now; if so, `suppressed` is set to how many were held back
  // since it last was.
  bool allow(std::string_view key, std::uint64_t& suppressed) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    auto it = keys_.find(key);
    if (it == keys_.end()) it = keys_.emplace(std::string(key), State{}).first;
    State& st = it->second;
    if (st.logged && now - st.last < interval_) {
      ++st.held;
      return false;
    }
    st.logged = true;
    st.last = now;
    suppressed = st.held;
    st.held = 0;
    return true;
  }

 private:
  struct State {
    bool logged = false;
    std::chrono::steady_clock::time_point last{};
    std::uint64_t held = 0;
  };
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::map<std::string, State, std::less<>> keys_;
};

}  // namespace deltacrdt
