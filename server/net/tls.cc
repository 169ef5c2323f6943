#include "server/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace warren::net {

namespace {

// The reason of the latest OpenSSL error, emptying its queue (an error left there would be
// reported by the next unrelated call on this thread).
std::string OpenSslError() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (text.empty()) text = buffer;
  }
  return text.empty() ? std::string("unknown OpenSSL error") : text;
}

std::string NameText(const X509_NAME* name) {
  if (name == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string text(data, size > 0 ? static_cast<size_t>(size) : 0);
  BIO_free(bio);
  return text;
}

std::string CommonName(const X509_NAME* name) {
  const int index = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int size = ASN1_STRING_to_UTF8(&utf8, data);
  if (size < 0) return {};
  std::string text(reinterpret_cast<char*>(utf8), static_cast<size_t>(size));
  OPENSSL_free(utf8);
  return text;
}

}  // namespace

std::expected<std::shared_ptr<asio::ssl::context>, std::string> MakeTlsContext(const TlsOptions& options) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  ERR_clear_error();
  const bool tls12 = options.versions.find("tlsv1.2") != std::string::npos;
  const bool tls13 = options.versions.find("tlsv1.3") != std::string::npos;
  if (!tls12 && !tls13) return std::unexpected("no TLS version to serve (tlsv1.2, tlsv1.3)");
  SSL_CTX_set_min_proto_version(ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // A client asking for renegotiation costs the server a handshake each time, for nothing.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // OpenSSL frees a session's record buffers (about 34 KiB) between reads and writes: an idle
  // AMQPS connection does not keep them.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (options.certfile.empty() || options.keyfile.empty()) {
    return std::unexpected("a certificate file and a key file are needed (ssl_options.certfile, keyfile)");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, options.certfile.c_str()) != 1) {
    return std::unexpected(fmt::format("cannot load the certificate file '{}': {}", options.certfile, OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
    return std::unexpected(fmt::format("cannot load the key file '{}': {}", options.keyfile, OpenSslError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return std::unexpected(fmt::format("the key '{}' does not match the certificate '{}': {}", options.keyfile,
                                       options.certfile, OpenSslError()));
  }
  if (!options.cacertfile.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.cacertfile.c_str(), nullptr) != 1) {
      return std::unexpected(
          fmt::format("cannot load the CA certificate file '{}': {}", options.cacertfile, OpenSslError()));
    }
    // Named in the certificate request, so that a client with several certificates picks ours.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.cacertfile.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
  } else if (options.verify_peer) {
    return std::unexpected("verify_peer needs a CA certificate file (ssl_options.cacertfile)");
  }
  int verify = SSL_VERIFY_NONE;
  if (options.verify_peer) verify = SSL_VERIFY_PEER | (options.fail_if_no_peer_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  SSL_CTX_set_verify(ctx, verify, nullptr);
  if (!options.ciphers.empty()) {
    std::string suites, ciphers;
    size_t start = 0;
    while (start <= options.ciphers.size()) {
      const size_t colon = std::min(options.ciphers.find(':', start), options.ciphers.size());
      const std::string name = options.ciphers.substr(start, colon - start);
      std::string& list = name.starts_with("TLS_") ? suites : ciphers;
      if (!name.empty()) list += (list.empty() ? "" : ":") + name;
      start = colon + 1;
    }
    if (!suites.empty() && SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
      return std::unexpected(fmt::format("unknown TLS 1.3 ciphersuites '{}': {}", suites, OpenSslError()));
    }
    if (!ciphers.empty() && SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
      return std::unexpected(fmt::format("unknown ciphers '{}': {}", ciphers, OpenSslError()));
    }
  }
  return context;
}

bool TlsContexts::Reload() {
  auto fresh = MakeTlsContext(options_);
  if (!fresh) {
    spdlog::error("{}: cannot reload the certificate and key, still serving the previous ones: {}", what_,
                  fresh.error());
    return false;
  }
  {
    std::lock_guard lock(mu_);
    current_ = std::move(*fresh);
  }
  spdlog::info("{}: reloaded the certificate '{}' and key '{}' for new connections", what_, options_.certfile,
               options_.keyfile);
  return true;
}

TlsPeerInfo PeerInfo(const SSL* ssl) {
  TlsPeerInfo info;
  info.protocol = SSL_get_version(ssl);
  info.cipher = SSL_get_cipher_name(ssl);
  // Only a certificate that verified: with verify_none OpenSSL neither asks for nor checks one.
  if (SSL_get_verify_result(ssl) != X509_V_OK) return info;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return info;
  info.subject = NameText(X509_get_subject_name(cert));
  info.issuer = NameText(X509_get_issuer_name(cert));
  info.common_name = CommonName(X509_get_subject_name(cert));
  X509_free(cert);
  return info;
}

}  // namespace warren::net
