#include "server/http/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace warren::http {

using Clock = std::chrono::steady_clock;

struct HttpServer::Connection {
  Connection(int fd, SSL* ssl, std::atomic<size_t>& open) : fd(fd), ssl(ssl), open(open) { open.fetch_add(1); }
  ~Connection() {
    if (ssl != nullptr) {
      if (tls_ready) SSL_shutdown(ssl);  // one non-blocking try at close_notify
      SSL_free(ssl);
    }
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    open.fetch_sub(1);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const int fd;
  SSL* const ssl;  // HTTPS: owned; the socket is non-blocking
  bool tls_ready = false;   // the TLS handshake is done
  bool want_write = false;  // the handshake waits for the socket to take more
  std::atomic<size_t>& open;
  std::string peer_ip, local_ip;
  int peer_port = -1, local_port = -1;
  // Received and not yet consumed: the current request's head (and what followed it in the
  // same reads) from offset 0.
  std::string buf;
  // The current request ends here: head plus Content-Length (set when its head is complete).
  size_t request_end = 0;
  Clock::time_point since;  // waiting for the current request since (or its first byte since)
  bool started = false;  // some bytes of the current request have arrived
  size_t served = 0;
};

namespace {

// httplib runs every accepted socket through its task queue; the front door only needs the
// socket handed over on the accepting thread, which process_and_close_socket does at once.
class InlineQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

void Address(const sockaddr_storage& addr, socklen_t len, std::string* ip, int* port) {
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof(host), serv, sizeof(serv),
                  NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    *ip = host;
    *port = std::atoi(serv);
  }
}

constexpr ssize_t kAgain = -2;

// One non-blocking read or write, through TLS on an HTTPS connection: the bytes moved, 0 when
// the peer closed (reads), -1 on an error, or kAgain with *wait the poll event to wait for.
ssize_t Recv(HttpServer::Connection& conn, char* data, size_t size, short* wait) {
  *wait = POLLIN;
  if (conn.ssl == nullptr) {
    const ssize_t n = ::recv(conn.fd, data, size, MSG_DONTWAIT);
    return n >= 0 ? n : (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? kAgain : -1;
  }
  ERR_clear_error();  // SSL_get_error reads this thread's queue
  const int n = SSL_read(conn.ssl, data, static_cast<int>(std::min<size_t>(size, INT32_MAX)));
  if (n > 0) return n;
  switch (SSL_get_error(conn.ssl, n)) {
    case SSL_ERROR_WANT_READ: return kAgain;
    case SSL_ERROR_WANT_WRITE: *wait = POLLOUT; return kAgain;
    case SSL_ERROR_ZERO_RETURN: return 0;
    default: return -1;
  }
}

ssize_t Send(HttpServer::Connection& conn, const char* data, size_t size, short* wait) {
  *wait = POLLOUT;
  if (conn.ssl == nullptr) {
    const ssize_t n = ::send(conn.fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n >= 0 ? n : (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? kAgain : -1;
  }
  if (!conn.tls_ready) return -1;
  ERR_clear_error();
  const int n = SSL_write(conn.ssl, data, static_cast<int>(std::min<size_t>(size, INT32_MAX)));
  if (n > 0) return n;
  switch (SSL_get_error(conn.ssl, n)) {
    case SSL_ERROR_WANT_WRITE: return kAgain;
    case SSL_ERROR_WANT_READ: *wait = POLLIN; return kAgain;
    default: return -1;
  }
}

// Best effort: the connection is closed right after, whatever the peer reads.
void SendAndClose(HttpServer::Connection& conn, int status, std::string_view reason, std::string_view text) {
  const std::string reply = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", status,
      reason, text.size(), text);
  short wait = 0;
  [[maybe_unused]] const ssize_t n = Send(conn, reply.data(), reply.size(), &wait);
}

// Where the request head in `buf` ends (after its blank line), or npos.
size_t HeadEnd(std::string_view buf) {
  const size_t crlf = buf.find("\r\n\r\n");
  const size_t lf = buf.find("\n\n");
  const size_t crlf_end = crlf == std::string_view::npos ? crlf : crlf + 4;
  const size_t lf_end = lf == std::string_view::npos ? lf : lf + 2;
  return std::min(crlf_end, lf_end);
}

bool HeaderIs(std::string_view line, std::string_view name, std::string_view* value) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  std::string_view v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  *value = v;
  return true;
}

enum class Framing { kOk, kChunked, kBadLength };

// The body length a request head announces (0 without Content-Length).
Framing BodyLength(std::string_view head, size_t* length) {
  *length = 0;
  bool seen = false;
  size_t start = head.find('\n');
  while (start != std::string_view::npos && start + 1 < head.size()) {
    const size_t end = head.find('\n', start + 1);
    const std::string_view line = head.substr(start + 1, (end == std::string_view::npos ? head.size() : end) - start - 1);
    std::string_view value;
    if (HeaderIs(line, "transfer-encoding", &value)) return Framing::kChunked;
    if (HeaderIs(line, "content-length", &value)) {
      size_t n = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || (seen && n != *length)) return Framing::kBadLength;
      seen = true;
      *length = n;
    }
    start = end;
  }
  return Framing::kOk;
}

// httplib's Stream over one request of a connection: first the bytes the door already read,
// then the socket, never past the request's end (so httplib can neither read into a pipelined
// request nor wait for a body that was never announced), each read or write bounded by
// io_timeout and all of them by the request's deadline.
class RequestStream : public httplib::Stream {
 public:
  RequestStream(HttpServer::Connection& conn, const HttpLimits& limits, const std::atomic<bool>& stopping)
      : conn_(conn), limits_(limits), stopping_(stopping), deadline_(Clock::now() + limits.request_timeout) {}

