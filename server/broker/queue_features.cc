#include "server/broker/queue_features.h"

#include <algorithm>

#include "server/amqp/properties.h"
#include "server/broker/stream.h"
#include "server/broker/vhost.h"

namespace warren::broker {

// ---- the Queue members that belong to these features ----

void Queue::FeaturesDeleter::operator()(QueueFeatures* features) const { delete features; }

QueueFeatures& Queue::EnableFeatures() {
  if (features_ == nullptr) features_.reset(new QueueFeatures(*this));
  return *features_;
}

bool Queue::RejectsPublishSlow(const MessageRef& message) { return !deleted_ && features_->RejectsPublish(message); }

void Queue::Reject(const QueuedMessage& message) {
  if (features_ != nullptr && !deleted_) features_->DeadLetter(*message.msg, DeathReason::kRejected);
  Settle(message);
}

std::optional<int64_t> Queue::DeliveryCountHeaderSlow(const QueuedMessage& message, bool by_get) const {
  if (!CountsDeliveries()) return std::nullopt;
  const int64_t before = message.delivery_count > 0 ? message.delivery_count - 1 : 0;
  if (before == 0 && !by_get) return std::nullopt;
  return before;
}

bool Queue::CountsDeliveries() const {
  return type_ == QueueType::kQuorum || (features_ != nullptr && features_->arguments().delivery_limit);
}

void Queue::Touch() {
  if (features_ != nullptr) features_->Touch();
}

void Queue::ApplyPolicies(std::string policy, std::string operator_policy, amqp::FieldTable effective) {
  policy_ = std::move(policy);
  operator_policy_ = std::move(operator_policy);
  if (effective == options_.arguments) {
    effective_arguments_.reset();
  } else {
    effective_arguments_ = std::move(effective);
  }
  if (deleted_) return;
  if (stream_ != nullptr) return stream_->Reconfigure(ParseValidStreamArguments(effective_arguments()));
  if (features_ == nullptr && !ParseValidQueueArguments(effective_arguments()).any()) return;
  EnableFeatures().Reconfigure();
}

// ---- QueueFeatures ----

namespace {

// Ready order: priority (highest first), then sequence.
bool ReadyBefore(const QueuedMessage& a, const QueuedMessage& b) {
  return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
}

}  // namespace

QueueFeatures::QueueFeatures(Queue& queue)
    : queue_(queue), args_(ParseValidQueueArguments(queue.effective_arguments())), ttl_(args_.message_ttl.has_value()) {
  for (const QueuedMessage& m : queue_.ready_) ready_bytes_ += m.msg->body_size();
  Touch();
}

QueueFeatures::~QueueFeatures() = default;

void QueueFeatures::Reconfigure() {
  args_ = ParseValidQueueArguments(queue_.effective_arguments());
  if (args_.message_ttl) ttl_ = true;
  if (!args_.expires && expiry_timer_) expiry_timer_->Cancel();
  Touch();
  EnforceLengthLimit();
  ArmTtlTimer();
  queue_.ResumePublishersIfDrained();
}

TimerService& QueueFeatures::timers() const {
  return queue_.vhost_ != nullptr ? queue_.vhost_->timers() : FallbackTimers();
}

std::optional<uint32_t> QueueFeatures::TtlOf(const Message& m) const {
  std::optional<uint32_t> ttl = args_.message_ttl;
  if (m.has_ttl() && (!ttl || m.ttl() < *ttl)) ttl = m.ttl();
  return ttl;
}

void QueueFeatures::Stamp(QueuedMessage& m, MonoMillis now, int64_t expires) const {
  if (expires != 0) {
    m.expires_at = now + std::max<int64_t>(0, expires - timers().UnixMillis());
  } else {
    const std::optional<uint32_t> ttl = TtlOf(*m.msg);
    m.expires_at = ttl ? now + *ttl : 0;
  }
  if (priority_queue()) {
    m.priority = std::min(amqp::PeekPriority(m.msg->raw_properties()).value_or(0), *args_.max_priority);
  }
}

void QueueFeatures::Insert(QueuedMessage m) {
  auto& ready = queue_.ready_;
  queue_.AddedReady(m);
  if (ready.empty() || ReadyBefore(ready.back(), m)) {
    ready.push_back(std::move(m));
    return;
  }
  auto pos = std::upper_bound(ready.begin(), ready.end(), m, ReadyBefore);
  ready.insert(pos, std::move(m));
}

QueuedMessage QueueFeatures::PopHead() {
  QueuedMessage m = std::move(queue_.ready_.front());
  queue_.ready_.pop_front();
  queue_.RemovedReady(m);
  ready_bytes_ -= std::min(ready_bytes_, m.msg->body_size());
  return m;
}

void QueueFeatures::Drop(QueuedMessage m, DeathReason reason) {
  DeadLetter(*m.msg, reason);
  queue_.Forget(m);  // the same store bookkeeping as an auto-ack delivery
}

// -- enqueue --

int64_t QueueFeatures::BeforeEnqueue(const Message& message) {
  ready_bytes_ += message.body_size();
  if (message.has_ttl()) ttl_ = true;
  pinned_now_ = ttl_ ? Now() : 0;
  if (!ttl_) return 0;
  const std::optional<uint32_t> ttl = TtlOf(message);
  return ttl ? timers().UnixMillis() + *ttl : 0;
}

void QueueFeatures::AddReady(QueuedMessage message) {
  Stamp(message, pinned_now_);
  Insert(std::move(message));
}

void QueueFeatures::AfterEnqueue() {
  const MonoMillis now = pinned_now_;
  pinned_now_ = 0;
  // Not taken by a consumer during the enqueue: a message with TTL 0 expires now.
  if (now != 0) DropExpired(now, /*inclusive=*/true);
  EnforceLengthLimit();
  ArmTtlTimer();
}

void QueueFeatures::Restore(QueuedMessage message, int64_t expires) {
  NoteRecovered(message);
  if (message.msg->has_ttl() || expires != 0) ttl_ = true;
  Stamp(message, ttl_ ? Now() : 0, expires);
  ready_bytes_ += message.msg->body_size();
  Insert(std::move(message));
  ArmTtlTimer();
}

void QueueFeatures::OnPagedIn(QueuedMessage& message, int64_t expires) {
  NoteRecovered(message);
  if (message.msg->has_ttl() || expires != 0) ttl_ = true;
  Stamp(message, ttl_ ? Now() : 0, expires);  // bytes were counted when it was enqueued
  ArmTtlTimer();
}

void QueueFeatures::Requeue(QueuedMessage message) {
  ready_bytes_ += message.msg->body_size();
  Insert(std::move(message));  // keeps its deadline, as in RabbitMQ
  EnforceLengthLimit();
  ArmTtlTimer();
}

void QueueFeatures::OnLeftReady(const QueuedMessage& message) {
  ready_bytes_ -= std::min(ready_bytes_, message.msg->body_size());
}

void QueueFeatures::OnPurged() {
  ready_bytes_ = 0;
  recovered_over_limit_ = 0;
}

void QueueFeatures::OnDeleted() {
  ready_bytes_ = 0;
  recovered_over_limit_ = 0;
  if (ttl_timer_) ttl_timer_->Cancel();
  if (expiry_timer_) expiry_timer_->Cancel();
  ttl_timer_at_ = 0;
}

void QueueFeatures::BeforeGet() {
  Touch();
  DropOverLimitHead();
  if (ttl_) DropExpired(Now(), /*inclusive=*/false);
}

// -- delivery limit --

bool QueueFeatures::DropIfOverDeliveryLimit(const QueuedMessage& message) {
  if (!OverDeliveryLimit(message)) return false;
  DeadLetter(*message.msg, DeathReason::kDeliveryLimit);
  queue_.Forget(message);
  return true;
}

void QueueFeatures::NoteRecovered(const QueuedMessage& m) {
  if (OverDeliveryLimit(m)) ++recovered_over_limit_;
}

void QueueFeatures::DropOverLimitHead() {
  // A crash returned these messages (their delivery state counts the delivery it interrupted):
  // they go when they reach the head, as if returned then.
  auto& ready = queue_.ready_;
  while (recovered_over_limit_ > 0 && !ready.empty() && OverDeliveryLimit(ready.front())) {
    --recovered_over_limit_;
    Drop(PopHead(), DeathReason::kDeliveryLimit);
  }
}

// -- TTL --

void QueueFeatures::DropExpiredHead() {
  DropOverLimitHead();
  if (!ttl_) return;
  DropExpired(pinned_now_ != 0 ? pinned_now_ : Now(), /*inclusive=*/false);
}

bool QueueFeatures::DropExpired(MonoMillis now, bool inclusive) {
  bool dropped = false;
  auto& ready = queue_.ready_;
  while (true) {
    // The paged tail may be due too: a queue without consumers must still expire it.
    if (ready.empty() && queue_.paged_count_ > 0) queue_.MaybePageIn();
    if (ready.empty()) break;
    const MonoMillis at = ready.front().expires_at;
    if (at == 0 || at > now || (at == now && !inclusive)) break;
    Drop(PopHead(), DeathReason::kExpired);
    dropped = true;
  }
  return dropped;
}

void QueueFeatures::ArmTtlTimer() {
  if (!ttl_ || queue_.deleted_ || queue_.ready_.empty()) return;
  const MonoMillis at = queue_.ready_.front().expires_at;
  if (at == 0 || (ttl_timer_at_ != 0 && ttl_timer_at_ <= at)) return;  // the armed one fires first
  if (!ttl_timer_) ttl_timer_ = timers().NewTimer([this] { OnTtlTimer(); });
  ttl_timer_at_ = at;
  ttl_timer_->ArmAt(at);
}

void QueueFeatures::OnTtlTimer() {
  ttl_timer_at_ = 0;
  ExpireDue();
}

void QueueFeatures::ExpireDue() {
  if (queue_.deleted_ || !ttl_) return;
  if (DropExpired(Now(), /*inclusive=*/true)) queue_.ResumePublishersIfDrained();
  ArmTtlTimer();
}

// -- length limits --

bool QueueFeatures::OverLengthLimit() const {
  return (args_.max_length && queue_.ready_count() > *args_.max_length) ||
         (args_.max_length_bytes && ready_bytes_ > *args_.max_length_bytes);
}

void QueueFeatures::EnforceLengthLimit() {
  if (args_.overflow != Overflow::kDropHead || (!args_.max_length && !args_.max_length_bytes)) return;
  while (OverLengthLimit()) {
    if (queue_.ready_.empty()) {
      if (queue_.paged_count_ > 0) queue_.MaybePageIn();
      if (queue_.ready_.empty()) break;  // the paged tail is still on its way to the store
    }
    Drop(PopHead(), DeathReason::kMaxLen);
  }
}

bool QueueFeatures::RejectsPublish(const MessageRef& message) {
  if (args_.overflow == Overflow::kDropHead || (!args_.max_length && !args_.max_length_bytes)) return false;
  const bool overflows = (args_.max_length && queue_.ready_count() + 1 > *args_.max_length) ||
                         (args_.max_length_bytes && ready_bytes_ + message->body_size() > *args_.max_length_bytes);
  if (!overflows) return false;
  if (args_.overflow == Overflow::kRejectPublishDlx) DeadLetter(*message, DeathReason::kMaxLen);
  return true;
}

void QueueFeatures::DeadLetter(const Message& message, DeathReason reason) {
  if (!args_.dead_letter_exchange || queue_.vhost_ == nullptr) return;
  const std::string* routing_key = args_.dead_letter_routing_key ? &*args_.dead_letter_routing_key : nullptr;
  queue_.vhost_->dead_letters().Publish(message, reason, queue_.name(), *args_.dead_letter_exchange, routing_key);
}

// -- consumers --

bool QueueFeatures::PickConsumer(Consumer** chosen) {
  auto& consumers = queue_.consumers_;
  if (args_.single_active_consumer) {
    Consumer* active = consumers.front();  // the earliest attached
    *chosen = active->Ready() ? active : nullptr;
    return true;
  }
  if (prioritized_consumers_ == 0) return false;
  // Sorted by priority, highest first. Within the first level with a ready consumer, take the
  // first ready one and move it behind its equals: round-robin per level.
  *chosen = nullptr;
  size_t begin = 0;
  while (begin < consumers.size()) {
    const int32_t level = consumers[begin]->priority();
    size_t end = begin + 1;
    while (end < consumers.size() && consumers[end]->priority() == level) ++end;
    for (size_t i = begin; i < end; ++i) {
      if (!consumers[i]->Ready()) continue;
      *chosen = consumers[i];
      std::rotate(consumers.begin() + static_cast<ptrdiff_t>(i), consumers.begin() + static_cast<ptrdiff_t>(i) + 1,
                  consumers.begin() + static_cast<ptrdiff_t>(end));
      return true;
    }
    begin = end;
  }
  return true;
}

void QueueFeatures::OnConsumerAdded(Consumer* consumer) {
  if (expiry_timer_) expiry_timer_->Cancel();
  if (consumer->priority() != 0) ++prioritized_consumers_;
  if (!args_.single_active_consumer && prioritized_consumers_ > 0) {
    std::stable_sort(queue_.consumers_.begin(), queue_.consumers_.end(),
                     [](const Consumer* a, const Consumer* b) { return a->priority() > b->priority(); });
  }
}

void QueueFeatures::OnConsumerRemoved(Consumer* consumer) {
  if (consumer->priority() != 0 && prioritized_consumers_ > 0) --prioritized_consumers_;
  Touch();
}

// -- x-expires --

void QueueFeatures::Touch() {
  if (!args_.expires || queue_.deleted_ || !queue_.consumers_.empty()) return;
  if (!expiry_timer_) expiry_timer_ = timers().NewTimer([this] { OnExpiryTimer(); });
  expiry_timer_->ArmAt(Now() + *args_.expires);
}

void QueueFeatures::OnExpiryTimer() {
  if (queue_.deleted_ || !queue_.consumers_.empty() || queue_.vhost_ == nullptr) return;
  // May destroy the queue and this object: nothing may follow.
  queue_.vhost_->ExpireQueue(queue_);
}

}  // namespace warren::broker
