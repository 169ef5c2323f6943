// The AMQP listener: accepts TCP connections and owns the live Connection objects.
//
// Thread: the broker thread (the io_context passed in must be run by that one thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "server/broker/broker.h"
#include "server/net/connection.h"

namespace warren::net {

// RabbitMQ's resource alarms. While any is on, every connection that publishes is blocked.
enum class ResourceAlarm : uint8_t { kMemory = 1, kDisk = 2 };

struct ServerOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 5672;
  ConnectionLimits limits;
  std::set<std::string, std::less<>> loopback_users{"guest"};
};

class Server {
 public:
  // Sets the broker's user-deleted and vhost-deleted hooks (cleared by the destructor).
  Server(asio::io_context& io, broker::Broker& broker, ServerOptions options);
  ~Server();

  // Binds and starts accepting. Returns an error message on failure (e.g. port in use).
  std::string Listen();
  // Stops accepting and drops every connection.
  void Stop();

  uint16_t port() const { return bound_port_; }
  // Whether any resource alarm is on: publishing connections are blocked (connection.blocked,
  // no more reading from them) until every alarm is clear.
  bool alarm() const { return alarms_ != 0; }
  bool alarm(ResourceAlarm alarm) const { return (alarms_ & static_cast<uint8_t>(alarm)) != 0; }
  void SetAlarm(ResourceAlarm alarm, bool on);
  // connection.blocked's reason, as RabbitMQ words it: "low on memory", "low on disk", or both
  // joined by " & ". REQUIRES: alarm().
  std::string AlarmReason() const;
  bool IsLoopbackOnly(std::string_view user) const { return options_.loopback_users.contains(user); }
  void Unregister(uint64_t connection_id) { connections_.erase(connection_id); }
  // Read-only view of the live connections, by id (the management API lists them).
  const std::unordered_map<uint64_t, std::shared_ptr<Connection>>& connections() const { return connections_; }
  // Sends connection.close 320 CONNECTION_FORCED with `reason` to every connection `match`
  // selects (e.g. all connections of a user).
  void CloseConnectionsIf(const std::function<bool(const Connection&)>& match, std::string_view reason);

 private:
  void Accept();

  asio::io_context& io_;
  broker::Broker& broker_;
  ServerOptions options_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t bound_port_ = 0;
  uint8_t alarms_ = 0;  // ResourceAlarm bits
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
};

}  // namespace warren::net
