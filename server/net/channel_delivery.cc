// Channel: deliveries to consumers, acknowledgements, rejections and requeueing.
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/amqp/constants.h"
#include "server/amqp/properties.h"
#include "server/net/channel_consumer.h"
#include "server/net/connection.h"
#include "server/net/frame_writer.h"
#include "server/net/internal/channel_methods.h"

namespace warren::net {

template <>
Status Channel::On(const m::BasicAck& a) {
  auto result = Settle(a.delivery_tag, a.multiple, SettleKind::kAck);
  if (!result) return MethodFail(a, result.error());
  return {};
}

template <>
Status Channel::On(const m::BasicReject& rj) {
  auto result = Settle(rj.delivery_tag, false, rj.requeue ? SettleKind::kRequeue : SettleKind::kDrop);
  if (!result) return MethodFail(rj, result.error());
  return {};
}

template <>
Status Channel::On(const m::BasicNack& n) {
  auto result = Settle(n.delivery_tag, n.multiple, n.requeue ? SettleKind::kRequeue : SettleKind::kDrop);
  if (!result) return MethodFail(n, result.error());
  return {};
}

template <>
Status Channel::On(const m::BasicRecoverAsync& rc) {
  if (!rc.requeue) return MethodFail<m::BasicRecoverAsync>(r::kNotImplemented, "requeue=false");
  RequeueAll();
  return {};
}

template <>
Status Channel::On(const m::BasicRecover& rc) {
  if (!rc.requeue) return MethodFail<m::BasicRecover>(r::kNotImplemented, "requeue=false");
  RequeueAll();
  WriteMethodFrame(connection_.output(), id_, m::BasicRecoverOk{});
  return {};
}

// ---- deliveries and acknowledgements ----

bool Channel::CanDeliver(const ChannelConsumer& consumer) const {
  if (closing_) return false;
  if (connection_.congested()) {
    connection_.NoteConsumerStalled();
    return false;
  }
  if (consumer.no_ack()) return true;
  if (consumer.prefetch() != 0 && consumer.unacked >= consumer.prefetch()) return false;
  return channel_prefetch_ == 0 || unacked_count_ < channel_prefetch_;
}

void Channel::WriteDeliveryContent(const broker::Queue& queue, const broker::QueuedMessage& message, bool by_get) {
  OutputBuffer& out = connection_.output();
  if (std::optional<int64_t> count = queue.DeliveryCountHeader(message, by_get)) [[unlikely]] {
    // RabbitMQ's type for it is a long (signed 64-bit).
    if (amqp::SetHeader(message.msg->raw_properties(), "x-delivery-count", amqp::FieldValue(*count),
                        &properties_scratch_)) {
      WriteContentFrames(out, id_, connection_.frame_max(), message.msg, properties_scratch_);
      return;
    }
  }
  WriteContentFrames(out, id_, connection_.frame_max(), message.msg);
}

void Channel::Deliver(ChannelConsumer& consumer, broker::Queue& queue, broker::QueuedMessage message) {
  const uint64_t tag = next_delivery_tag_++;
  OutputBuffer& out = connection_.output();
  const broker::Message& msg = *message.msg;
  WriteMethodFrame(out, id_,
                   m::BasicDeliver{.consumer_tag = consumer.tag(), .delivery_tag = tag,
                                   .redelivered = message.redelivered, .exchange = msg.exchange(),
                                   .routing_key = msg.routing_key()});
  WriteDeliveryContent(queue, message, /*by_get=*/false);
  connection_.broker().stats().AddDelivery(/*by_get=*/false, consumer.no_ack(), message.redelivered);
  if (!consumer.no_ack()) {
    AddUnacked(tag, consumer.queue(), std::move(message), &consumer);
    ++consumer.unacked;
  }
}

void Channel::AddUnacked(uint64_t tag, std::shared_ptr<broker::Queue> queue, broker::QueuedMessage message,
                         ChannelConsumer* consumer) {
  const std::optional<uint64_t> timeout =
      queue->consumer_timeout() ? queue->consumer_timeout() : connection_.limits().consumer_timeout;
  Unacked& u = unacked_.emplace_back(Unacked{tag, std::move(queue), std::move(message), consumer});
  ++unacked_count_;
  if (!timeout) {
    u.delivered_at = last_delivery_clock_;
    return;
  }
  // Read only here: a channel whose deliveries have no timeout never reads the clock for them.
  last_delivery_clock_ = connection_.vhost().timers().Now();
  u.delivered_at = last_delivery_clock_;
  u.ack_deadline = *timeout >= static_cast<uint64_t>(kNoAckDeadline - u.delivered_at)
                       ? kNoAckDeadline
                       : u.delivered_at + static_cast<broker::MonoMillis>(*timeout);
  min_ack_timeout_ = std::min(min_ack_timeout_, *timeout);
  ArmAckTimer(u.ack_deadline);
}

const Channel::Unacked* Channel::FirstAckDeadline() const {
  const Unacked* first = nullptr;
  for (const Unacked& u : unacked_) {
    if (first != nullptr && min_ack_timeout_ < static_cast<uint64_t>(kNoAckDeadline - u.delivered_at) &&
        u.delivered_at + static_cast<broker::MonoMillis>(min_ack_timeout_) >= first->ack_deadline) {
      break;
    }
    // An ack inside a transaction settles it for the timeout, as in RabbitMQ (tx.rollback re-arms).
    if (u.settled || u.tx_pending || u.ack_deadline == kNoAckDeadline) continue;
    if (first == nullptr || u.ack_deadline < first->ack_deadline) first = &u;
  }
  return first;
}

void Channel::ArmAckTimer(broker::MonoMillis deadline) {
  if (deadline >= ack_timer_at_) return;
  if (ack_timer_ == nullptr) ack_timer_ = connection_.vhost().timers().NewTimer([this] { OnAckTimer(); });
  ack_timer_at_ = deadline;
  ack_timer_->ArmAt(deadline);
}

void Channel::OnAckTimer() {
  ack_timer_at_ = kNoAckDeadline;
  if (closing_) return;
  const Unacked* first = FirstAckDeadline();
  if (first == nullptr) return;
  if (first->ack_deadline > connection_.vhost().timers().Now()) {
    ArmAckTimer(first->ack_deadline);
    return;
  }
  const broker::MonoMillis timeout = first->ack_deadline - first->delivered_at;
  spdlog::warn("connection {} channel {}: consumer '{}' of queue '{}' in vhost '{}' did not acknowledge delivery "
               "tag {} within {} ms (consumer_timeout): closing the channel",
               connection_.id(), id_, first->consumer != nullptr ? first->consumer->tag() : std::string("basic.get"),
               first->queue->name(), connection_.vhost().name(), first->tag, timeout);
  // RabbitMQ's words and its class and method 0: no method of the client's caused it.
  CloseWithError(MethodError{
      Error{r::kPreconditionFailed,
            fmt::format("delivery acknowledgement on channel {} timed out. Timeout value used: {} ms. This timeout "
                        "value can be configured, see consumers doc guide to learn more",
                        id_, timeout)},
      0, 0});
}

broker::Result<> Channel::Settle(uint64_t tag, bool multiple, SettleKind kind) {
  auto unknown = [&] { return broker::Fail(r::kPreconditionFailed, fmt::format("unknown delivery tag {}", tag)); };
  auto live = [](const Unacked& u) { return !u.settled && !u.tx_pending; };
  auto it = unacked_.end();
  if (!(multiple && tag == 0)) {
    it = std::lower_bound(unacked_.begin(), unacked_.end(), tag,
                          [](const Unacked& u, uint64_t t) { return u.tag < t; });
    if (it == unacked_.end() || it->tag != tag || !live(*it)) return unknown();
  }
  const size_t first = multiple ? 0 : static_cast<size_t>(it - unacked_.begin());
  const size_t last = (multiple && tag == 0) ? unacked_.size() : static_cast<size_t>(it - unacked_.begin()) + 1;
  if (kind != SettleKind::kAck) {
    // As RabbitMQ 3.10: a stream neither redelivers nor dead-letters, and says so.
    for (size_t i = first; i < last; ++i) {
      const broker::Queue& q = *unacked_[i].queue;
      if (live(unacked_[i]) && q.stream() != nullptr) {
        return broker::Fail(r::kNotImplemented,
                            fmt::format("basic.nack and basic.reject not supported by stream queues queue '{}' in "
                                        "vhost '{}'", q.name(), connection_.vhost().name()));
      }
    }
  }

  if (tx_mode_) {
    for (size_t i = first; i < last; ++i) {
      if (!live(unacked_[i])) continue;
      unacked_[i].tx_pending = true;
      unacked_[i].tx_kind = kind;
    }
    tx_has_settles_ = true;
    return {};
  }
  std::vector<broker::Queue*> touched;
  // Newest first, so requeued messages each go in front of the previous one in O(1).
  for (size_t i = last; i-- > first;) {
    Unacked& u = unacked_[i];
    if (!live(u)) continue;
    if (kind == SettleKind::kRequeue &&
        std::find(touched.begin(), touched.end(), u.queue.get()) == touched.end()) {
      touched.push_back(u.queue.get());
    }
    ApplySettle(u, kind);
  }
  PopSettled();
  for (broker::Queue* q : touched) q->Dispatch();
  ResumeConsumers();
  return {};
}

void Channel::ApplySettle(Unacked& u, SettleKind kind) {
  if (kind == SettleKind::kRequeue) {
    u.queue->Requeue(std::move(u.message));
  } else if (kind == SettleKind::kDrop) {
    u.queue->Reject(u.message);  // dead-letters it when the queue has a dead-letter exchange
  } else {
    u.queue->Ack(u.message);
    connection_.broker().stats().Add(broker::MessageStat::kAck);
  }
  u.message = {};
  u.settled = true;
  --unacked_count_;
  if (u.consumer != nullptr) --u.consumer->unacked;
}

void Channel::PopSettled() {
  while (!unacked_.empty() && unacked_.front().settled) unacked_.pop_front();
  // An old delivery left unacked keeps later settled ones alive; drop them when they dominate.
  if (unacked_.size() > 64 && unacked_count_ * 2 < unacked_.size()) {
    std::erase_if(unacked_, [](const Unacked& u) { return u.settled; });
  }
}

void Channel::RequeueAll() {
  // Owning references: clearing unacked_ may drop the last one to a deleted queue.
  std::vector<std::shared_ptr<broker::Queue>> touched;
  for (size_t i = unacked_.size(); i-- > 0;) {
    Unacked& u = unacked_[i];
    if (u.settled) continue;
    if (std::find(touched.begin(), touched.end(), u.queue) == touched.end()) touched.push_back(u.queue);
    ApplySettle(u, SettleKind::kRequeue);
  }
  unacked_.clear();
  tx_has_settles_ = false;
  for (const auto& q : touched) {
    if (!q->deleted()) q->Dispatch();
  }
  ResumeConsumers();
}

void Channel::ResumeConsumers() {
  if (closing_) return;
  for (auto& [tag, consumer] : consumers_) {
    if (consumer->queue()->ready_count() > 0 && CanDeliver(*consumer)) consumer->queue()->Dispatch();
  }
}

void Channel::CancelConsumer(const std::string& tag, bool notify_client) {
  auto it = consumers_.find(tag);
  if (it == consumers_.end()) return;
  std::unique_ptr<ChannelConsumer> consumer = std::move(it->second);
  consumers_.erase(it);
  for (Unacked& u : unacked_) {
    if (u.consumer == consumer.get()) u.consumer = nullptr;
  }
  std::shared_ptr<broker::Queue> queue = consumer->queue();
  queue->RemoveConsumer(consumer.get());
  if (notify_client && connection_.client_cancel_notify()) {
    WriteMethodFrame(connection_.output(), id_, m::BasicCancel{.consumer_tag = tag, .no_wait = true});
  }
  if (!queue->deleted() && queue->options().auto_delete && queue->consumer_count() == 0) {
    connection_.vhost().RemoveQueue(queue);
  }
}

void Channel::OnConsumerQueueDeleted(ChannelConsumer& consumer) {
  // The queue already detached the consumer; drop our side and tell the client.
  std::string tag = consumer.tag();
  CancelConsumer(tag, true);
}

}  // namespace warren::net
