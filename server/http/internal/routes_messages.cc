#include <algorithm>
#include <type_traits>

#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/amqp/properties.h"
#include "server/amqp/utf8.h"
#include "server/broker/field_table_json.h"
#include "server/broker/limits.h"
#include "server/broker/persister.h"
#include "server/broker/publish.h"
#include "server/http/internal/api.h"
#include "server/http/internal/codec.h"
#include "server/net/server.h"

// Publishing to an exchange, getting from a queue, and the aliveness test.

namespace warren::http::internal {

namespace {

// One /get reply takes at most this many messages, and stops taking more once their payloads
// reach kMaxGetBytes (so a reply holds at most that plus one message): it is built on the broker
// thread and held in memory whole, and every message in it is paged in from the store.
constexpr int64_t kMaxGetCount = 10'000;
constexpr size_t kMaxGetBytes = size_t{16} << 20;

// Builds a message as a publish over AMQP would carry it.
broker::MessageRef BuildMessage(std::string_view exchange, std::string_view key, const amqp::BasicProperties& props,
                                std::string_view body, broker::MemoryAccount& memory) {
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(props, w);
  broker::MessageRef msg = broker::Message::Create(exchange, key, raw, body.size(), &memory);
  msg->FillBody(body);
  return msg;
}

amqp::BasicProperties PropertiesFromJson(const json& j) {
  amqp::BasicProperties p;
  if (j.is_null() || (j.is_array() && j.empty())) return p;
  if (!j.is_object()) BadRequest("properties must be an object");
  auto str = [&](const char* key, std::optional<std::string>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_string()) BadRequest(fmt::format("property {} must be a string", key));
    if (it->get_ref<const std::string&>().size() > 255) BadRequest(fmt::format("property {} is too long", key));
    out = it->get<std::string>();
  };
  auto octet = [&](const char* key, std::optional<uint8_t>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 255) {
      BadRequest(fmt::format("property {} must be an integer 0..255", key));
    }
    out = static_cast<uint8_t>(it->get<int64_t>());
  };
  str("content_type", p.content_type);
  str("content_encoding", p.content_encoding);
  if (auto it = j.find("headers"); it != j.end() && !it->is_null()) p.headers = JsonToTable(*it, "headers");
  octet("delivery_mode", p.delivery_mode);
  octet("priority", p.priority);
  str("correlation_id", p.correlation_id);
  str("reply_to", p.reply_to);
  str("expiration", p.expiration);
  str("message_id", p.message_id);
  if (auto it = j.find("timestamp"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) BadRequest("property timestamp must be an integer");
    p.timestamp = it->get<uint64_t>();
  }
  str("type", p.type);
  str("user_id", p.user_id);
  str("app_id", p.app_id);
  str("cluster_id", p.cluster_id);
  return p;
}

json PropertiesToJson(std::string_view raw) {
  json out = json::object();
  amqp::BasicProperties p;
  if (!amqp::DecodeProperties(raw, &p)) return out;
  amqp::ForEachProperty(p, [&out](const char* key, const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, amqp::FieldTable>) {
      out[key] = broker::FieldTableToJson(v);
    } else {
      out[key] = v;
    }
  });
  return out;
}

}  // namespace

void Api::AddMessageRoutes() {
  On("POST", "exchanges/*/*/publish", [this](Ctx& ctx) { return Publish(ctx); });
  On("POST", "queues/*/*/get", [this](Ctx& ctx) { return Get(ctx); });
  On("GET", "aliveness-test/*", [this](Ctx& ctx) { return Aliveness(ctx); });
}

Reply Api::Publish(Ctx& ctx) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string name = ExchangeName(ctx.args[1]);
  Permit(ctx, v, {.op = broker::Operation::kPublish, .name = name, .routing_key = std::nullopt});
  // An AMQP publisher is blocked during the disk alarm or store back-pressure; an HTTP request
  // must not hold the broker thread, so it is refused instead.
  if (server_.alarm()) {
    throw HttpError{503, "service_unavailable",
                    "publishing is blocked: free disk space is below --disk-free-limit (resource alarm)"};
  }
  broker::Persister* persister = broker_.persister();
  if (persister != nullptr && persister->congested()) {
    throw HttpError{503, "service_unavailable", "publishing is paused: the store is behind; retry later"};
  }
  const json body = ParseBody(ctx.req);
  const std::string key = StringField(body, "routing_key", std::nullopt);
  std::string payload = StringField(body, "payload", std::nullopt);
  const std::string encoding = StringField(body, "payload_encoding", "string");
  if (encoding == "base64") {
    auto decoded = DecodeBase64(payload);
    if (!decoded) BadRequest("payload is not valid base64");
    payload = std::move(*decoded);
  } else if (encoding != "string") {
    BadRequest(fmt::format("unsupported payload_encoding '{}'", encoding));
  }
  amqp::BasicProperties props = PropertiesFromJson(body.contains("properties") ? body["properties"] : json());
  if (auto ok = broker::CheckNameLength("routing_key", key); !ok) BrokerError(ok.error());
  Permit(ctx, v, {.op = broker::Operation::kPublish, .name = name, .routing_key = key});
  auto ex = broker::FindPublishExchange(v, name);
  if (!ex) BrokerError(ex.error());
  broker::MessageRef msg = BuildMessage(name, key, props, payload, broker_.memory());
  // RabbitMQ's API answers a refused publish 400 with the AMQP code and text in the reason.
  if (auto ok = broker::CheckPublishProperties(broker_, ctx.user.name, msg->raw_properties()); !ok) {
    BadRequest(fmt::format("{} {} - {}", ok.error().code, amqp::reply::Name(ok.error().code), ok.error().text));
  }
  const broker::PublishOutcome out = broker::Publish(broker_, v, **ex, msg, /*mandatory=*/false, route_scratch_);
  return JsonReply(json{{"routed", out.routed}});
}

