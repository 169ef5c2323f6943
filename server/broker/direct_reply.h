// Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to pseudo queue): an RPC client consumes from
// "amq.rabbitmq.reply-to" in no-ack mode and publishes requests with that reply-to; the server
// rewrites the property to "amq.rabbitmq.reply-to.<suffix>", a name that leads back to the
// consuming channel. A reply published to the default exchange with that routing key is handed
// straight to the channel, without any queue.
//
// Names carry 264 random bits from a CSPRNG (GenerateName), and a name is only valid in the vhost
// of the channel that registered it: a reply published in another vhost is unroutable, so one
// tenant cannot answer (or forge answers to) another tenant's RPC client. RabbitMQ 3.10 does not
// scope them; Warren keeps the vhost a tenant boundary.
//
// A reply is not queued anywhere, so nothing but the reply consumer's connection buffers it:
// while that connection has more than kDirectReplyBacklogBytes of output the client has not read,
// further replies are dropped (unroutable: returned to a mandatory publisher), as RabbitMQ drops
// replies whose client is gone. A client that stops reading thus costs at most that much memory,
// and it cannot stall the replier, who may be serving other clients.
//
// Thread: the broker thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/broker/message.h"

namespace warren::broker {

inline constexpr std::string_view kDirectReplyTo = "amq.rabbitmq.reply-to";
inline constexpr std::string_view kDirectReplyToPrefix = "amq.rabbitmq.reply-to.";
inline constexpr size_t kDirectReplyBacklogBytes = size_t{16} << 20;

// A channel's reply consumer.
class DirectReplyTarget {
 public:
  virtual ~DirectReplyTarget() = default;
  // Hands the reply to the consumer; false when it was dropped instead (the channel is closing,
  // or its connection's unread output exceeds kDirectReplyBacklogBytes).
  virtual bool DeliverReply(const MessageRef& message) = 0;
};

class DirectReplyRegistry {
 public:
  // Registers a reply consumer of a channel in `vhost`; returns its unguessable reply-to name
  // (kDirectReplyToPrefix...).
  std::string Register(std::string_view vhost, DirectReplyTarget* target);
  void Unregister(std::string_view name);
  // The consumer behind a reply-to name registered in `vhost`, or nullptr.
  DirectReplyTarget* Find(std::string_view vhost, std::string_view name) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    std::string vhost;
    DirectReplyTarget* target;
  };
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> targets_;
};

// A copy of `message` with its reply-to property set to `reply_to`. Null when the message's
// properties cannot be decoded.
MessageRef WithReplyTo(const Message& message, std::string_view reply_to);

}  // namespace warren::broker
