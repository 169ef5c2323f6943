// TLS settings (RabbitMQ's ssl_options) and the OpenSSL contexts built from them, shared by the
// AMQPS listener (asio::ssl) and the management API's HTTPS front door (OpenSSL directly).
//
// Reload: TlsContexts::Reload builds a whole new context from the files; only when that works does
// it replace the current one, which new connections take. A connection keeps the context it was
// accepted with (OpenSSL counts its references), so a reload drops nothing, and a bad new
// certificate or key leaves the old one serving.
//
// Threads: current() and Reload() may be called from any thread.
#pragma once

#include <expected>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <asio/ssl/context.hpp>

namespace warren::net {

struct TlsOptions {
  std::string cacertfile, certfile, keyfile;
  bool verify_peer = false;
  bool fail_if_no_peer_cert = false;
  std::string versions = "tlsv1.2,tlsv1.3";  // comma-separated, each tlsv1.2 or tlsv1.3
  std::string ciphers;  // colon-separated; TLS_* names are TLS 1.3 ciphersuites
};

// A server context for `options`, or what is wrong (a file that does not load, a key that does
// not match the certificate, verify_peer without a CA file, a cipher OpenSSL does not know).
std::expected<std::shared_ptr<asio::ssl::context>, std::string> MakeTlsContext(const TlsOptions& options);

class TlsContexts {
 public:
  // `what` names the listener in log lines ("AMQPS", "management HTTPS").
  TlsContexts(std::string what, TlsOptions options, std::shared_ptr<asio::ssl::context> initial)
      : what_(std::move(what)), options_(std::move(options)), current_(std::move(initial)) {}

  std::shared_ptr<asio::ssl::context> current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  const TlsOptions& options() const { return options_; }
  // Re-reads the files; logs the outcome. False (the old context kept) when they do not load.
  bool Reload();

 private:
  const std::string what_;
  const TlsOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<asio::ssl::context> current_;  // guarded by mu_
};

// What a connection's TLS session shows the management API and EXTERNAL login.
struct TlsPeerInfo {
  std::string protocol;      // "TLSv1.3"
  std::string cipher;        // OpenSSL's name
  std::string subject;       // the client certificate's subject, RFC 4514 ("CN=a,O=b"); "" without one
  std::string issuer;
  std::string common_name;   // the subject's CN, UTF-8; "" without one
};
// REQUIRES: the handshake of `ssl` is done.
TlsPeerInfo PeerInfo(const SSL* ssl);

}  // namespace warren::net
