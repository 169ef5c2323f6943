#include "server/broker/dead_letter.h"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "server/amqp/properties.h"
#include "server/broker/delayed.h"
#include "server/broker/vhost.h"

namespace warren::broker {

namespace {

using amqp::FieldArray;
using amqp::FieldTable;
using amqp::FieldValue;

// Replaces the value of `key` in `table`, or appends it.
void SetEntry(FieldTable& table, std::string_view key, FieldValue value) {
  for (auto& [k, v] : table.entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  table.entries.emplace_back(std::string(key), std::move(value));
}

void EraseEntry(FieldTable& table, std::string_view key) {
  std::erase_if(table.entries, [&](const auto& e) { return e.first == key; });
}

void SortByKey(FieldTable& table) {
  std::stable_sort(table.entries.begin(), table.entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

const std::string* StringEntry(const FieldTable& table, std::string_view key) {
  const FieldValue* v = table.Find(key);
  return v != nullptr ? v->AsString() : nullptr;
}

// Adds this death to the x-death array (see the header comment).
void UpdateXDeath(FieldTable& headers, FieldTable info, std::string_view queue, std::string_view reason,
                  std::string_view exchange) {
  const FieldValue* existing = headers.Find("x-death");
  const FieldArray* deaths = existing != nullptr ? existing->AsArray() : nullptr;
  auto fresh = [&] {
    FieldTable entry;
    entry.entries.reserve(info.entries.size() + 1);
    entry.entries.emplace_back("count", FieldValue(int64_t{1}));
    for (auto& e : info.entries) entry.entries.push_back(std::move(e));
    return FieldValue::Table(std::move(entry));
  };
  if (deaths == nullptr) {
    SetEntry(headers, "x-death", FieldValue::Array(FieldArray{fresh()}));
    if (headers.Find("x-first-death-reason") == nullptr) {
      SetEntry(headers, "x-first-death-exchange", FieldValue(std::string(exchange)));
      SetEntry(headers, "x-first-death-queue", FieldValue(std::string(queue)));
      SetEntry(headers, "x-first-death-reason", FieldValue(std::string(reason)));
    }
    return;
  }
  FieldArray updated;
  updated.reserve(deaths->size() + 1);
  updated.emplace_back();  // the slot for this death
  bool matched = false;
  for (const FieldValue& d : *deaths) {
    const FieldTable* t = d.AsTable();
    const std::string* q = t != nullptr ? StringEntry(*t, "queue") : nullptr;
    const std::string* r = t != nullptr ? StringEntry(*t, "reason") : nullptr;
    if (!matched && q != nullptr && r != nullptr && *q == queue && *r == reason) {
      FieldTable entry = *t;
      const FieldValue* count = entry.Find("count");
      const std::optional<int64_t> n = count != nullptr ? count->AsInt() : std::nullopt;
      SetEntry(entry, "count", FieldValue(int64_t{n.value_or(0) + 1}));
      SortByKey(entry);
      updated.front() = FieldValue::Table(std::move(entry));
      matched = true;
      continue;
    }
    updated.push_back(d);
  }
  if (!matched) updated.front() = fresh();
  SetEntry(headers, "x-death", FieldValue::Array(std::move(updated)));
}

}  // namespace

std::string_view DeathReasonName(DeathReason reason) {
  switch (reason) {
    case DeathReason::kRejected: return "rejected";
    case DeathReason::kExpired: return "expired";
    case DeathReason::kMaxLen: return "maxlen";
    case DeathReason::kDeliveryLimit: return "delivery_limit";
  }
  return "unknown";
}

MessageRef MakeDeadLetter(const Message& original, DeathReason reason, std::string_view queue, std::string_view dlx,
                          const std::string* routing_key, int64_t unix_seconds) {
  amqp::BasicProperties props;
  if (!amqp::DecodeProperties(original.raw_properties(), &props)) return {};
  FieldTable headers = props.headers ? std::move(*props.headers) : FieldTable{};

  // The routing keys the message was published with: its routing key and any CC keys.
  FieldArray routing_keys{FieldValue(std::string(original.routing_key()))};
  if (const FieldValue* cc = headers.Find("CC"); cc != nullptr && cc->AsArray() != nullptr) {
    for (const FieldValue& key : *cc->AsArray()) {
      if (const std::string* s = key.AsString()) routing_keys.emplace_back(*s);
    }
  }
  const std::string_view reason_name = DeathReasonName(reason);
  FieldTable info;
  info.entries.emplace_back("reason", FieldValue(std::string(reason_name)));
  info.entries.emplace_back("queue", FieldValue(std::string(queue)));
  info.entries.emplace_back("time", FieldValue(amqp::Timestamp{static_cast<uint64_t>(std::max<int64_t>(unix_seconds, 0))}));
  info.entries.emplace_back("exchange", FieldValue(std::string(original.exchange())));
  info.entries.emplace_back("routing-keys", FieldValue::Array(std::move(routing_keys)));
  if (props.expiration) info.entries.emplace_back("original-expiration", FieldValue(*props.expiration));
  UpdateXDeath(headers, std::move(info), queue, reason_name, original.exchange());
  if (routing_key != nullptr) EraseEntry(headers, "CC");
  SortByKey(headers);

  props.headers = std::move(headers);
  props.expiration.reset();
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(props, w);
  MessageRef dead = Message::Create(dlx, routing_key != nullptr ? std::string_view(*routing_key) : original.routing_key(),
                                    raw, original.body_size(), original.account());
  dead->FillBody(original.body());
  return dead;
}

bool IsDeadLetterCycle(const FieldTable& headers, std::string_view queue) {
  const FieldValue* value = headers.Find("x-death");
  const FieldArray* deaths = value != nullptr ? value->AsArray() : nullptr;
  if (deaths == nullptr) return false;
  size_t last = 0;
  for (; last < deaths->size(); ++last) {
    const FieldTable* t = (*deaths)[last].AsTable();
    const std::string* q = t != nullptr ? StringEntry(*t, "queue") : nullptr;
    if (q != nullptr && *q == queue) break;
  }
  if (last == deaths->size()) return false;
  // A cycle only counts when it is fully automatic: no rejection (and nothing a client put there).
  for (size_t i = 0; i <= last; ++i) {
    const FieldTable* t = (*deaths)[i].AsTable();
    if (t == nullptr) return false;
    const std::string* r = StringEntry(*t, "reason");
    if (r != nullptr && *r == "rejected") return false;
  }
  return true;
}

void DeadLetterRouter::Publish(const Message& original, DeathReason reason, std::string_view queue,
                               const std::string& dlx, const std::string* routing_key) {
  MessageRef dead = MakeDeadLetter(original, reason, queue, dlx, routing_key, vhost_.timers().UnixSeconds());
  if (!dead) return;
  pending_.push_back(Pending{std::move(dead), reason});
  if (!flush_posted_) {
    flush_posted_ = true;
    vhost_.timers().Post([this] { Flush(); });
  }
}

void DeadLetterRouter::Flush() {
  flush_posted_ = false;
  std::vector<Pending> batch;
  batch.swap(pending_);
  std::vector<Queue*> targets;
  for (Pending& p : batch) {
    auto exchange = vhost_.FindExchange(p.message->exchange());
    if (!exchange) continue;  // no dead-letter exchange (any more): dropped, as RabbitMQ
    vhost_.Route(**exchange, *p.message, targets);
    for (const Vhost::Held& held : vhost_.route_held()) held.schedule->Add(*p.message, held.delay);
    if (targets.empty()) continue;
    if (p.reason != DeathReason::kRejected) {
      std::optional<FieldTable> headers;
      if (amqp::PeekHeaders(p.message->raw_properties(), &headers) && headers) {
        std::erase_if(targets, [&](Queue* q) {
          if (!IsDeadLetterCycle(*headers, q->name())) return false;
          spdlog::debug("dead-lettering cycle: message dropped instead of reaching queue '{}' in vhost '{}' again",
                        q->name(), vhost_.name());
          return true;
        });
      }
    }
    for (Queue* q : targets) {
      if (q->deleted() || q->RejectsPublish(p.message)) continue;
      q->Enqueue(p.message);
    }
  }
}

}  // namespace warren::broker
