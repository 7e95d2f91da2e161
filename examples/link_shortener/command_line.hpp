// The link-shortener command line: parsed and validated into ShortenerConfig, with --help.
// Pure apart from reading the secret file; thread-compatible.
#pragma once

#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include "cluster/log.hpp"
#include "cluster/neighbour_policy.hpp"
#include "cluster/read_concern.hpp"
#include "cluster/write_concern.hpp"
#include "transport/tls.hpp"

namespace deltacrdt::shortener {

struct ShortenerConfig {
  std::string name;
  std::string http = "127.0.0.1:8080";
  std::string listen = "127.0.0.1:7070";
  std::string advertise;  // empty: the listen address
  std::vector<std::string> seeds;
  // Which nodes this node's replicas push to (--neighbours; default every linked node).
  NeighbourPolicy neighbours;
  std::string data_dir;
  std::string secret;         // read from --secret-file
  bool insecure_dev = false;  // a fixed, public secret: for a laptop, never a network
  std::chrono::milliseconds sync_interval{200};
  std::string write_concern_name = "durable";
  WriteConcern write_concern = WriteConcern::durable();
  std::chrono::milliseconds write_timeout{5000};
  std::string read_concern_name = "local";
  ReadConcern read_concern = ReadConcern::local();
  std::chrono::milliseconds read_timeout{5000};
  // Readiness of a node that starts empty (ReadinessOptions::alone_after; --alone-after).
  std::chrono::milliseconds alone_after{3000};
  LogLevel log_level = LogLevel::info;
  std::size_t http_threads = 2;
  // HTTP connections open at once, in all and from one client address (HttpServerOptions).
  std::size_t http_max_connections = 1024;
  std::size_t http_max_connections_per_address = 256;
  transport::TlsOptions tls;  // cluster links over TLS when all three files are given
  // The bearer token of the admin routes (read from --admin-token-file); empty: the admin
  // routes are disabled.
  std::string admin_token;
  // NodeOptions::remove_after_down (--remove-after-down; 0: only operators remove).
  std::chrono::milliseconds remove_after_down{0};
};

// The secret --insecure-dev uses. It is in the source code, so it protects nothing.
inline constexpr const char* kInsecureDevSecret = "link-shortener-insecure-development-secret";

// Either a config to run with, or the process exit code to stop with now (0 after --help,
// 2 after an error, which has been printed to stderr with a hint).
std::variant<ShortenerConfig, int> parse_command_line(int argc, const char* const* argv);

}  // namespace deltacrdt::shortener
