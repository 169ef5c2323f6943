// Prometheus text exposition (format 0.0.4) at GET /metrics on its own port
// (`--prometheus-port`, default 15692 as rabbitmq_prometheus; no authentication), with
// RabbitMQ-like metric names prefixed warren_:
//
//   warren_queue_messages_ready{vhost,queue}, warren_queue_messages_unacked{vhost,queue},
//   warren_queue_consumers{vhost,queue}, warren_queues, warren_vhosts, warren_connections,
//   warren_channels, warren_consumers (gauges); warren_published_total, warren_delivered_total,
//   warren_acked_total (counters, Broker::stats()); warren_store_fsync_seconds and
//   warren_store_write_seconds (histograms of the store's WAL fsyncs and group writes,
//   storage::Store::Stats); warren_store_batches_total;
//   warren_process_resident_memory_bytes (/proc/self/statm); the memory high watermark
//   warren_resident_memory_limit_bytes, what it is compared with, warren_memory_used_bytes{use}
//   (broker::MemoryAccount), and warren_alarms_memory_used_watermark /
//   warren_alarms_free_disk_space_watermark (1 while that alarm is on).
//
// Threads: as the management API (management.h), an HttpServer (listener.h, with its limits on
// slow and idle clients) serves on its own threads and every scrape is rendered on the broker
// thread (handoff.h; 503 when the broker has not started it within 5 s). Any method but GET or
// HEAD is 405 before a body is read; a body is never read.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <asio/io_context.hpp>

#include "server/broker/broker.h"

namespace warren::net {
class Server;
}

namespace warren::storage {
class Store;
}

namespace warren::http {

class HttpServer;

struct PrometheusOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 15692;  // 0 here: pick a free port (tests); main.cc treats --prometheus-port 0 as off
};

// The whole exposition. Broker thread only. `server` and `store` may be null.
std::string RenderMetrics(broker::Broker& broker, const net::Server* server, const storage::Store* store);

class PrometheusServer {
 public:
  PrometheusServer(asio::io_context& io, broker::Broker& broker, const net::Server* server,
                   const storage::Store* store, PrometheusOptions options);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // Binds and starts serving. Returns an error message on failure.
  std::string Start();
  // Stops listening and joins the HTTP threads. May be called from the broker thread.
  void Stop();
  uint16_t port() const { return bound_port_; }

 private:
  std::unique_ptr<HttpServer> http_;
  std::string bind_address_;
  uint16_t bound_port_ = 0;
  std::shared_ptr<std::atomic<bool>> stopping_;
};

}  // namespace warren::http
