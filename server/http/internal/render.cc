#include <tuple>

#include <fmt/format.h>

#include "server/amqp/protocol.h"
#include "server/broker/delayed.h"
#include "server/broker/field_table_json.h"
#include "server/broker/queue_arguments.h"
#include "server/http/internal/api.h"
#include "server/http/internal/codec.h"
#include "server/net/channel.h"
#include "server/net/connection.h"

namespace warren::http::internal {

namespace {

// "1.2.3.4:5 -> 6.7.8.9:10" -> {"1.2.3.4", 5}
std::pair<std::string, int> SplitHostPort(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return {std::string(s), 0};
  return {std::string(s.substr(0, colon)), std::atoi(std::string(s.substr(colon + 1)).c_str())};
}

}  // namespace

std::string PropertiesKey(std::string_view key, const amqp::FieldTable& args) {
  std::string quoted;
  for (char c : key) {
    if (c == '%') {
      quoted += "%25";
    } else if (c == '~') {
      quoted += "%7E";
    } else {
      quoted.push_back(c);
    }
  }
  if (args.empty()) return quoted.empty() ? "~" : quoted;
  std::string encoded;
  amqp::ByteWriter w(encoded);
  amqp::EncodeFieldTable(args, w);
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : encoded) h = (h ^ c) * 1099511628211ull;
  std::string raw(reinterpret_cast<const char*>(&h), sizeof h);
  std::string b64 = EncodeBase64(raw);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return quoted + "~" + b64;
}

PeerInfo Peer(const net::Connection& c) {
  PeerInfo p;
  p.name = c.peer();
  const auto arrow = p.name.find(" -> ");
  if (arrow != std::string::npos) {
    std::tie(p.peer_host, p.peer_port) = SplitHostPort(std::string_view(p.name).substr(0, arrow));
    std::tie(p.host, p.port) = SplitHostPort(std::string_view(p.name).substr(arrow + 4));
  } else {
    p.peer_host = p.name;
  }
  return p;
}

json Api::QueueJson(const broker::Vhost& vhost, const broker::Queue& q) const {
  const auto& o = q.options();
  json out{{"name", q.name()},
           {"vhost", vhost.name()},
           {"durable", o.durable},
           {"auto_delete", o.auto_delete},
           {"exclusive", o.exclusive},
           {"arguments", broker::FieldTableToJson(o.arguments)},
           {"messages", q.ready_count() + q.unacked_count()},
           {"messages_details", Details(q.stats().ready_rate() + q.stats().unacked_rate())},
           {"messages_ready", q.ready_count()},
           {"messages_ready_details", Details(q.stats().ready_rate())},
           {"messages_unacknowledged", q.unacked_count()},
           {"messages_unacknowledged_details", Details(q.stats().unacked_rate())},
           {"messages_paged_out", q.paged_count()},
           {"consumers", q.consumer_count()},
           {"message_stats", MessageStatsJson(q.stats(), /*queue=*/true)},
           {"state", "running"},
           {"type", std::string(broker::QueueTypeName(q.type()))},
           {"node", options_.node_name},
           {"exclusive_consumer_tag", nullptr}};
  // RabbitMQ's names: null without a policy, and the merged definition ({} without any).
  const broker::Policy* policy = vhost.policies(broker::PolicyKind::kPolicy).Find(q.policy());
  const broker::Policy* operator_policy = vhost.policies(broker::PolicyKind::kOperatorPolicy).Find(q.operator_policy());
  out["policy"] = policy != nullptr ? json(policy->name) : json(nullptr);
  out["operator_policy"] = operator_policy != nullptr ? json(operator_policy->name) : json(nullptr);
  out["effective_policy_definition"] =
      broker::FieldTableToJson(broker::EffectivePolicyDefinition(policy, operator_policy));
  if (q.type() == broker::QueueType::kQuorum) {
    // A one-node quorum queue: this node leads and is its only member, as RabbitMQ shows it.
    out["leader"] = options_.node_name;
    out["members"] = json::array({options_.node_name});
    out["online"] = json::array({options_.node_name});
  }
  return out;
}

json Api::ExchangeJson(const broker::Vhost& vhost, const broker::Exchange& e) const {
  const auto& o = e.options();
  json out{{"name", e.name()},
           {"vhost", vhost.name()},
           {"type", std::string(e.type_name())},
           {"durable", o.durable},
           {"auto_delete", o.auto_delete},
           {"internal", o.internal},
           {"arguments", broker::FieldTableToJson(o.arguments)},
           {"user_who_performed_action", "rmq-internal"}};
  if (!e.policy().empty()) out["policy"] = e.policy();  // RabbitMQ leaves the field out without one
  // The plugin's exchange info item.
  if (const broker::DelayedSchedule* d = e.delayed()) out["messages_delayed"] = d->pending();
  return out;
}