  bool consumed_all() const { return pos_ >= conn_.request_end; }

  bool is_readable() const override {
    return pos_ < conn_.buf.size() || (conn_.ssl != nullptr && SSL_pending(conn_.ssl) > 0) || Poll(POLLIN);
  }
  bool is_writable() const override { return Poll(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= conn_.request_end) return 0;
    size = std::min(size, conn_.request_end - pos_);
    if (pos_ < conn_.buf.size()) {
      const size_t n = std::min(size, conn_.buf.size() - pos_);
      std::memcpy(ptr, conn_.buf.data() + pos_, n);
      pos_ += n;
      return static_cast<ssize_t>(n);
    }
    for (;;) {
      short wait = 0;
      const ssize_t n = Recv(conn_, ptr, size, &wait);
      if (n >= 0) {
        pos_ += static_cast<size_t>(n);
        // The door's buffer held less than this request, so none of it is kept.
        conn_.buf.clear();
        return n;
      }
      if (n != kAgain || !Poll(wait)) return -1;
    }
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      short wait = 0;
      const ssize_t n = Send(conn_, ptr + done, size - done, &wait);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n == kAgain && Poll(wait)) continue;
      return -1;
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = conn_.peer_ip;
    port = conn_.peer_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = conn_.local_ip;
    port = conn_.local_port;
  }
  socket_t socket() const override { return conn_.fd; }

 private:
  // Waits for `events` up to io_timeout, the request's deadline and Stop.
  bool Poll(short events) const {
    const auto limit = std::min(Clock::now() + limits_.io_timeout, deadline_);
    for (;;) {
      if (stopping_.load()) return false;
      const auto now = Clock::now();
      if (now >= limit) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - now).count();
      pollfd p{conn_.fd, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left + 1, 100)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  HttpServer::Connection& conn_;
  const HttpLimits& limits_;
  const std::atomic<bool>& stopping_;
  const Clock::time_point deadline_;
  size_t pos_ = 0;
};

}  // namespace

HttpServer::HttpServer(HttpLimits limits) : limits_(limits) {
  new_task_queue = [] { return new InlineQueue; };
  // Only the door's own limits apply; httplib's keep-alive loop is not used.
  set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(limits_.io_timeout));
  set_write_timeout(std::chrono::duration_cast<std::chrono::seconds>(limits_.io_timeout));
}

HttpServer::~HttpServer() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

std::string HttpServer::Start(std::string_view what, const std::string& address, uint16_t* port) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return fmt::format("{}: eventfd: {}", what, std::strerror(errno));
  if (*port == 0) {
    const int bound = bind_to_any_port(address);
    if (bound < 0) return fmt::format("{}: cannot listen on {}:0", what, address);
    *port = static_cast<uint16_t>(bound);
  } else if (!bind_to_port(address, *port)) {
    return fmt::format("{}: cannot listen on {}:{} (port in use?)", what, address, *port);
  }
  workers_ = std::make_unique<httplib::ThreadPool>(limits_.workers);
  door_ = std::thread([this] { DoorLoop(); });
  listener_ = std::thread([this] { listen_after_bind(); });
  return {};
}

