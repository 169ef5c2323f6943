#include <fmt/format.h>

#include "server/broker/persister.h"
#include "server/http/internal/api.h"
#include "server/net/disk_monitor.h"
#include "server/net/channel.h"
#include "server/net/channel_consumer.h"
#include "server/net/connection.h"
#include "server/net/memory_monitor.h"
#include "server/net/server.h"

// The overview, connections, channels, consumers, the node and health checks.

namespace warren::http::internal {

namespace {

constexpr char kManagementVersion[] = "3.10.8";

}  // namespace

void Api::AddRuntimeRoutes() {
  On("GET", "overview", [this](Ctx& ctx) { return Overview(ctx); });
  On("GET", "whoami", [](Ctx& ctx) {
    return JsonReply(json{{"name", ctx.user.name}, {"tags", ctx.user.tags}});
  });

  // Connections, channels, consumers
  auto list_connections = [this](Ctx& ctx) {
    if (!ctx.args.empty()) VhostFor(ctx, ctx.args[0]);
    json out = json::array();
    for (const auto& [id, c] : server_.connections()) {
      if (!ConnectionVisible(ctx, *c)) continue;
      if (!ctx.args.empty() && c->vhost_name() != ctx.args[0]) continue;
      out.push_back(ConnectionJson(*c));
    }
    return JsonReply(out);
  };
  On("GET", "connections", list_connections);
  On("GET", "vhosts/*/connections", list_connections);
  On("GET", "connections/*", [this](Ctx& ctx) {
    for (const auto& [id, c] : server_.connections()) {
      if (c->peer() == ctx.args[0] && ConnectionVisible(ctx, *c)) return JsonReply(ConnectionJson(*c));
    }
    NotFound();
  });
  On("DELETE", "connections/*", [this](Ctx& ctx) {
    bool found = false;
    for (const auto& [id, c] : server_.connections()) {
      if (c->peer() == ctx.args[0] && ConnectionVisible(ctx, *c)) found = true;
    }
    if (!found) NotFound();
    if (!HasTag(ctx.user, "administrator")) {
      for (const auto& [id, c] : server_.connections()) {
        if (c->peer() == ctx.args[0] && c->user_name() != ctx.user.name) NotAuthorised("Not administrator user");
      }
    }
    const std::string reason = ctx.req.Param("X-Reason").value_or("Closed via management plugin");
    server_.CloseConnectionsIf([&](const net::Connection& c) { return c.peer() == ctx.args[0]; }, reason);
    return NoContent();
  });
  On("GET", "channels", [this](Ctx& ctx) {
    json out = json::array();
    for (const auto& [id, c] : server_.connections()) {
      if (!ConnectionVisible(ctx, *c)) continue;
      for (const auto& ch : c->channels()) {
        if (ch != nullptr) out.push_back(ChannelJson(*c, *ch));
      }
    }
    return JsonReply(out);
  });
  auto list_consumers = [this](Ctx& ctx) {
    if (!ctx.args.empty()) VhostFor(ctx, ctx.args[0]);
    json out = json::array();
    for (const auto& [id, c] : server_.connections()) {
      if (!Visible(ctx, c->vhost_name()) && !ConnectionVisible(ctx, *c)) continue;
      if (!ctx.args.empty() && c->vhost_name() != ctx.args[0]) continue;
      const PeerInfo p = Peer(*c);
      for (const auto& ch : c->channels()) {
        if (ch == nullptr) continue;
        for (const auto& [tag, consumer] : ch->consumers()) {
          out.push_back(json{
              {"consumer_tag", tag},
              {"queue", {{"name", consumer->queue()->name()}, {"vhost", std::string(c->vhost_name())}}},
              {"channel_details",
               {{"name", fmt::format("{} ({})", p.name, ch->id())},
                {"number", ch->id()},
                {"connection_name", p.name},
                {"peer_host", p.peer_host},
                {"peer_port", p.peer_port},
                {"user", c->user_name()},
                {"node", options_.node_name}}},
              {"ack_required", !consumer->no_ack()},
              {"prefetch_count", consumer->prefetch()},
              {"exclusive", false},
              {"arguments", json::object()},
              {"active", true},
              {"activity_status", "up"}});
        }
      }
    }
    return JsonReply(out);
  };
  On("GET", "consumers", list_consumers);
  On("GET", "consumers/*", list_consumers);

  // The one node. store_alarm / store_error (Warren's): the last store write failed, so nothing
  // persistent can be confirmed until a write succeeds again.
  auto node = [this] {
    const broker::MemoryAccount& memory = broker_.memory();
    const broker::Persister* persister = broker_.persister();
    const bool store_alarm = persister != nullptr && persister->failing();
    json n{{"name", options_.node_name},
           {"type", "disc"},
           {"running", true},
           {"disk_free_alarm", server_.alarm(net::ResourceAlarm::kDisk)},
           {"mem_alarm", server_.alarm(net::ResourceAlarm::kMemory)},
           // What the alarm compares with mem_limit: the accounted bytes (ARCHITECTURE.md).
           {"mem_used", memory.total()},
           {"mem_limit", memory.limit()},
           {"mem_resident", net::ResidentMemoryBytes()},
           {"store_alarm", store_alarm},
           {"store_error", store_alarm ? json(persister->failure()) : json(nullptr)},
           {"cluster_links", json::array()}};
    if (options_.disk_monitor != nullptr) {
      n["disk_free"] = options_.disk_monitor->free_bytes();
      n["disk_free_limit"] = options_.disk_monitor->free_limit();
    }
    return n;
  };
  On("GET", "nodes", [node](Ctx&) { return JsonReply(json::array({node()})); });
  On("GET", "nodes/*", [this, node](Ctx& ctx) {
    if (ctx.args[0] != options_.node_name) NotFound();
    return JsonReply(node());
  });
  On("GET", "extensions", [](Ctx&) { return JsonReply(json::array()); });

  // Health. As RabbitMQ 3.10: 503 with every alarm in effect, {"status":"ok"} otherwise. A failing
  // store write is an alarm too (resource "store", Warren's) and, as in RabbitMQ, where a vhost
  // whose message store fails is down, fails the virtual-hosts check.
  auto store_failing = [this] { return broker_.persister() != nullptr && broker_.persister()->failing(); };
  auto alarms = [this, store_failing](std::string_view reason) {
    json list = json::array();
    for (auto [alarm, resource] : {std::pair{net::ResourceAlarm::kMemory, "memory"}, {net::ResourceAlarm::kDisk, "disk"}}) {
      if (server_.alarm(alarm)) list.push_back(json{{"node", options_.node_name}, {"resource", resource}});
    }
    if (store_failing()) list.push_back(json{{"node", options_.node_name}, {"resource", "store"}});
    if (list.empty()) return JsonReply(json{{"status", "ok"}});
    return JsonReply(json{{"status", "failed"}, {"reason", reason}, {"alarms", std::move(list)}}, 503);
  };
  On("GET", "health/checks/alarms", [alarms](Ctx&) { return alarms("There are alarms in effect in the cluster"); });
  On("GET", "health/checks/local-alarms", [alarms](Ctx&) { return alarms("There are alarms in effect on the node"); });
  On("GET", "health/checks/virtual-hosts", [this, store_failing](Ctx&) {
    if (store_failing()) {
      return JsonReply(json{{"status", "failed"},
                            {"reason", "Some virtual hosts are down"},
                            {"virtual-hosts", broker_.ListVhosts()}},
                       503);
    }
    return JsonReply(json{{"status", "ok"}});
  });
}

json Api::Listeners() const {
  json listeners = json::array();
  auto add = [&](std::string_view protocol, uint16_t port) {
    listeners.push_back(json{{"node", options_.node_name}, {"protocol", protocol}, {"port", port}});
  };
  add("amqp", options_.amqp_port);
  if (options_.amqps_port != 0) add("amqp/ssl", options_.amqps_port);
  add("http", options_.port);
  if (options_.tls != nullptr) add("https", options_.ssl_port);
  return listeners;
}

Reply Api::Overview(Ctx& ctx) {
  size_t exchanges = 0, queues = 0, consumers = 0, ready = 0, unacked = 0;
  double ready_rate = 0, unacked_rate = 0;
  for (broker::Vhost* v : VhostsFor(ctx, nullptr)) {
    exchanges += v->exchanges().size();
    queues += v->queues().size();
    for (const auto& [name, q] : v->queues()) {
      consumers += q->consumer_count();
      ready += q->ready_count();
      unacked += q->unacked_count();
      ready_rate += q->stats().ready_rate();
      unacked_rate += q->stats().unacked_rate();
    }
  }
  size_t connections = 0, channels = 0;
  for (const auto& [id, c] : server_.connections()) {
    if (!ConnectionVisible(ctx, *c)) continue;
    ++connections;
    for (const auto& ch : c->channels()) channels += ch != nullptr ? 1 : 0;
  }
  const std::string product_version = WARREN_VERSION;
  return JsonReply(json{
      {"management_version", kManagementVersion},
      {"rabbitmq_version", kManagementVersion},
      {"product_name", "Warren"},
      {"product_version", product_version},
      {"erlang_version", "none"},
      {"cluster_name", options_.cluster_name},
      {"node", options_.node_name},
      {"rates_mode", "basic"},
      {"disable_stats", false},
      {"enable_queue_totals", true},
      {"exchange_types",
       json::array({json{{"name", "direct"}, {"description", "AMQP direct exchange"}, {"enabled", true}},
                    json{{"name", "fanout"}, {"description", "AMQP fanout exchange"}, {"enabled", true}},
                    json{{"name", "headers"}, {"description", "AMQP headers exchange"}, {"enabled", true}},
                    json{{"name", "topic"}, {"description", "AMQP topic exchange"}, {"enabled", true}}})},
      {"object_totals",
       {{"connections", connections},
        {"channels", channels},
        {"exchanges", exchanges},
        {"queues", queues},
        {"consumers", consumers}}},
      {"queue_totals",
       {{"messages", ready + unacked},
        {"messages_details", Details(ready_rate + unacked_rate)},
        {"messages_ready", ready},
        {"messages_ready_details", Details(ready_rate)},
        {"messages_unacknowledged", unacked},
        {"messages_unacknowledged_details", Details(unacked_rate)}}},
      {"message_stats", MessageStatsJson(broker_.stats(), /*queue=*/false)},
      {"listeners", Listeners()},
      {"contexts", json::array()}});
}

}  // namespace warren::http::internal
