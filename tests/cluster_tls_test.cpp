// Nodes with TLS on their links (transport/tls.hpp): certificates from a test CA made with
// the openssl command, convergence over TLS, refusal of plain peers and of certificates
// from another CA, and clear errors for bad files. Real TCP on 127.0.0.1, bounded waits.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "cluster/node.hpp"
#include "crdt/awlww_map.hpp"
#include "tests/node_test_options.hpp"
#include "tests/test_support.hpp"

using namespace deltacrdt;
using namespace std::chrono_literals;
using Map = AWLWWMap<std::string, std::string>;
namespace fs = std::filesystem;

using deltacrdt::testing::eventually;
using deltacrdt::testing::free_port;

namespace {

// Two CAs ("cluster" and "rogue"), each with certificates for named nodes, in a temporary
// directory removed at the end. EC P-256 keys, valid for two days.
struct TestPki {
  fs::path dir = fs::temp_directory_path() / ("deltacrdt-tls-" + std::to_string(::getpid()));

  TestPki() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    make_ca("cluster");
    make_ca("rogue");
  }
  ~TestPki() { fs::remove_all(dir); }

  static void run(const std::string& command) {
    REQUIRE_MESSAGE(std::system((command + " >/dev/null 2>&1").c_str()) == 0, command);
  }
  void make_ca(const std::string& ca) {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=" +
        ca + " -keyout " + (dir / (ca + ".key")).string() + " -out " +
        (dir / (ca + ".pem")).string());
  }
  // Certificate and key of `node`, signed by `ca`.
  transport::TlsOptions node(const std::string& node, const std::string& ca = "cluster") {
    const std::string base = (dir / (ca + "-" + node)).string();
    if (!fs::exists(base + ".pem")) {
      run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + node +
          " -keyout " + base + ".key -out " + base + ".csr");
      run("openssl x509 -req -days 2 -in " + base + ".csr -CA " + (dir / (ca + ".pem")).string() +
          " -CAkey " + (dir / (ca + ".key")).string() + " -CAcreateserial -out " + base + ".pem");
    }
    return {base + ".pem", base + ".key", (dir / "cluster.pem").string()};
  }
};

NodeOptions options(const std::string& name, transport::TlsOptions tls,
                    std::vector<std::string> seeds = {}) {
  NodeOptions o;
  o.logger = std::make_shared<Logger>(LogLevel::error);
  o.name = name;
  o.secret = "tls-test-secret-0123456789";
  o.seeds = std::move(seeds);
  o.tls = std::move(tls);
  deltacrdt::testing::use_quick_timings(o);
  return o;
}

std::size_t size_of(Replica<Map>& r) {
  return r.read([](const Map& m) { return m.size(); }).get();
}

}  // namespace

TEST_SUITE("cluster.tls") {
  TEST_CASE("nodes with certificates from the cluster CA link over TLS and converge") {
    TestPki pki;
    Node a(options("a", pki.node("a")));
    Node b(options("b", pki.node("b"), {a.address()}));
    auto& ra = a.add_replica<Map>("m");
    auto& rb = b.add_replica<Map>("m");
    REQUIRE(eventually([&] { return a.live_members().size() == 1; }));
    for (int i = 0; i < 100; ++i) (void)ra.put("k" + std::to_string(i), std::string("v")).get();
    (void)rb.put(std::string("from-b"), std::string("x")).get();
    CHECK(eventually([&] { return size_of(ra) == 101 && size_of(rb) == 101; }));
    CHECK(a.metrics().handshakes_failed == 0);
  }

  TEST_CASE("a plain peer and a certificate from another CA are refused; the node keeps serving") {
    TestPki pki;
    Node a(options("a", pki.node("a")));
    Node plain(options("plain", {}, {a.address()}));
    Node rogue(options("rogue", pki.node("rogue", "rogue"), {a.address()}));
    // Both keep dialing and failing; a counts the failures and links nobody.
    CHECK(eventually([&] { return a.metrics().handshakes_failed >= 4; }));
    CHECK(a.live_members().empty());
    CHECK(plain.live_members().empty());
    CHECK(rogue.live_members().empty());
    Node b(options("b", pki.node("b"), {a.address()}));
    CHECK(eventually([&] { return a.live_members() == std::vector<std::string>{"b"}; }));
  }

  TEST_CASE("missing, unreadable or mismatched TLS files are clear errors") {
    TestPki pki;
    transport::TlsOptions good = pki.node("a");
    const auto message = [&](transport::TlsOptions tls) -> std::string {
      try {
        Node n(options("n", std::move(tls)));
      } catch (const std::invalid_argument& e) {
        return e.what();
      }
      return "";
    };
    transport::TlsOptions partial = good;
    partial.ca.clear();
    CHECK(message(partial).find("all three files") != std::string::npos);
    transport::TlsOptions missing = good;
    missing.certificate_chain = (pki.dir / "absent.pem").string();
    CHECK(message(missing).find("absent.pem") != std::string::npos);
    transport::TlsOptions mismatched = good;
    mismatched.private_key = pki.node("b").private_key;
    // OpenSSL notices when the key is loaded ("key values mismatch"); the message names it.
    const std::string mismatch = message(mismatched);
    CHECK(mismatch.find(mismatched.private_key) != std::string::npos);
    CHECK(mismatch.find("mismatch") != std::string::npos);
    transport::TlsOptions not_pem = good;
    std::ofstream(pki.dir / "junk.pem") << "not a certificate\n";
    not_pem.ca = (pki.dir / "junk.pem").string();
    CHECK(message(not_pem).find("junk.pem") != std::string::npos);
  }
}
