#include "server/http/prometheus.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <future>
#include <optional>

#include <fmt/format.h>
#include <httplib.h>

#include "server/broker/persister.h"
#include "server/http/handoff.h"
#include "server/http/listener.h"
#include "server/net/channel.h"
#include "server/net/connection.h"
#include "server/net/memory_monitor.h"
#include "server/net/server.h"
#include "storage/store.h"

namespace warren::http {

namespace {

constexpr auto kBrokerTimeout = std::chrono::seconds(5);
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

// A label value: backslash, double quote and newline escaped.
std::string Label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Sample(std::string& out, std::string_view name, uint64_t value) {
  fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
}

// `buckets[i]` counts durations < 2^i * 64 us, the last one longer (storage::Store::Stats).
void Histogram(std::string& out, std::string_view name, std::string_view help,
               const std::array<uint64_t, 16>& buckets, uint64_t micros_total, uint64_t count) {
  Header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i + 1 < buckets.size(); ++i) {
    cumulative += buckets[i];
    const double le = static_cast<double>(uint64_t{64} << i) / 1e6;
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, le, cumulative);
  }
  cumulative += buckets.back();
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  fmt::format_to(std::back_inserter(out), "{}_sum {}\n", name, static_cast<double>(micros_total) / 1e6);
  fmt::format_to(std::back_inserter(out), "{}_count {}\n", name, count);
}


}  // namespace

std::string RenderMetrics(broker::Broker& broker, const net::Server* server, const storage::Store* store) {
  std::string out;
  out.reserve(4096);

  // Per queue.
  const std::vector<std::string> vhosts = broker.ListVhosts();
  std::string ready, unacked, consumers;
  uint64_t queue_count = 0;
  for (const std::string& name : vhosts) {
    broker::Vhost* v = broker.FindVhost(name);
    if (v == nullptr) continue;
    const std::string vl = Label(name);
    for (const auto& [qname, q] : v->queues()) {
      ++queue_count;
      const std::string labels = fmt::format("{{vhost=\"{}\",queue=\"{}\"}}", vl, Label(qname));
      fmt::format_to(std::back_inserter(ready), "warren_queue_messages_ready{} {}\n", labels, q->ready_count());
      fmt::format_to(std::back_inserter(unacked), "warren_queue_messages_unacked{} {}\n", labels, q->unacked_count());
      fmt::format_to(std::back_inserter(consumers), "warren_queue_consumers{} {}\n", labels, q->consumer_count());
    }
  }
  Header(out, "warren_queue_messages_ready", "gauge", "Messages ready to be delivered to consumers");
  out += ready;
  Header(out, "warren_queue_messages_unacked", "gauge", "Messages delivered to consumers but not yet acknowledged");
  out += unacked;
  Header(out, "warren_queue_consumers", "gauge", "Consumers on a queue");
  out += consumers;
  Header(out, "warren_queues", "gauge", "Queues");
  Sample(out, "warren_queues", queue_count);
  Header(out, "warren_vhosts", "gauge", "Virtual hosts");
  Sample(out, "warren_vhosts", vhosts.size());

  // Connections, channels, consumers.
  uint64_t connections = 0, channels = 0, channel_consumers = 0;
  if (server != nullptr) {
    for (const auto& [id, c] : server->connections()) {
      if (c == nullptr) continue;
      ++connections;
      for (const auto& ch : c->channels()) {
        if (ch == nullptr) continue;
        ++channels;
        channel_consumers += ch->consumers().size();
      }
    }
  }
  Header(out, "warren_connections", "gauge", "Open AMQP connections");
  Sample(out, "warren_connections", connections);
  Header(out, "warren_channels", "gauge", "Open AMQP channels");
  Sample(out, "warren_channels", channels);
  Header(out, "warren_consumers", "gauge", "AMQP consumers");
  Sample(out, "warren_consumers", channel_consumers);

  // Message counters.
  const broker::MessageStats& stats = broker.stats();
  Header(out, "warren_published_total", "counter", "Messages published by clients");
  Sample(out, "warren_published_total", stats.count(broker::MessageStat::kPublish));
  Header(out, "warren_delivered_total", "counter", "Messages delivered to clients (basic.deliver and basic.get)");
  Sample(out, "warren_delivered_total", stats.deliver_get());
  Header(out, "warren_acked_total", "counter", "Deliveries acknowledged by clients");
  Sample(out, "warren_acked_total", stats.count(broker::MessageStat::kAck));

  // The store's writes and fsyncs.
  if (store != nullptr) {
    const storage::Store::Stats stats = store->stats();
    Histogram(out, "warren_store_fsync_seconds", "Duration of the store's WAL fsyncs", stats.sync_micros_histogram,
              stats.sync_micros_total, stats.syncs);
    Histogram(out, "warren_store_write_seconds",
              "Duration of the store's group writes (merge, RocksDB write and fsync), one per group",
              stats.write_micros_histogram, stats.write_micros_total, stats.groups);
    Header(out, "warren_store_batches_total", "counter", "Write batches written to the store");
    Sample(out, "warren_store_batches_total", stats.batches);
  }
  const broker::Persister* persister = broker.persister();
  Header(out, "warren_store_write_failing", "gauge",
         "1 while the store's last write failed (disk full, I/O error): nothing persistent is confirmed");
  Sample(out, "warren_store_write_failing", persister != nullptr && persister->failing() ? 1 : 0);
  Header(out, "warren_store_write_failures_total", "counter", "Write batches the store failed to write");
  Sample(out, "warren_store_write_failures_total", persister != nullptr ? persister->stats().batches_failed : 0);

  Header(out, "warren_process_resident_memory_bytes", "gauge", "Resident memory of the server process");
  Sample(out, "warren_process_resident_memory_bytes", net::ResidentMemoryBytes());
  // The memory high watermark and what it is compared with (rabbitmq_prometheus' names).
  const broker::MemoryAccount& memory = broker.memory();
  Header(out, "warren_resident_memory_limit_bytes", "gauge", "Memory high watermark");
  Sample(out, "warren_resident_memory_limit_bytes", memory.limit());
  Header(out, "warren_memory_used_bytes", "gauge", "Bytes the broker accounts, by use (compared with the watermark)");
  for (auto use : {broker::MemoryUse::kMessages, broker::MemoryUse::kAssembly, broker::MemoryUse::kConnectionBuffers}) {
    fmt::format_to(std::back_inserter(out), "warren_memory_used_bytes{{use=\"{}\"}} {}\n", broker::MemoryUseName(use),
                   memory.used(use));
  }
  if (server != nullptr) {
    Header(out, "warren_alarms_memory_used_watermark", "gauge", "1 while the memory alarm is on");
    Sample(out, "warren_alarms_memory_used_watermark", server->alarm(net::ResourceAlarm::kMemory) ? 1 : 0);
    Header(out, "warren_alarms_free_disk_space_watermark", "gauge",
           "1 while the free disk space alarm is on (RabbitMQ's rabbitmq_alarms_free_disk_space_watermark)");
    Sample(out, "warren_alarms_free_disk_space_watermark", server->alarm(net::ResourceAlarm::kDisk) ? 1 : 0);
  }
  return out;
}

