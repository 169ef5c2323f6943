// The management HTTP API and web UI: RabbitMQ's management plugin API (/api/overview with
// message rates, vhosts, exchanges, queues, bindings, connections, channels, consumers,
// publish/get, purge, aliveness and alarm health checks; users, vhosts, permissions and
// definitions export/import and online backup for administrators), JSON with RabbitMQ's field names, so that curl
// scripts and `rabbitmqadmin` work against Warren; and the browser UI at / (web_ui.h).
//
// Threads: an HttpServer (listener.h: the front door that bounds slow and idle clients) serves
// on its own threads. No HTTP thread ever touches broker state: a handler copies what it needs
// from the request (method, path segments, query parameters, body, credentials), posts a
// function to the broker thread's io_context and waits for it (handoff.h). The posted function
// (internal::Api) authenticates the user, reads or changes the broker and builds the whole JSON
// reply there. When the broker thread has not started the function within 5 s (or the server is
// stopping), the reply is 503 and the function is never run; one that has started is waited for.
//
// Before a body is read: the Host must be allowed and a write's Origin must match it
// (origin.h: 403); a request that announces a body is authenticated first (a posted
// Api::Refusal: 401/404/405 without reading it), then needs `Content-Type: application/json`
// (415) and a Content-Length within its route's limit (413: kMaxBody for publish and
// definitions, kMaxObjectBody for the rest). Every reply carries a Content-Security-Policy
// (self only), X-Frame-Options: DENY, X-Content-Type-Options: nosniff and Referrer-Policy.
//
// Authentication: HTTP basic auth against the broker's users. Missing credentials: 401 with no
// body, wrong ones: 401 {"error":"not_authorized","reason":"Login failed"}, both with
// `WWW-Authenticate: Basic realm="RabbitMQ Management"` (not for requests with
// `X-Requested-With: XMLHttpRequest`, the web UI's, so browsers show no login dialog); a user
// without one of the tags administrator, monitoring, management: 401
// {"error":"not_authorised","reason":"Not management user"} (RabbitMQ's texts). Administrators
// and monitoring users see every vhost; management users see the vhosts they have permissions
// in, and need configure/write/read permissions for changes, publishing and getting, as over
// AMQP. `Authorization: Bearer <ManagementOptions::admin_token>` (the token warren-server writes
// to DATA_DIR/.warrenctl-token at each start, for tools/warrenctl) acts as an administrator with
// every permission in every vhost, when it comes from a loopback peer (loopback.h).
//
// Changes go through the same Vhost methods the AMQP channel uses, with connection id 0, so they
// are journaled to the store exactly like AMQP declarations.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "server/broker/broker.h"

namespace warren::net {
class DiskMonitor;
class TlsContexts;
class Server;
}
namespace warren::storage {
class Store;
}

namespace warren::http {

namespace internal {
class Api;
}
class HttpServer;

// Request bodies: publish and definitions import (RabbitMQ's management.http_max_body_size
// default), and every other route.
inline constexpr size_t kMaxBody = 20'000'000;
inline constexpr size_t kMaxObjectBody = size_t{1} << 20;

struct ManagementOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 15672;  // 0: pick a free port (tests)
  uint16_t amqp_port = 5672;  // reported in /api/overview's listeners
  uint16_t amqps_port = 0;  // 0: no AMQPS listener
  // HTTPS beside HTTP on bind_address:ssl_port when `tls` is set (outlives the server); 0: any
  // free port (tests), written back by Start.
  uint16_t ssl_port = 0;
  net::TlsContexts* tls = nullptr;
  std::string node_name = "warren@localhost";
  std::string cluster_name = "warren@localhost";
  // Non-empty: `Authorization: Bearer <admin_token>` is accepted as an administrator with access
  // to every vhost (warrenctl on the server's machine reads it from DATA_DIR/.warrenctl-token).
  std::string admin_token;
  // Host header names accepted besides IP literals, localhost and this machine's hostname
  // (--management-allowed-hosts).
  std::vector<std::string> allowed_hosts;
  // The data directory's free space for /api/nodes (disk_free, disk_free_limit); may be null.
  // Owned by the broker thread, outlives the server.
  const net::DiskMonitor* disk_monitor = nullptr;
  // The store `POST /api/backup` checkpoints (on an HTTP thread); may be null (no backups).
  storage::Store* store = nullptr;
};

class ManagementServer {
 public:
  // `io` is run by the broker thread, which owns `broker` and `server`.
  ManagementServer(asio::io_context& io, broker::Broker& broker, net::Server& server, ManagementOptions options);
  ~ManagementServer();
  ManagementServer(const ManagementServer&) = delete;
  ManagementServer& operator=(const ManagementServer&) = delete;

  // Binds and starts serving on the HTTP threads. Returns an error message on failure.
  std::string Start();
  // Stops listening and joins the HTTP threads; requests waiting for the broker get 503. May be
  // called from the broker thread (it does not wait for the broker).
  void Stop();
  uint16_t port() const { return bound_port_; }
  uint16_t ssl_port() const { return ssl_port_; }

 private:
  std::unique_ptr<internal::Api> api_;
  std::unique_ptr<HttpServer> http_;
  std::string bind_address_;
  uint16_t bound_port_ = 0;
  uint16_t ssl_port_ = 0;
  net::TlsContexts* tls_ = nullptr;
  std::shared_ptr<std::atomic<bool>> stopping_;
};

}  // namespace warren::http
