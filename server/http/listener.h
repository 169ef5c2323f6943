// An httplib::Server with a front door that bounds what slow, idle or numerous clients can hold:
// the shared server of the management API and the Prometheus endpoint.
//
// httplib alone gives each connection one of its 8 worker threads from accept to close, and a
// client that sends its headers one byte a second keeps it forever (its read timeout is per
// recv). Here a connection holds a worker only while it has a complete request head:
//  - The door thread (one poll() loop) owns every connection that is waiting for a request. It
//    reads the request line and headers into the connection's buffer and hands the connection
//    to a worker only once the blank line that ends them has arrived. A head that is not
//    complete within HttpLimits::head_timeout gets 408 and is closed; one larger than
//    max_head_bytes gets 431 and is closed; a kept-alive connection without a new request for
//    idle_timeout is closed.
//  - A worker runs httplib's request processing on that buffer and the socket (body, handler,
//    reply) with an io_timeout per read or write and request_timeout in all; then a kept-alive
//    connection goes back to the door (at most keep_alive_max requests per connection). One
//    whose body was not read (a handler refused it first) is closed.
//  - At most max_connections sockets are open; past that the door closes the connection that
//    has waited longest for its request, so idle and slow sockets give way to new ones.
//
// HTTPS (StartTls): a second listening socket, accepted on its own thread, whose connections go
// through the same door. The door runs each one's TLS handshake (non-blocking, bounded by
// head_timeout like the head that follows it) before it reads the head, and from then on every
// read and write of the door and the workers is SSL_read/SSL_write on the non-blocking socket.
//
// Threads: httplib's listener thread accepts and hands sockets to the door thread; `workers`
// threads serve; the TLS listener thread accepts HTTPS. Start, StartTls and Stop from one thread
// (the broker thread or main).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <httplib.h>

#include "server/net/tls.h"

namespace warren::http {

struct HttpLimits {
  size_t max_connections = 256;
  size_t workers = 8;
  size_t max_head_bytes = 32 * 1024;
  size_t keep_alive_max = 100;
  std::chrono::milliseconds head_timeout{10'000};
  std::chrono::milliseconds idle_timeout{5'000};
  std::chrono::milliseconds io_timeout{10'000};
  std::chrono::milliseconds request_timeout{60'000};
};

class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(HttpLimits limits = {});
  ~HttpServer() override;
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds to address:*port (0 = any free port; the chosen one is written back) and starts
  // serving. Returns an error message naming `what`, empty on success.
  std::string Start(std::string_view what, const std::string& address, uint16_t* port);
  // After Start: also serves HTTPS on address:*port, each connection with the context current in
  // `tls` (which outlives this server) when it is accepted.
  std::string StartTls(std::string_view what, const std::string& address, uint16_t* port, net::TlsContexts* tls);
  // Stops accepting, closes every connection and joins every thread. Idempotent.
  void Stop();

  struct Connection;

 private:
  bool process_and_close_socket(socket_t sock) override;
  // Takes `sock` (and `ssl`, owned, for HTTPS) to the door.
  void Adopt(int sock, SSL* ssl);
  void TlsAcceptLoop();
  void DoorLoop();
  void Serve(std::unique_ptr<Connection> conn);
  // Hands a connection to the door thread.
  void ToDoor(std::unique_ptr<Connection> conn);
  void Wake();

  const HttpLimits limits_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_{0};
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> incoming_;  // guarded by mu_
  std::unique_ptr<httplib::ThreadPool> workers_;
  std::thread listener_;
  std::thread door_;
  net::TlsContexts* tls_ = nullptr;
  int tls_fd_ = -1;
  std::thread tls_listener_;
};

}  // namespace warren::http