std::string HttpServer::StartTls(std::string_view what, const std::string& address, uint16_t* port,
                                 net::TlsContexts* tls) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(*port);
  if (::getaddrinfo(address.c_str(), service.c_str(), &hints, &found) != 0 || found == nullptr) {
    return fmt::format("{}: invalid address {}", what, address);
  }
  tls_fd_ = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int yes = 1;
  const bool ok = tls_fd_ >= 0 && ::setsockopt(tls_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) == 0 &&
                  ::bind(tls_fd_, found->ai_addr, found->ai_addrlen) == 0 && ::listen(tls_fd_, SOMAXCONN) == 0;
  ::freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (!ok || ::getsockname(tls_fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return fmt::format("{}: cannot listen on {}:{}: {}", what, address, *port, std::strerror(errno));
  }
  std::string ip;
  int bound_port = 0;
  Address(bound, len, &ip, &bound_port);
  *port = static_cast<uint16_t>(bound_port);
  tls_ = tls;
  tls_listener_ = std::thread([this] { TlsAcceptLoop(); });
  return {};
}

void HttpServer::TlsAcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{tls_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(tls_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      // Out of descriptors (or an aborted connection): wait rather than spin.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      continue;
    }
    const int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    SSL* ssl = SSL_new(tls_->current()->native_handle());  // holds its own reference to the context
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      if (ssl != nullptr) SSL_free(ssl);
      ::close(fd);
      continue;
    }
    SSL_set_accept_state(ssl);
    Adopt(fd, ssl);
  }
}

void HttpServer::Stop() {
  if (!listener_.joinable()) return;
  stopping_.store(true);
  if (tls_listener_.joinable()) tls_listener_.join();
  if (tls_fd_ >= 0) ::close(tls_fd_);
  tls_fd_ = -1;
  // httplib's stop() only closes the socket of a server that is running: wait (briefly) for the
  // listener thread to get there when Stop follows Start closely.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (!is_running() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop();
  listener_.join();
  workers_->shutdown();
  Wake();
  door_.join();
  std::lock_guard lock(mu_);
  incoming_.clear();
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  Adopt(sock, nullptr);
  return true;
}

void HttpServer::Adopt(int sock, SSL* ssl) {
  auto conn = std::make_unique<Connection>(sock, ssl, open_);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    Address(addr, len, &conn->peer_ip, &conn->peer_port);
  }
  len = sizeof(addr);
  if (getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    Address(addr, len, &conn->local_ip, &conn->local_port);
  }
  conn->since = Clock::now();
  ToDoor(std::move(conn));
}

void HttpServer::ToDoor(std::unique_ptr<Connection> conn) {
  {
    std::lock_guard lock(mu_);
    incoming_.push_back(std::move(conn));
  }
  Wake();
}

