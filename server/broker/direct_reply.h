// Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to pseudo queue): an RPC client consumes from
// "amq.rabbitmq.reply-to" in no-ack mode and publishes requests with that reply-to; the server
// rewrites the property to "amq.rabbitmq.reply-to.<suffix>", a name that leads back to the
// consuming channel. A reply published to the default exchange with that routing key is handed
// straight to the channel, without any queue.
//
// Thread: the broker thread.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "server/broker/message.h"

namespace warren::broker {

inline constexpr std::string_view kDirectReplyTo = "amq.rabbitmq.reply-to";
inline constexpr std::string_view kDirectReplyToPrefix = "amq.rabbitmq.reply-to.";

// A channel's reply consumer.
class DirectReplyTarget {
 public:
  virtual ~DirectReplyTarget() = default;
  virtual void DeliverReply(const MessageRef& message) = 0;
};

class DirectReplyRegistry {
 public:
  // Registers a reply consumer; returns its unguessable reply-to name (kDirectReplyToPrefix...).
  std::string Register(DirectReplyTarget* target);
  void Unregister(std::string_view name);
  // The consumer behind a reply-to name, or nullptr.
  DirectReplyTarget* Find(std::string_view name) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, DirectReplyTarget*, Hash, std::equal_to<>> targets_;
};

// A copy of `message` with its reply-to property set to `reply_to`. Null when the message's
// properties cannot be decoded.
MessageRef WithReplyTo(const Message& message, std::string_view reply_to);

}  // namespace warren::broker
