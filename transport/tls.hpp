// Optional TLS for links (docs/wire-format.md, "TLS"): mutual TLS 1.3 with certificates
// signed by a cluster CA, under the authenticated handshake. TLS keeps link traffic
// confidential and tamper-proof on untrusted networks; the HMAC handshake inside it still
// proves knowledge of the cluster secret, so a certificate alone does not admit a node.
//
// Peers are verified against the CA only, not by host name: nodes are dialed by address
// (often an IP, a proxy or a NAT mapping), and the cluster CA issues certificates to cluster
// nodes alone. make_tls_context is thread-safe; the context is shared by every link of a
// node and must outlive them.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/ssl.hpp>

#include "transport/asio.hpp"
#include "transport/tls_options.hpp"

namespace deltacrdt::transport {

// A TLS 1.3 context presenting this node's certificate and requiring one from the peer,
// signed by `ca`. Throws std::invalid_argument naming the file and the reason when a file
// is missing, unreadable or inconsistent (a key that does not match the certificate).
inline std::shared_ptr<asio::ssl::context> make_tls_context(const TlsOptions& o) {
  const auto fail = [](const std::string& what, const std::string& file,
                       const boost::system::error_code& ec) {
    return std::invalid_argument("tls " + what + " '" + file + "': " + ec.message());
  };
  if (o.certificate_chain.empty() || o.private_key.empty() || o.ca.empty()) {
    throw std::invalid_argument("tls needs all three files: certificate chain, private key and CA");
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tlsv13);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_tlsv1_2);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(o.certificate_chain, ec);
  if (ec) throw fail("certificate chain", o.certificate_chain, ec);
  ctx->use_private_key_file(o.private_key, asio::ssl::context::pem, ec);
  if (ec) throw fail("private key", o.private_key, ec);
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    throw std::invalid_argument("tls private key '" + o.private_key +
                                "' does not match the certificate in '" + o.certificate_chain +
                                "'");
  }
  ctx->load_verify_file(o.ca, ec);
  if (ec) throw fail("CA", o.ca, ec);
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

}  // namespace deltacrdt::transport
