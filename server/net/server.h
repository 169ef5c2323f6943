// The AMQP listeners (plain, and AMQPS when TLS is configured): accept TCP connections and own
// the live Connection objects. Both listeners share the connection limit and the alarms.
//
// Accepting pauses while max_connections are open (at most one log line per kAcceptLogInterval
// says so), and for kAcceptBackoff after a failed accept (EMFILE, ENFILE, ENOBUFS, ...), so that
// running out of descriptors neither spins nor floods the log: the first failure of a streak is
// logged, then at most one line per kAcceptLogInterval, and one when accepting works again.
//
// Thread: the broker thread (the io_context passed in must be run by that one thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "server/broker/broker.h"
#include "server/net/connection.h"
#include "server/net/login_throttle.h"
#include "server/net/tls.h"

namespace warren::net {

// RabbitMQ's resource alarms. While any is on, every connection that publishes is blocked.
enum class ResourceAlarm : uint8_t { kMemory = 1, kDisk = 2 };

struct ServerOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 5672;
  ConnectionLimits limits;
  std::set<std::string, std::less<>> loopback_users{"guest"};
  // Most AMQP connections at once (0: no limit). Over it, accepting pauses (RabbitMQ's
  // connection_max: new clients wait in the listen backlog) until a connection closes.
  size_t max_connections = 0;
  LoginThrottleOptions login_throttle;
  // AMQPS on bind_address:ssl_port when `tls` is set (owned by the caller, outliving the Server):
  // each connection takes the context current when it is accepted.
  uint16_t ssl_port = 0;
  TlsContexts* tls = nullptr;
};

class Server {
 public:
  // Sets the broker's user-deleted and vhost-deleted hooks (cleared by the destructor).
  Server(asio::io_context& io, broker::Broker& broker, ServerOptions options);
  ~Server();

  // Binds and starts accepting. Returns an error message on failure (e.g. port in use).
  std::string Listen();
  static constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
  static constexpr auto kAcceptLogInterval = std::chrono::seconds(10);
  // Graceful shutdown (main.cc), first step: stops accepting, and stops reading from every
  // connection, so no new work arrives while the store finishes its last batches.
  void StopAccepting();
  // Second step: connection.close 320 CONNECTION_FORCED with `reason` to every open connection
  // (those still in the handshake are dropped); `on_closed` runs once none is left. A client that
  // does not answer with close-ok is dropped after the connection's close-ok timeout.
  void CloseAll(std::string_view reason, std::function<void()> on_closed);
  // Stops accepting and drops every connection.
  void Stop();

  uint16_t port() const { return listeners_[0].bound_port; }
  // 0 without TLS.
  uint16_t ssl_port() const { return listeners_[1].bound_port; }
  // Whether any resource alarm is on: publishing connections are blocked (connection.blocked,
  // no more reading from them) until every alarm is clear.
  bool alarm() const { return alarms_ != 0; }
  bool alarm(ResourceAlarm alarm) const { return (alarms_ & static_cast<uint8_t>(alarm)) != 0; }
  void SetAlarm(ResourceAlarm alarm, bool on);
  // connection.blocked's reason, as RabbitMQ words it: "low on memory", "low on disk", or both
  // joined by " & ". REQUIRES: alarm().
  std::string AlarmReason() const;
  bool IsLoopbackOnly(std::string_view user) const { return options_.loopback_users.contains(user); }
  // A connection is gone: frees its slot (and resumes accepting if the limit paused it).
  void Unregister(uint64_t connection_id);
  LoginThrottle& login_throttle() { return login_throttle_; }
  static constexpr size_t kReadArenaBytes = 512 * 1024;
  // What every plain-TCP connection reads into and parses in place (Connection, "Reading"): one
  // handler runs at a time on this thread, and none keeps anything in it past its handler.
  std::span<char> read_arena() { return {read_arena_.get(), kReadArenaBytes}; }
  // Where the broker state lives (Connection::CallBroker posts there).
  asio::io_context::executor_type broker_executor() { return io_.get_executor(); }
  // Read-only view of the live connections, by id (the management API lists them).
  const std::unordered_map<uint64_t, std::shared_ptr<Connection>>& connections() const { return connections_; }
  // Sends connection.close 320 CONNECTION_FORCED with `reason` to every connection `match`
  // selects (e.g. all connections of a user).
  void CloseConnectionsIf(const std::function<bool(const Connection&)>& match, std::string_view reason);

 private:
  struct Listener {
    explicit Listener(asio::io_context& io) : acceptor(io), backoff_timer(io) {}
    asio::ip::tcp::acceptor acceptor;
    uint16_t bound_port = 0;
    asio::ip::tcp::endpoint accept_peer;
    asio::steady_timer backoff_timer;
    bool accept_pending = false;  // an async_accept or a back-off wait is outstanding
  };
  std::string Bind(Listener& listener, uint16_t port);
  void Accept();
  void Accept(Listener& listener);
  void OnAccepted(Listener& listener, const asio::error_code& ec, asio::ip::tcp::socket socket);

  asio::io_context& io_;
  broker::Broker& broker_;
  ServerOptions options_;
  Listener listeners_[2];  // plain, TLS (closed without TLS)
  void CloseListeners();
  uint8_t alarms_ = 0;  // ResourceAlarm bits
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::function<void()> on_all_closed_;  // CloseAll's
  LoginThrottle login_throttle_;
  std::unique_ptr<char[]> read_arena_;  // counted as connection_buffers
  bool at_limit_logged_ = false;  // the limit line was logged and accepting has not resumed yet
  std::chrono::steady_clock::time_point last_limit_log_;
  uint64_t failed_accepts_ = 0;  // in the current streak
  std::chrono::steady_clock::time_point last_accept_log_;
};

}  // namespace warren::net
