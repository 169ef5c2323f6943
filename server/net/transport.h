// The byte stream under an AMQP connection: a TCP socket, or TLS over that socket. A model of
// Asio's AsyncReadStream and AsyncWriteStream (so asio::async_write drives it), with one branch
// per operation instead of a virtual interface: the handlers stay concrete types and cost no
// allocation beyond Asio's own.
//
// TLS writes: OpenSSL's stream sends only the first buffer of a gather list per record, which
// for many small frames would mean one record (and one syscall) per frame; write_some copies
// up to one full record (kTlsRecordBytes) of the list into a per-connection staging buffer
// instead, freed once the connection's output has drained. One write at a time, as
// asio::async_write guarantees.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>

namespace warren::net {

class Transport {
 public:
  using executor_type = asio::ip::tcp::socket::executor_type;
  static constexpr size_t kTlsRecordBytes = 16 * 1024;

  // `tls` null: plain TCP.
  Transport(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls) : socket_(std::move(socket)) {
    if (tls) {
      context_ = std::move(tls);
      tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *context_);
    }
  }

  executor_type get_executor() { return socket_.get_executor(); }
  asio::ip::tcp::socket& socket() { return socket_; }
  bool is_tls() const { return tls_ != nullptr; }
  // REQUIRES: is_tls().
  SSL* native_tls() { return tls_->native_handle(); }

  // REQUIRES: is_tls(). Handler: void(error_code).
  template <typename Handler>
  void async_handshake(Handler&& handler) {
    tls_->async_handshake(asio::ssl::stream_base::server, std::forward<Handler>(handler));
  }

  template <typename MutableBuffers, typename Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  template <typename ConstBuffers, typename Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (!tls_) {
      socket_.async_write_some(buffers, std::forward<Handler>(handler));
      return;
    }
    if (!staging_) staging_ = std::make_unique<char[]>(kTlsRecordBytes);
    size_t staged = 0;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      const asio::const_buffer b(*it);
      const size_t n = std::min(b.size(), kTlsRecordBytes - staged);
      std::memcpy(staging_.get() + staged, b.data(), n);
      staged += n;
      if (staged == kTlsRecordBytes) break;
    }
    tls_->async_write_some(asio::buffer(staging_.get(), staged), std::forward<Handler>(handler));
  }

  // REQUIRES: no write in progress. Frees the TLS staging buffer (output has drained: idle).
  void ReleaseStaging() { staging_.reset(); }

  // Closes the socket at once (no TLS close_notify: the peer learns from the TCP close).
  void Close() {
    asio::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  asio::ip::tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> context_;  // the one accepted with, kept over a reload
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  std::unique_ptr<char[]> staging_;
};

}  // namespace warren::net
