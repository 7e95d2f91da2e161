// parse_command_line (see command_line.hpp), on CLI11.
#include "examples/link_shortener/command_line.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "cluster/host_port.hpp"

namespace deltacrdt::shortener {

namespace {

// A CLI11 validator for host:port values, with parse_host_port's message.
CLI::Validator host_port(const std::string& what) {
  return CLI::Validator(
      [what](std::string& value) -> std::string {
        try {
          parse_host_port(value, what);
          return {};
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      "");
}

// A secret held in a file (--secret-file, --admin-token-file): the file's contents without
// a trailing newline, at least 16 bytes. A file others can read is allowed (containers mount
// secrets in many ways) but warned about.
std::string read_secret(const std::string& option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(option + " " + path + ": cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  std::string secret = s.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.size() < 16) {
    throw std::runtime_error(option + " " + path +
                             ": the secret must have at least 16 bytes (e.g. `head -c 32 "
                             "/dev/urandom | base64 > " +
                             path + "`)");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    std::fprintf(stderr, "link-shortener: warning: %s is readable by other users; chmod 600 it\n",
                 path.c_str());
  }
  return secret;
}

}  // namespace

std::variant<ShortenerConfig, int> parse_command_line(int argc, const char* const* argv) {
  ShortenerConfig c;
  CLI::App app{
      "link-shortener: a replicated link shortener. Every node serves the whole HTTP API and "
      "replicates links and redirect counts to the other nodes of its cluster.",
      "link-shortener"};
  std::string secret_file, admin_token_file, log_level = "info", neighbours = "all";
  long long remove_after_down_ms = 0;
  long long sync_ms = c.sync_interval.count(), timeout_ms = c.write_timeout.count();
  long long alone_ms = c.alone_after.count(), read_timeout_ms = c.read_timeout.count();
  app.add_option("--name", c.name, "Node name, unique in the cluster")->required();
  app.add_option("--http", c.http, "HTTP API address (IP:PORT)")
      ->type_name("HOST:PORT")
      ->check(host_port("--http"))
      ->capture_default_str();
  app.add_option("--listen", c.listen, "Cluster port address (IP:PORT)")
      ->type_name("HOST:PORT")
      ->check(host_port("--listen"))
      ->capture_default_str();
  app.add_option("--advertise", c.advertise,
                 "Address other nodes dial (HOST:PORT); default: the listen address")
      ->type_name("HOST:PORT")
      ->check(host_port("--advertise"));
  app.add_option("--seeds", c.seeds, "Cluster addresses to dial at start (HOST:PORT,...)")
      ->delimiter(',')
      ->type_name("HOST:PORT")
      ->check(host_port("--seeds"));
  app.add_option("--data-dir", c.data_dir,
                 "Existing directory for this node's write-ahead logs and snapshots")
      ->required()
      ->type_name("DIR")
      ->check(CLI::ExistingDirectory);
  app.add_option("--secret-file", secret_file,
                 "File holding the cluster secret (at least 16 bytes); required unless "
                 "--insecure-dev")
      ->type_name("FILE");
  app.add_flag("--insecure-dev", c.insecure_dev,
               "Use a well-known secret: anyone can join the cluster. Development only");
  app.add_option("--neighbours", neighbours,
                 "Nodes this node pushes its links and counts to: all (every linked node), "
                 "NAME[,NAME...] (only those, in one direction; names not yet linked are used "
                 "once they link), or random:K (K of them: the next on a hash ring and K-1 "
                 "drawn at random, redrawn when one goes down and every 30 s; K 1-64)")
      ->type_name("all|NAME[,NAME...]|random:K")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            std::string error;
            return NeighbourPolicy::parse(value, error) ? std::string() : "--neighbours: " + error;
          },
          ""))
      ->capture_default_str();
  app.add_option("--sync-interval", sync_ms, "Anti-entropy period in milliseconds")
      ->type_name("MS")
      ->check(CLI::Range(1LL, 60000LL))
      ->capture_default_str();
  app.add_option("--write-concern", c.write_concern_name,
                 "When a shorten or delete returns: local (in memory), durable (fsynced "
                 "here), majority (also held by a majority of the cluster's nodes, down "
                 "ones counted), all (held by every node)")
      ->check(CLI::IsMember({"local", "durable", "majority", "all"}))
      ->capture_default_str();
  app.add_option("--write-timeout", timeout_ms,
                 "How long a majority or all write waits for the other nodes, in milliseconds")
      ->type_name("MS")
      ->check(CLI::Range(1LL, 600000LL))
      ->capture_default_str();
  app.add_option("--read-concern", c.read_concern_name,
                 "What a lookup waits for: local (this node's state), majority (first caught "
                 "up from enough nodes to make a majority of the cluster's), all (from every "
                 "node)")
      ->check(CLI::IsMember({"local", "majority", "all"}))
      ->capture_default_str();
  app.add_option("--read-timeout", read_timeout_ms,
                 "How long a majority or all lookup waits for the other nodes, in milliseconds")
      ->type_name("MS")
      ->check(CLI::Range(1LL, 600000LL))
      ->capture_default_str();
  app.add_option("--alone-after", alone_ms,
                 "A node that starts with no data is not ready (GET /_ready and lookups of "
                 "unknown codes answer 503) until a peer has caught it up; with no peer heard "
                 "of for this many milliseconds, it is the first node and becomes ready")
      ->type_name("MS")
      ->check(CLI::Range(0LL, 600000LL))
      ->capture_default_str();
  app.add_option("--admin-token-file", admin_token_file,
                 "File holding the bearer token (at least 16 bytes) of the admin routes "
                 "(DELETE /_cluster/members/NAME removes a member); without it they are "
                 "disabled")
      ->type_name("FILE");
  app.add_option("--remove-after-down", remove_after_down_ms,
                 "Remove a member from the cluster once it has been down this many "
                 "milliseconds (0: never; only an operator removes members). Beware: both "
                 "sides of a long partition remove each other")
      ->type_name("MS")
      ->check(CLI::Range(0LL, 365LL * 24 * 3600 * 1000))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--http-threads", c.http_threads, "Threads serving HTTP")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--http-max-connections", c.http_max_connections,
                 "HTTP connections open at once; more are closed at accept")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--http-max-connections-per-address", c.http_max_connections_per_address,
                 "HTTP connections open at once from one client address (raise it behind a "
                 "proxy)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--tls-cert", c.tls.certificate_chain,
                 "PEM certificate chain of this node: cluster links use TLS (with --tls-key "
                 "and --tls-ca)")
      ->type_name("FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", c.tls.private_key, "PEM private key of --tls-cert")
      ->type_name("FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-ca", c.tls.ca, "PEM CA certificate(s) that sign the cluster's nodes")
      ->type_name("FILE")
      ->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
    if (c.tls.enabled() &&
        (c.tls.certificate_chain.empty() || c.tls.private_key.empty() || c.tls.ca.empty())) {
      throw CLI::ValidationError("--tls-cert",
                                 "TLS needs --tls-cert, --tls-key and --tls-ca together");
    }
    if (secret_file.empty() && !c.insecure_dev) {
      throw CLI::ValidationError("--secret-file",
                                 "a cluster secret is required: pass --secret-file FILE, or "
                                 "--insecure-dev on a development machine");
    }
    if (!secret_file.empty() && c.insecure_dev) {
      throw CLI::ValidationError("--insecure-dev",
                                 "give --secret-file or --insecure-dev, not both");
    }
    c.secret = c.insecure_dev ? std::string(kInsecureDevSecret)
                              : read_secret("--secret-file", secret_file);
    if (!admin_token_file.empty()) c.admin_token = read_secret("--admin-token-file", admin_token_file);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help (exit 0) or the error (exit non-zero)
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "link-shortener: " << e.what() << "\n";
    return 2;
  }
  c.sync_interval = std::chrono::milliseconds(sync_ms);
  c.alone_after = std::chrono::milliseconds(alone_ms);
  c.remove_after_down = std::chrono::milliseconds(remove_after_down_ms);
  {
    std::string error;
    c.neighbours = *NeighbourPolicy::parse(neighbours, error);  // checked above
  }
  c.write_timeout = std::chrono::milliseconds(timeout_ms);
  c.read_timeout = std::chrono::milliseconds(read_timeout_ms);
  if (c.read_concern_name == "majority") {
    c.read_concern = ReadConcern::majority(c.read_timeout);
  } else if (c.read_concern_name == "all") {
    c.read_concern = ReadConcern::all(c.read_timeout);
  } else {
    c.read_concern = ReadConcern::local();
    c.read_concern.timeout = c.read_timeout;  // for requests that ask for more
  }
  parse_log_level(log_level, c.log_level);
  if (c.write_concern_name == "local") {
    c.write_concern = WriteConcern::local();
  } else if (c.write_concern_name == "majority") {
    c.write_concern = WriteConcern::majority(c.write_timeout);
  } else if (c.write_concern_name == "all") {
    c.write_concern = WriteConcern::all(c.write_timeout);
  } else {
    c.write_concern = WriteConcern::durable();
  }
  return c;
}

}  // namespace deltacrdt::shortener
