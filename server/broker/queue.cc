#include "server/broker/queue.h"

#include <algorithm>

#include "server/broker/persister.h"

namespace warren::broker {

namespace {

storage::MessageData DataOf(const Message& m) {
  return storage::MessageData{m.exchange(), m.routing_key(), m.raw_properties(), m.body()};
}

}  // namespace

bool Queue::Enqueue(MessageRef message) {
  const bool store = persister_ != nullptr && persister_->enabled() && on_disk() && message->persistent();
  const uint64_t seq = next_seq_++;
  if (store) {
    // Written before Enqueue can deliver (and an auto-ack delete it) so the batch stays ordered.
    if (message->body_id() != 0) {
      persister_->batch().PutMessageRef(id_, seq, message->body_id());
    } else {
      persister_->batch().PutMessage(id_, seq, DataOf(*message));
    }
  }
  ready_.push_back(QueuedMessage{std::move(message), seq, 0, false, store});
  Dispatch();
  return store;
}

void Queue::Restore(QueuedMessage message) {
  next_seq_ = std::max(next_seq_, message.seq + 1);
  ready_.push_back(std::move(message));
}

void Queue::OnDelivered(const QueuedMessage& m, bool no_ack) {
  if (!m.stored) return;
  if (no_ack) {
    Forget(m);
  } else {
    persister_->batch().PutDeliveryState(id_, m.seq, m.delivery_count, m.redelivered);
  }
}

void Queue::Forget(const QueuedMessage& m) {
  if (!m.stored) return;
  if (!deleted_) persister_->batch().DeleteMessage(id_, m.seq);
  if (m.msg->body_id() != 0) persister_->ReleaseBody(m.msg->body_id());
}

std::optional<QueuedMessage> Queue::Get(bool no_ack) {
  if (ready_.empty()) return std::nullopt;
  QueuedMessage m = std::move(ready_.front());
  ready_.pop_front();
  ++m.delivery_count;
  if (!no_ack) ++unacked_;
  OnDelivered(m, no_ack);
  ResumePublishersIfDrained();
  return m;
}

void Queue::Settle(const QueuedMessage& message) {
  if (unacked_ > 0) --unacked_;
  Forget(message);
}

void Queue::Requeue(QueuedMessage message) {
  if (unacked_ > 0) --unacked_;
  if (deleted_) {
    Forget(message);
    return;
  }
  message.redelivered = true;
  if (message.stored) {
    persister_->batch().PutDeliveryState(id_, message.seq, message.delivery_count, true);
  }
  auto pos = std::upper_bound(ready_.begin(), ready_.end(), message.seq,
                              [](uint64_t seq, const QueuedMessage& m) { return seq < m.seq; });
  ready_.insert(pos, std::move(message));
}

uint32_t Queue::Purge() {
  auto n = static_cast<uint32_t>(ready_.size());
  for (const QueuedMessage& m : ready_) Forget(m);
  ready_.clear();
  ResumePublishersIfDrained();
  return n;
}

void Queue::AddConsumer(Consumer* consumer, bool exclusive) {
  consumers_.push_back(consumer);
  exclusive_consumer_ = exclusive;
  had_consumers_ = true;
}

void Queue::RemoveConsumer(Consumer* consumer) {
  auto it = std::find(consumers_.begin(), consumers_.end(), consumer);
  if (it == consumers_.end()) return;
  consumers_.erase(it);
  exclusive_consumer_ = false;
  if (next_consumer_ >= consumers_.size()) next_consumer_ = 0;
  ResumePublishersIfDrained();
}

void Queue::Dispatch() {
  if (dispatching_ || deleted_) return;
  dispatching_ = true;
  while (!ready_.empty() && !consumers_.empty()) {
    Consumer* chosen = nullptr;
    const size_t n = consumers_.size();
    for (size_t i = 0; i < n; ++i) {
      Consumer* c = consumers_[(next_consumer_ + i) % n];
      if (c->Ready()) {
        chosen = c;
        next_consumer_ = (next_consumer_ + i + 1) % n;
        break;
      }
    }
    if (chosen == nullptr) break;
    QueuedMessage m = std::move(ready_.front());
    ready_.pop_front();
    ++m.delivery_count;
    const bool no_ack = chosen->no_ack();
    if (!no_ack) ++unacked_;
    OnDelivered(m, no_ack);
    chosen->Deliver(*this, std::move(m));
  }
  dispatching_ = false;
  ResumePublishersIfDrained();
}

void Queue::PausePublisher(std::weak_ptr<PublisherFlow> publisher) {
  paused_publishers_.push_back(std::move(publisher));
}

void Queue::ResumePublishersIfDrained() {
  if (paused_publishers_.empty()) return;
  if (!deleted_ && !consumers_.empty() && ready_.size() > kFlowLowWatermark) return;
  std::vector<std::weak_ptr<PublisherFlow>> paused;
  paused.swap(paused_publishers_);
  for (auto& weak : paused) {
    if (auto publisher = weak.lock()) publisher->ResumePublishing();
  }
}

void Queue::MarkDeleted() {
  deleted_ = true;
  std::vector<Consumer*> consumers;
  consumers.swap(consumers_);
  for (Consumer* c : consumers) c->OnQueueDeleted(*this);
  for (const QueuedMessage& m : ready_) Forget(m);  // the index went with the queue; bodies may be shared
  ready_.clear();
  ResumePublishersIfDrained();
}

}  // namespace warren::broker
