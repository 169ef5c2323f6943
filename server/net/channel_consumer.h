// A basic.consume subscription: the broker-side Consumer that a channel registers with a queue.
//
// Thread: the owning channel's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "server/broker/queue.h"
#include "server/net/channel.h"

namespace warren::net {

class ChannelConsumer final : public broker::Consumer {
 public:
  ChannelConsumer(Channel& channel, std::string tag, std::shared_ptr<broker::Queue> queue, bool no_ack,
                  uint16_t prefetch, int32_t priority = 0)
      : channel_(channel),
        tag_(std::move(tag)),
        queue_(std::move(queue)),
        no_ack_(no_ack),
        prefetch_(prefetch),
        priority_(priority) {}

  bool Ready() const override { return channel_.CanDeliver(*this); }
  bool no_ack() const override { return no_ack_; }
  void Deliver(broker::Queue& queue, broker::QueuedMessage message) override {
    channel_.Deliver(*this, queue, std::move(message));
  }
  void OnQueueDeleted(broker::Queue&) override { channel_.OnConsumerQueueDeleted(*this); }
  int32_t priority() const override { return priority_; }

  const std::string& tag() const { return tag_; }
  const std::shared_ptr<broker::Queue>& queue() const { return queue_; }
  uint16_t prefetch() const { return prefetch_; }
  // Deliveries to this consumer not yet settled (for the per-consumer prefetch window).
  uint32_t unacked = 0;

 private:
  Channel& channel_;
  std::string tag_;
  std::shared_ptr<broker::Queue> queue_;
  bool no_ack_;
  uint16_t prefetch_;
  int32_t priority_;  // x-priority
};

}  // namespace warren::net
