#include "server/broker/queue.h"

#include <algorithm>

namespace warren::broker {

void Queue::Enqueue(MessageRef message) {
  ready_.push_back(QueuedMessage{std::move(message), next_seq_++, 0, false});
  Dispatch();
}

std::optional<QueuedMessage> Queue::Get(bool no_ack) {
  if (ready_.empty()) return std::nullopt;
  QueuedMessage m = std::move(ready_.front());
  ready_.pop_front();
  ++m.delivery_count;
  if (!no_ack) ++unacked_;
  ResumePublishersIfDrained();
  return m;
}

void Queue::Settle(const QueuedMessage&) {
  if (unacked_ > 0) --unacked_;
}

void Queue::Requeue(QueuedMessage message) {
  if (unacked_ > 0) --unacked_;
  if (deleted_) return;
  message.redelivered = true;
  auto pos = std::upper_bound(ready_.begin(), ready_.end(), message.seq,
                              [](uint64_t seq, const QueuedMessage& m) { return seq < m.seq; });
  ready_.insert(pos, std::move(message));
}

uint32_t Queue::Purge() {
  auto n = static_cast<uint32_t>(ready_.size());
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
    if (!chosen->no_ack()) ++unacked_;
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
  ready_.clear();
  ResumePublishersIfDrained();
}

}  // namespace warren::broker
