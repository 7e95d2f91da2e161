// TlsOptions: the certificate, key and CA files of a node's TLS links (transport/tls.hpp).
// Plain values without Asio or OpenSSL, so that NodeOptions can hold them.
#pragma once

#include <string>

namespace deltacrdt::transport {

struct TlsOptions {
  std::string certificate_chain;  // PEM file: this node's certificate (then intermediates)
  std::string private_key;        // PEM file: its private key
  std::string ca;                 // PEM file: the CA(s) that sign cluster nodes' certificates

  bool enabled() const { return !certificate_chain.empty() || !private_key.empty() || !ca.empty(); }
};

}  // namespace deltacrdt::transport
