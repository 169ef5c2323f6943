#include "server/broker/delayed.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include <spdlog/spdlog.h>

#include "server/amqp/properties.h"
#include "server/broker/exchange.h"
#include "server/broker/persister.h"
#include "server/broker/vhost.h"

namespace warren::broker {

std::optional<int64_t> DelayOf(std::string_view raw_properties) {
  std::optional<amqp::FieldTable> headers;
  if (!amqp::PeekHeaders(raw_properties, &headers) || !headers) return std::nullopt;
  const amqp::FieldValue* v = headers->Find("x-delay");
  if (v == nullptr) return std::nullopt;
  std::optional<int64_t> delay = v->AsInt();
  auto truncated = [](double d) -> std::optional<int64_t> {
    if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(kMaxDelayMillis) + 1) return std::nullopt;
    return static_cast<int64_t>(std::trunc(d));
  };
  if (const double* d = std::get_if<double>(&v->v)) delay = truncated(*d);
  if (const float* f = std::get_if<float>(&v->v)) delay = truncated(*f);
  if (const std::string* s = v->AsString()) {
    // Erlang's binary_to_integer: an optional sign, then decimal digits only.
    std::string_view text = *s;
    if (text.starts_with('+')) text.remove_prefix(1);
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) delay = n;
  }
  if (!delay || *delay <= 0 || *delay > kMaxDelayMillis) return std::nullopt;
  return delay;
}

struct DelayedSchedule::Loaded {
  Key key;
  std::string exchange, routing_key, properties, body;
};

DelayedSchedule::DelayedSchedule(Vhost& vhost, Exchange& exchange)
    : vhost_(vhost),
      exchange_(exchange),
      prefix_(storage::DelayedExchangePrefix(vhost.name(), exchange.name())),
      timer_(vhost.timers().NewTimer([this] { Fire(); })) {}

DelayedSchedule::~DelayedSchedule() = default;

bool DelayedSchedule::stored() const {
  const Persister* p = vhost_.persister();
  return p != nullptr && p->enabled();
}

MessageRef DelayedSchedule::Make(const storage::MessageView& m) const {
  MessageRef msg = Message::Create(m.exchange, m.routing_key, m.properties, m.body.size(), vhost_.memory());
  msg->FillBody(m.body);
  return msg;
}

void DelayedSchedule::Insert(Key key, MessageRef message) {
  const uint64_t size = message->body_size();
  if (window_.emplace(key, std::move(message)).second) window_bytes_ += size;
}

bool DelayedSchedule::Add(const Message& message, int64_t delay) {
  std::string properties;
  const int64_t swapped = -delay;
  amqp::FieldValue header = swapped >= std::numeric_limits<int32_t>::min()
                                ? amqp::FieldValue(static_cast<int32_t>(swapped))
                                : amqp::FieldValue(swapped);
  if (!amqp::SetHeader(message.raw_properties(), "x-delay", std::move(header), &properties)) return false;
  MessageRef held = Message::Create(message.exchange(), message.routing_key(), properties, message.body_size(),
                                    vhost_.memory());
  held->FillBody(message.body());
  // The clock reads whole milliseconds, rounded down: a due time of now + delay could route the
  // message up to 1 ms before its delay has passed. One more makes it never early.
  const auto now = static_cast<uint64_t>(std::max<int64_t>(vhost_.timers().UnixMillis(), 0));
  const Key key{now + static_cast<uint64_t>(delay) + 1, next_seq_++};
  const bool store = stored();
  if (store) {
    vhost_.persister()->batch().PutDelayed(
        storage::DelayedKey(prefix_, key.due, key.seq),
        storage::MessageData{held->exchange(), held->routing_key(), held->raw_properties(), held->body()});
  }
  if (paged_ > 0 && key > boundary_) {
    if (reading_) {
      arrived_.emplace(key, std::move(held));
    } else {
      ++paged_;
    }
    return store;
  }
  Insert(key, std::move(held));
  // While a refill is read, the window may not give up its tail: the read starts after it.
  if (!reading_) Shrink();
  Arm();
  return store;
}

void DelayedSchedule::Restore(uint64_t due, uint64_t seq, const storage::MessageView& message) {
  next_seq_ = std::max(next_seq_, seq + 1);
  const Key key{due, seq};
  if (paged_ == 0 && (window_.empty() || (window_.size() < kWindowMessages &&
                                          window_bytes_ + message.body.size() <= kWindowBytes))) {
    Insert(key, Make(message));
    return;
  }
  if (paged_++ == 0) boundary_ = window_.rbegin()->first;
}

