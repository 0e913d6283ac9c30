// Mutual-TLS contexts for the agent↔collector link (OpenSSL through Boost.Asio).
//
// Both sides load a CA bundle, their own certificate chain and key; both require the peer
// to present a certificate signed by that CA (TLS 1.2 minimum). The collector identifies an
// agent by its certificate's subject CN. Loading failures name the file and OpenSSL's reason,
// so an operator with a wrong path or a key that does not match the certificate knows which.
//
// Thread-safety: contexts are built once at start-up; Asio streams using them each belong
// to one strand.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "common/status.h"

namespace citywatch {

struct TlsFiles {
  std::string ca_file;    // PEM: the CA(s) that sign the peer's certificate
  std::string cert_file;  // PEM: this side's certificate (chain)
  std::string key_file;   // PEM: this side's private key

  bool operator==(const TlsFiles&) const = default;
};

enum class TlsRole { kServer, kClient };

// Builds a context that presents cert/key and verifies the peer against ca_file.
Status make_tls_context(TlsRole role, const TlsFiles& files,
                        std::unique_ptr<boost::asio::ssl::context>& out);

// The subject CN of the verified peer certificate on an established connection, or "".
std::string peer_common_name(SSL* ssl);

// The last OpenSSL error queue entries as text (for logs).
std::string openssl_errors();

}  // namespace citywatch