PrometheusServer::PrometheusServer(asio::io_context& io, broker::Broker& broker, const net::Server* server,
                                   const storage::Store* store, PrometheusOptions options)
    : http_(std::make_unique<HttpServer>()),
      bind_address_(options.bind_address),
      bound_port_(options.port),
      stopping_(std::make_shared<std::atomic<bool>>(false)) {
  // A scrape has no body: nothing else is read, whatever a request announces.
  http_->set_payload_max_length(0);
  http_->set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET" || req.method == "HEAD") return httplib::Server::HandlerResponse::Unhandled;
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("Method Not Allowed: the metrics endpoint only answers GET\n", "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  http_->Get("/metrics", [this, &io, &broker, server, store](const httplib::Request&, httplib::Response& res) {
    try {
      const std::optional<std::string> text = CallOnBroker<std::string>(
          io, [&broker, server, store] { return RenderMetrics(broker, server, store); }, kBrokerTimeout, *stopping_);
      if (!text) {
        res.status = 503;
        res.set_content("the broker did not answer in time\n", "text/plain");
        return;
      }
      res.status = 200;
      res.set_content(*text, kContentType);
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(e.what(), "text/plain");
    }
  });
}

PrometheusServer::~PrometheusServer() { Stop(); }

std::string PrometheusServer::Start() { return http_->Start("prometheus", bind_address_, &bound_port_); }

void PrometheusServer::Stop() {
  stopping_->store(true);
  http_->Stop();
}

}  // namespace warren::http