json Api::BindingJson(const broker::Vhost& vhost, std::string_view source, std::string_view destination,
                 bool to_queue, std::string_view key, const amqp::FieldTable& args) const {
  return json{{"source", source},
              {"vhost", vhost.name()},
              {"destination", destination},
              {"destination_type", to_queue ? "queue" : "exchange"},
              {"routing_key", key},
              {"arguments", broker::FieldTableToJson(args)},
              {"properties_key", PropertiesKey(key, args)}};
}

void Api::AppendBindings(const broker::Vhost& vhost, json& out) const {
  for (const auto& [name, q] : vhost.queues()) {
    out.push_back(BindingJson(vhost, "", name, true, name, {}));
  }
  for (const auto& [name, e] : vhost.exchanges()) {
    if (name.empty()) continue;
    for (const broker::Binding& b : e->bindings()) {
      const bool to_queue = b.destination.queue != nullptr;
      const std::string& dest = to_queue ? b.destination.queue->name() : b.destination.exchange->name();
      out.push_back(BindingJson(vhost, name, dest, to_queue, b.key, b.arguments));
    }
  }
}

// RabbitMQ's null for what a plain connection (or one without a client certificate) lacks;
// protocol names in its spelling ("tlsv1.3").
static json TlsField(const net::Connection& c, const std::string& value) {
  if (!c.is_tls() || value.empty()) return nullptr;
  if (value.starts_with("TLSv")) return "tlsv" + value.substr(4);
  return value;
}

json Api::ConnectionJson(const net::Connection& c) const {
  const PeerInfo p = Peer(c);
  size_t channels = 0;
  for (const auto& ch : c.channels()) channels += ch != nullptr ? 1 : 0;
  json out{{"name", p.name},
           {"node", options_.node_name},
           {"user", c.user_name()},
           {"vhost", std::string(c.vhost_name())},
           {"peer_host", p.peer_host},
           {"peer_port", p.peer_port},
           {"host", p.host},
           {"port", p.port},
           {"channels", channels},
           {"state", !c.is_open() ? "starting" : c.blocked() ? "blocked" : "running"},
           {"protocol", std::string(amqp::ProtocolName(c.protocol()))},
           {"type", "network"},
           {"auth_mechanism", c.auth_mechanism()},
           {"ssl", c.is_tls()},
           {"ssl_protocol", TlsField(c, c.tls_info().protocol)},
           {"ssl_cipher", TlsField(c, c.tls_info().cipher)},
           {"peer_cert_subject", TlsField(c, c.tls_info().subject)},
           {"peer_cert_issuer", TlsField(c, c.tls_info().issuer)},
           {"timeout", c.heartbeat()},
           {"frame_max", c.frame_max()},
           {"channel_max", c.channel_max()},
           {"client_properties", broker::FieldTableToJson(c.client_properties())}};
  // As RabbitMQ: absent, not null, without a connection_name.
  if (const std::string* name = c.user_provided_name()) out["user_provided_name"] = *name;
  return out;
}

json Api::ChannelJson(const net::Connection& c, const net::Channel& ch) const {
  const PeerInfo p = Peer(c);
  return json{{"name", fmt::format("{} ({})", p.name, ch.id())},
              {"node", options_.node_name},
              {"number", ch.id()},
              {"user", c.user_name()},
              {"vhost", std::string(c.vhost_name())},
              {"connection_details", {{"name", p.name}, {"peer_host", p.peer_host}, {"peer_port", p.peer_port}}},
              {"consumer_count", ch.consumers().size()},
              {"messages_unacknowledged", ch.unacked_count()},
              {"prefetch_count", ch.prefetch_count()},
              {"global_prefetch_count", ch.global_prefetch_count()},
              {"confirm", ch.confirm_mode()},
              {"transactional", ch.tx_mode()},
              {"state", ch.closing() ? "closing" : "running"}};
}

json Api::VhostJson(const broker::Vhost& v) const {
  size_t ready = 0, unacked = 0;
  for (const auto& [name, q] : v.queues()) {
    ready += q->ready_count();
    unacked += q->unacked_count();
  }
  return json{{"name", v.name()},
              {"description", ""},
              {"tags", json::array()},
              {"metadata", {{"description", ""}, {"tags", json::array()}}},
              {"default_queue_type", "classic"},
              {"tracing", false},
              {"messages", ready + unacked},
              {"messages_ready", ready},
              {"messages_unacknowledged", unacked},
              {"cluster_state", {{options_.node_name, "running"}}}};
}

json Details(double rate) { return json{{"rate", rate}}; }

json MessageStatsJson(const broker::MessageStats& stats, bool queue) {
  json out = json::object();
  auto put = [&out](const char* name, uint64_t count, double rate) {
    out[name] = count;
    out[fmt::format("{}_details", name)] = Details(rate);
  };
  const size_t n = queue ? broker::kQueueMessageStatCount : broker::kMessageStatCount;
  for (size_t i = 0; i < n; ++i) {
    const auto stat = static_cast<broker::MessageStat>(i);
    put(broker::MessageStatName(stat), stats.count(stat), stats.rate(stat));
  }
  put("deliver_get", stats.deliver_get(), stats.deliver_get_rate());
  return out;
}

}  // namespace warren::http::internal