void HttpServer::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void HttpServer::DoorLoop() {
  std::vector<std::unique_ptr<Connection>> waiting;
  std::vector<pollfd> fds;
  while (!stopping_.load()) {
    {
      std::lock_guard lock(mu_);
      for (auto& c : incoming_) waiting.push_back(std::move(c));
      incoming_.clear();
    }
    // Over the cap: the connection that has waited longest for its request gives way.
    while (open_.load() > limits_.max_connections && !waiting.empty()) {
      auto oldest = std::min_element(waiting.begin(), waiting.end(),
                                     [](const auto& a, const auto& b) { return a->since < b->since; });
      waiting.erase(oldest);
    }
    const auto now = Clock::now();
    auto next = now + std::chrono::seconds(1);
    for (auto& conn : waiting) {
      // Blank lines before a request line are allowed (RFC 9112 2.2).
      const size_t blank = conn->buf.find_first_not_of("\r\n");
      conn->buf.erase(0, blank == std::string::npos ? conn->buf.size() : blank);
      const size_t head_end = HeadEnd(conn->buf);
      if (head_end != std::string::npos) {
        size_t body = 0;
        switch (BodyLength(std::string_view(conn->buf).substr(0, head_end), &body)) {
          case Framing::kChunked:
            SendAndClose(*conn, 411, "Length Required", "chunked request bodies are not accepted: send Content-Length\n");
            conn.reset();
            continue;
          case Framing::kBadLength:
            SendAndClose(*conn, 400, "Bad Request", "invalid Content-Length\n");
            conn.reset();
            continue;
          case Framing::kOk:
            break;
        }
        conn->request_end = head_end + body;
        Connection* raw = conn.release();
        workers_->enqueue([this, raw] { Serve(std::unique_ptr<Connection>(raw)); });
        continue;
      }
      if (conn->buf.size() >= limits_.max_head_bytes) {
        SendAndClose(*conn, 431, "Request Header Fields Too Large",
                     fmt::format("request line and headers exceed {} bytes\n", limits_.max_head_bytes));
        conn.reset();
        continue;
      }
      const bool idle = !conn->started && conn->served > 0;
      const auto limit = conn->since + (idle ? limits_.idle_timeout : limits_.head_timeout);
      if (now >= limit) {
        if (conn->started || conn->served == 0) {
          SendAndClose(*conn, 408, "Request Timeout",
                       fmt::format("the request head did not arrive within {} ms\n", limits_.head_timeout.count()));
        }
        conn.reset();
        continue;
      }
      next = std::min(next, limit);
    }
    std::erase(waiting, nullptr);

    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    // Bytes OpenSSL decrypted already (the rest of a record) wake no poll: read them now.
    bool decrypted = false;
    for (const auto& conn : waiting) {
      fds.push_back(pollfd{conn->fd, static_cast<short>(conn->want_write ? POLLOUT : POLLIN), 0});
      decrypted = decrypted || (conn->ssl != nullptr && conn->tls_ready && SSL_pending(conn->ssl) > 0);
    }
    const auto wait = decrypted ? 0 : std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count() + 1;
    if (::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(wait, 0, 1000))) < 0) {
      if (errno != EINTR) spdlog::error("HTTP front door: poll: {}", std::strerror(errno));
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof(count));
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      Connection& conn = *waiting[i - 1];
      if (fds[i].revents == 0 && !(conn.ssl != nullptr && conn.tls_ready && SSL_pending(conn.ssl) > 0)) continue;
      if (conn.ssl != nullptr && !conn.tls_ready) {
        ERR_clear_error();
        const int r = SSL_do_handshake(conn.ssl);
        const int error = r == 1 ? SSL_ERROR_NONE : SSL_get_error(conn.ssl, r);
        conn.tls_ready = r == 1;
        conn.want_write = error == SSL_ERROR_WANT_WRITE;
        if (r != 1 && error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
          spdlog::debug("HTTPS {}:{}: TLS handshake failed", conn.peer_ip, conn.peer_port);
          waiting[i - 1].reset();
        }
        continue;
      }
      char chunk[4096];
      const size_t room = std::min(sizeof(chunk), limits_.max_head_bytes - std::min(limits_.max_head_bytes, conn.buf.size()));
      short ignored = 0;
      const ssize_t n = Recv(conn, chunk, std::max<size_t>(room, 1), &ignored);
      if (n == 0 || n == -1) {
        waiting[i - 1].reset();
        continue;
      }
      if (n < 0) continue;
      if (!conn.started) {
        conn.started = true;
        conn.since = Clock::now();
      }
      conn.buf.append(chunk, static_cast<size_t>(n));
    }
    std::erase(waiting, nullptr);
  }
}

void HttpServer::Serve(std::unique_ptr<Connection> conn) {
  const bool last = conn->served + 1 >= limits_.keep_alive_max || stopping_.load();
  RequestStream stream(*conn, limits_, stopping_);
  bool closed = false;
  const bool ok = process_request(stream, last, closed, nullptr);
  ++conn->served;
  // A body the handler refused before reading stands between this request and the next.
  if (!ok || closed || last || !stream.consumed_all() || stopping_.load()) return;
  // What the door read beyond this request is the start of the next one (pipelining).
  conn->buf.erase(0, std::min(conn->request_end, conn->buf.size()));
  conn->request_end = 0;
  conn->started = !conn->buf.empty();
  conn->since = Clock::now();
  ToDoor(std::move(conn));
}

}  // namespace warren::http
