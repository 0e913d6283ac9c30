#include "common/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <filesystem>

namespace citywatch {

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status make_tls_context(TlsRole role, const TlsFiles& files,
                        std::unique_ptr<boost::asio::ssl::context>& out) {
  namespace ssl = boost::asio::ssl;
  for (const auto* f : {&files.ca_file, &files.cert_file, &files.key_file}) {
    if (f->empty()) return Status::error("TLS: ca, cert and key files must all be set");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*f, ec))
      return Status::error("TLS: " + *f + ": no such file");
  }
  auto ctx = std::make_unique<ssl::context>(role == TlsRole::kServer ? ssl::context::tls_server
                                                                     : ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(native, files.ca_file.c_str(), nullptr) != 1)
    return Status::error("TLS: " + files.ca_file + ": cannot load CA: " + openssl_errors());
  if (SSL_CTX_use_certificate_chain_file(native, files.cert_file.c_str()) != 1)
    return Status::error("TLS: " + files.cert_file +
                         ": cannot load certificate: " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(native, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return Status::error("TLS: " + files.key_file +
                         ": cannot load private key: " + openssl_errors());
  if (SSL_CTX_check_private_key(native) != 1)
    return Status::error("TLS: " + files.key_file + " does not match " + files.cert_file);
  // Both sides insist on a certificate from the other: this is what makes it mutual.
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  if (role == TlsRole::kServer) {
    // Tell clients which CA we accept, so a client with several certificates picks right.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca_file.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
  }
  out = std::move(ctx);
  return Status::ok();
}

std::string peer_common_name(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string cn;
  if (X509_NAME* subject = X509_get_subject_name(cert)) {
    const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      const unsigned char* utf8 = nullptr;
      const int len = ASN1_STRING_to_UTF8(const_cast<unsigned char**>(&utf8), data);
      if (len > 0) cn.assign(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
      OPENSSL_free(const_cast<unsigned char*>(utf8));
    }
  }
  X509_free(cert);
  return cn;
}

}  // namespace citywatch