Reply Api::Get(Ctx& ctx) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string& name = ctx.args[1];
  Permit(ctx, v, {.op = broker::Operation::kGet, .name = name});
  const json body = ParseBody(ctx.req);
  const std::optional<int64_t> count_field = IntField(body, "count");
  if (!count_field) BadRequest("count not found");
  // RabbitMQ gets `count` messages whatever it is, and so pages a whole backlog into one reply.
  const int64_t count = std::min<int64_t>(*count_field, kMaxGetCount);
  const std::string ackmode = StringField(body, "ackmode", std::nullopt);
  const std::string encoding = StringField(body, "encoding", "auto");
  if (encoding != "auto" && encoding != "base64") BadRequest(fmt::format("unsupported encoding '{}'", encoding));
  const std::optional<int64_t> truncate = IntField(body, "truncate");
  enum class After { kRequeue, kAck, kReject };
  After after;
  if (ackmode == "ack_requeue_true" || ackmode == "reject_requeue_true") {
    after = After::kRequeue;
  } else if (ackmode == "ack_requeue_false") {
    after = After::kAck;
  } else if (ackmode == "reject_requeue_false") {
    after = After::kReject;
  } else {
    BadRequest(fmt::format("unknown ackmode '{}'", ackmode));
  }
  ExistingQueue(v, name);
  auto found = v.FindQueue(name, 0);
  if (!found) BrokerError(found.error());
  std::shared_ptr<broker::Queue> queue = *found;
  if (queue->stream() != nullptr) {
    // RabbitMQ's words, its AMQP reply code first.
    BadRequest(fmt::format("540 basic.get not supported by stream queues queue '{}' in vhost '{}'", name, v.name()));
  }
  std::vector<broker::QueuedMessage> taken;
  json out = json::array();
  size_t reply_bytes = 0;
  for (int64_t i = 0; i < count && reply_bytes < kMaxGetBytes; ++i) {
    auto m = queue->Get(false);
    if (!m) break;
    broker_.stats().AddDelivery(/*by_get=*/true, /*no_ack=*/false, m->redelivered);
    const broker::Message& msg = *m->msg;
    std::string_view payload = msg.body();
    if (truncate && static_cast<uint64_t>(*truncate) < payload.size()) payload = payload.substr(0, *truncate);
    const bool as_string = encoding == "auto" && amqp::IsValidUtf8(payload);
    reply_bytes += payload.size();
    out.push_back(json{{"payload_bytes", msg.body_size()},
                       {"redelivered", m->redelivered},
                       {"exchange", std::string(msg.exchange())},
                       {"routing_key", std::string(msg.routing_key())},
                       {"message_count", queue->ready_count()},
                       {"properties", PropertiesToJson(msg.raw_properties())},
                       {"payload", as_string ? std::string(payload) : EncodeBase64(payload)},
                       {"payload_encoding", as_string ? "string" : "base64"}});
    taken.push_back(std::move(*m));
  }
  // Settle: requeue newest first, so each message returns to its place in O(1).
  for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
    switch (after) {
      case After::kRequeue:
        queue->Requeue(std::move(*it));
        break;
      case After::kAck:
        queue->Ack(*it);
        broker_.stats().Add(broker::MessageStat::kAck);
        break;
      case After::kReject:
        queue->Reject(*it);
        break;
    }
  }
  if (after == After::kRequeue) queue->Dispatch();
  return JsonReply(out);
}

Reply Api::Aliveness(Ctx& ctx) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string name = "aliveness-test";
  Permit(ctx, v, {.op = broker::Operation::kDeclareQueue, .name = name});
  auto declared = v.DeclareQueue(name, false, broker::QueueOptions{}, 0);
  if (!declared) BrokerError(declared.error());
  std::shared_ptr<broker::Queue> queue = declared->queue;
  queue->Enqueue(BuildMessage("", name, {}, "test_message", broker_.memory()));
  bool ok = false;
  // Consumers may hold the queue's messages; check what we get back is ours.
  for (int i = 0; i < 16; ++i) {
    auto m = queue->Get(true);
    if (!m) break;
    if (m->msg->body() == "test_message") {
      ok = true;
      break;
    }
  }
  if (!ok) return JsonReply(json{{"status", "failed"}, {"reason", "the test message did not come back"}}, 503);
  return JsonReply(json{{"status", "ok"}});
}

}  // namespace warren::http::internal