void DelayedSchedule::Shrink() {
  if (!stored()) return;
  while (window_.size() > 1 && (window_.size() > kWindowMessages || window_bytes_ > kWindowBytes)) {
    auto last = std::prev(window_.end());
    window_bytes_ -= last->second->body_size();
    window_.erase(last);
    ++paged_;
    boundary_ = window_.rbegin()->first;
  }
}

void DelayedSchedule::Arm() {
  if (window_.empty()) {
    if (armed_for_) timer_->Cancel();
    armed_for_.reset();
    return;
  }
  const Key first = window_.begin()->first;
  if (armed_for_ && armed_for_->due == first.due) return;
  armed_for_ = first;
  const int64_t wait = static_cast<int64_t>(first.due) - vhost_.timers().UnixMillis();
  timer_->ArmAt(vhost_.timers().Now() + std::max<int64_t>(wait, 0));
}

void DelayedSchedule::Fire() {
  armed_for_.reset();
  const auto now = static_cast<uint64_t>(std::max<int64_t>(vhost_.timers().UnixMillis(), 0));
  Persister* persister = stored() ? vhost_.persister() : nullptr;
  while (!window_.empty() && window_.begin()->first.due <= now) {
    auto node = window_.extract(window_.begin());
    window_bytes_ -= node.mapped()->body_size();
    if (persister != nullptr) {
      persister->batch().DeleteDelayed(storage::DelayedKey(prefix_, node.key().due, node.key().seq));
    }
    vhost_.PublishDue(exchange_, node.mapped());
  }
  MaybeRefill();
  Arm();
}

void DelayedSchedule::MaybeRefill() {
  if (paged_ == 0 || reading_ || !stored()) return;
  if (window_.size() > kWindowMessages / 2 || window_bytes_ > kWindowBytes / 2) return;
  reading_ = true;
  struct Read {
    std::vector<Loaded> loaded;
    bool more = false;
    std::string error;
  };
  auto read = std::make_shared<Read>();
  const size_t limit = kWindowMessages - window_.size();
  const uint64_t byte_limit = kWindowBytes - window_bytes_;
  // The first key after boundary_.
  std::string from = storage::DelayedKey(prefix_, boundary_.due, boundary_.seq) + '\0';
  vhost_.persister()->ReadAfterWrites(
      [read, from = std::move(from), end = storage::DelayedRangeEnd(prefix_), limit,
       byte_limit](Journal& journal) {
        uint64_t bytes = 0;
        storage::Status s = journal.ScanDelayed(from, end, [&](std::string_view key, const storage::MessageView& m) {
          if (read->loaded.size() >= limit || bytes >= byte_limit) {
            read->more = true;
            return false;
          }
          Loaded l;
          std::string_view prefix;
          storage::DecodeDelayedKey(key, &prefix, &l.key.due, &l.key.seq);
          l.exchange = m.exchange;
          l.routing_key = m.routing_key;
          l.properties = m.properties;
          l.body = m.body;
          bytes += m.body.size();
          read->loaded.push_back(std::move(l));
          return true;
        });
        if (!s.ok()) read->error = s.ToString();
      },
      [this, alive = std::weak_ptr<char>(alive_), read] {
        if (alive.expired()) return;
        if (!read->error.empty()) {
          spdlog::error("{} in vhost '{}': reading delayed messages back failed: {}", exchange_.name(), vhost_.name(),
                        read->error);
        }
        OnRefill(read->loaded, read->more);
      });
}

void DelayedSchedule::OnRefill(const std::vector<Loaded>& loaded, bool more) {
  reading_ = false;
  for (const Loaded& l : loaded) {
    if (arrived_.contains(l.key)) continue;  // published after the read was asked for: merged below
    if (paged_ > 0) --paged_;
    Insert(l.key, Make(storage::MessageView{.exchange = l.exchange, .routing_key = l.routing_key,
                                            .properties = l.properties, .body = l.body}));
  }
  if (more) boundary_ = loaded.back().key;
  if (!more && paged_ > 0) {
    spdlog::error("exchange '{}' in vhost '{}': {} delayed messages are missing from the store", exchange_.name(),
                  vhost_.name(), paged_);
    paged_ = 0;
  }
  for (auto& [key, message] : arrived_) {
    if (more && key > boundary_) {
      ++paged_;
    } else {
      Insert(key, std::move(message));
    }
  }
  arrived_.clear();
  Shrink();
  Arm();
  MaybeRefill();
}

void DelayedSchedule::DropAll() {
  if (stored()) vhost_.persister()->batch().DeleteDelayedRange(prefix_);
  window_.clear();
  arrived_.clear();
  window_bytes_ = 0;
  paged_ = 0;
  reading_ = false;
  alive_ = std::make_shared<char>();  // a read under way finds nothing to merge into
  Arm();
}

}  // namespace warren::broker
