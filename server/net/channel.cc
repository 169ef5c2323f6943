#include "server/net/channel.h"

#include <algorithm>

#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/persister.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/stream.h"
#include "server/broker/vhost.h"
#include "server/net/channel_consumer.h"
#include "server/net/connection.h"
#include "server/net/frame_writer.h"
#include "server/net/internal/channel_methods.h"

namespace warren::net {

Channel::Channel(Connection& connection, uint16_t id) : connection_(connection), id_(id) {}

Channel::~Channel() { Shutdown(); }

// Methods a client must not send on an open channel.
template <typename M>
Status Channel::On(const M&) {
  return MethodFail<M>(r::kCommandInvalid, fmt::format("unimplemented method '{}'", M::kName));
}

// ---- channel class ----

template <>
Status Channel::On(const m::ChannelOpen&) {
  return MethodFail<m::ChannelOpen>(r::kChannelError, "second 'channel.open' seen");
}

template <>
Status Channel::On(const m::ChannelClose&) {
  Shutdown();
  WriteMethodFrame(connection_.output(), id_, m::ChannelCloseOk{});
  connection_.ReleaseChannel(id_);  // destroys *this
  return {};
}

template <>
Status Channel::On(const m::ChannelCloseOk&) {
  if (!closing_) return MethodFail<m::ChannelCloseOk>(r::kCommandInvalid, "unexpected 'channel.close_ok'");
  connection_.ReleaseChannel(id_);  // destroys *this
  return {};
}

template <>
Status Channel::On(const m::ChannelFlow& flow) {
  if (!flow.active) return MethodFail<m::ChannelFlow>(r::kNotImplemented, "active=false");
  WriteMethodFrame(connection_.output(), id_, m::ChannelFlowOk{.active = true});
  return {};
}

// ---- access class ----

// Tickets are gone from 0-9-1, but 0-8 clients ask for one first; RabbitMQ grants ticket 1 for any
// realm (in 0-9-1 too) and checks permissions per operation, as Warren does.
template <>
Status Channel::On(const m::AccessRequest&) {
  WriteMethodFrame(connection_.output(), id_, m::AccessRequestOk{.ticket = 1});
  return {};
}

// ---- calls to the broker ----

Channel::BrokerSide Channel::broker_side() const {
  return BrokerSide{connection_.broker(), connection_.vhost(), connection_.user_name(), connection_.id()};
}

broker::Result<> Channel::BrokerSide::Authorize(const broker::AccessRequest& request) const {
  return broker::Authorize(broker, user, vhost, request);
}

// ---- exchange class ----

template <>
Status Channel::On(const m::ExchangeDeclare& d) {
  return AskBroker<m::ExchangeDeclare>(
      [name = std::string(d.exchange), type = std::string(d.type), passive = d.passive,
       options = broker::ExchangeOptions{.durable = d.durable, .auto_delete = d.auto_delete, .internal = d.internal,
                                         .arguments = d.arguments}](BrokerSide& side) mutable -> broker::Result<> {
        if (auto ok = side.Authorize(
                {.op = Op::kDeclareExchange, .name = name, .arguments = &options.arguments, .passive = passive});
            !ok) {
          return ok;
        }
        auto declared = side.vhost.DeclareExchange(name, type, passive, std::move(options));
        if (!declared) return std::unexpected(std::move(declared.error()));
        return {};
      },
      [no_wait = d.no_wait](Channel& channel) {
        if (!no_wait) WriteMethodFrame(channel.connection_.output(), channel.id_, m::ExchangeDeclareOk{});
      });
}

template <>
Status Channel::On(const m::ExchangeDelete& d) {
  return AskBroker<m::ExchangeDelete>(
      [name = std::string(d.exchange), if_unused = d.if_unused](BrokerSide& side) -> broker::Result<> {
        if (auto ok = side.Authorize({.op = Op::kDeleteExchange, .name = name}); !ok) return ok;
        return side.vhost.DeleteExchange(name, if_unused);
      },
      [no_wait = d.no_wait](Channel& channel) {
        if (!no_wait) WriteMethodFrame(channel.connection_.output(), channel.id_, m::ExchangeDeleteOk{});
      });
}

// exchange.bind and exchange.unbind.
template <typename M, typename OkM>
Status Channel::ChangeExchangeBinding(const M& b, bool add) {
  return AskBroker<M>(
      [destination = std::string(b.destination), source = std::string(b.source), key = std::string(b.routing_key),
       arguments = b.arguments, add](BrokerSide& side) -> broker::Result<> {
        if (auto ok = side.Authorize({.op = add ? Op::kBindExchange : Op::kUnbindExchange,
                                      .name = destination, .source = source, .routing_key = key});
            !ok) {
          return ok;
        }
        return add ? side.vhost.BindExchange(destination, source, key, arguments)
                   : side.vhost.UnbindExchange(destination, source, key, arguments);
      },
      [no_wait = b.no_wait](Channel& channel) {
        if (!no_wait) WriteMethodFrame(channel.connection_.output(), channel.id_, OkM{});
      });
}

template <>
Status Channel::On(const m::ExchangeBind& b) {
  return ChangeExchangeBinding<m::ExchangeBind, m::ExchangeBindOk>(b, true);
}

template <>
Status Channel::On(const m::ExchangeUnbind& b) {
  return ChangeExchangeBinding<m::ExchangeUnbind, m::ExchangeUnbindOk>(b, false);
}

// ---- queue class ----

std::string_view Channel::QueueName(std::string_view name) const {
  return name.empty() ? std::string_view(last_queue_) : name;
}

template <>
Status Channel::On(const m::QueueDeclare& d) {
  struct Declared {
    std::string queue;
    uint32_t message_count = 0;
    uint32_t consumer_count = 0;
    bool remember = true;  // the channel's last queue (a direct reply-to name is not)
  };
  std::string name(d.queue);
  const bool server_named = !d.passive && name.empty();
  // A server-named queue gets its name first and is checked under it, as in RabbitMQ.
  if (server_named) name = broker::GenerateName("amq.gen-");
  return AskBroker<m::QueueDeclare>(
      [name = std::move(name), passive = d.passive, server_named,
       options = broker::QueueOptions{.durable = d.durable, .exclusive = d.exclusive, .auto_delete = d.auto_delete,
                                      .owner_connection = 0, .arguments = d.arguments}](
          BrokerSide& side) mutable -> broker::Result<Declared> {
        if (passive && name.starts_with(broker::kDirectReplyToPrefix)) {
          // Direct reply-to: a reply-to name "exists" while its consumer does.
          if (side.broker.direct_replies().Find(side.vhost.name(), name) == nullptr) {
            return broker::Fail(r::kNotFound, fmt::format("no queue '{}' in vhost '{}'", name, side.vhost.name()));
          }
          return Declared{.queue = name, .message_count = 0, .consumer_count = 1, .remember = false};
        }
        if (auto ok = side.Authorize(
                {.op = Op::kDeclareQueue, .name = name, .arguments = &options.arguments, .passive = passive});
            !ok) {
          return std::unexpected(std::move(ok.error()));
        }
        auto result = side.vhost.DeclareQueue(name, passive, std::move(options), side.connection_id, server_named);
        if (!result) return std::unexpected(std::move(result.error()));
        return Declared{.queue = result->queue->name(), .message_count = result->message_count,
                        .consumer_count = result->consumer_count};
      },
      [no_wait = d.no_wait](Channel& channel, Declared& declared) {
        if (declared.remember) channel.last_queue_ = declared.queue;
        if (!no_wait) {
          WriteMethodFrame(channel.connection_.output(), channel.id_,
                           m::QueueDeclareOk{.queue = declared.queue, .message_count = declared.message_count,
                                             .consumer_count = declared.consumer_count});
        }
      });
}

// queue.bind and queue.unbind (whose unbind-ok is sent whatever no_wait says: it has none).
template <typename M, typename OkM>
Status Channel::ChangeQueueBinding(const M& b, bool add, bool no_wait) {
  return AskBroker<M>(
      [queue = std::string(QueueName(b.queue)), exchange = std::string(b.exchange), key = std::string(b.routing_key),
       arguments = b.arguments, add](BrokerSide& side) -> broker::Result<> {
        if (auto ok = side.Authorize({.op = add ? Op::kBindQueue : Op::kUnbindQueue,
                                      .name = queue, .source = exchange, .routing_key = key});
            !ok) {
          return ok;
        }
        return add ? side.vhost.BindQueue(queue, exchange, key, arguments, side.connection_id)
                   : side.vhost.UnbindQueue(queue, exchange, key, arguments, side.connection_id);
      },
      [no_wait](Channel& channel) {
        if (!no_wait) WriteMethodFrame(channel.connection_.output(), channel.id_, OkM{});
      });
}

template <>
Status Channel::On(const m::QueueBind& b) {
  return ChangeQueueBinding<m::QueueBind, m::QueueBindOk>(b, true, b.no_wait);
}

template <>
Status Channel::On(const m::QueueUnbind& b) {
  return ChangeQueueBinding<m::QueueUnbind, m::QueueUnbindOk>(b, false, false);
}

template <>
Status Channel::On(const m::QueuePurge& p) {
  return AskBroker<m::QueuePurge>(
      [queue = std::string(QueueName(p.queue))](BrokerSide& side) -> broker::Result<uint32_t> {
        if (auto ok = side.Authorize({.op = Op::kPurge, .name = queue}); !ok) return std::unexpected(ok.error());
        return side.vhost.PurgeQueue(queue, side.connection_id);
      },
      [no_wait = p.no_wait](Channel& channel, uint32_t purged) {
        if (!no_wait) WriteMethodFrame(channel.connection_.output(), channel.id_, m::QueuePurgeOk{.message_count = purged});
      });
}

template <>
Status Channel::On(const m::QueueDelete& d) {
  return AskBroker<m::QueueDelete>(
      [queue = std::string(QueueName(d.queue)), if_unused = d.if_unused,
       if_empty = d.if_empty](BrokerSide& side) -> broker::Result<uint32_t> {
        if (auto ok = side.Authorize({.op = Op::kDeleteQueue, .name = queue}); !ok) return std::unexpected(ok.error());
        return side.vhost.DeleteQueue(queue, if_unused, if_empty, side.connection_id);
      },
      [no_wait = d.no_wait](Channel& channel, uint32_t deleted) {
        if (!no_wait) {
          WriteMethodFrame(channel.connection_.output(), channel.id_, m::QueueDeleteOk{.message_count = deleted});
        }
      });
}

// ---- basic class ----

template <>
Status Channel::On(const m::BasicQos& q) {
  if (q.prefetch_size != 0) {
    return MethodFail<m::BasicQos>(r::kNotImplemented, fmt::format("prefetch_size!=0 ({})", q.prefetch_size));
  }
  if (q.global) {
    channel_prefetch_ = q.prefetch_count;
  } else {
    consumer_prefetch_ = q.prefetch_count;
  }
  WriteMethodFrame(connection_.output(), id_, m::BasicQosOk{});
  ResumeConsumers();
  return {};
}

template <>
Status Channel::On(const m::BasicConsume& c) {
  if (c.queue == broker::kDirectReplyTo) return ConsumeDirectReply(c);
  if (auto ok = Permit<m::BasicConsume>({.op = Op::kConsume, .name = QueueName(c.queue)}); !ok) return ok;
  auto queue = connection_.vhost().FindQueue(QueueName(c.queue), connection_.id());
  if (!queue) return MethodFail(c, queue.error());
  std::string tag = c.consumer_tag.empty() ? broker::GenerateName("amq.ctag-") : std::string(c.consumer_tag);
  if (consumers_.contains(tag) || tag == reply_consumer_tag_) {
    return MethodFail(c, Error{r::kNotAllowed, fmt::format("attempt to reuse consumer tag '{}'", tag)});
  }
  broker::Queue& q = **queue;
  if (q.type() == broker::QueueType::kQuorum && channel_prefetch_ != 0) {
    // RabbitMQ 3.10's quorum queues take no channel-wide (global) prefetch: a connection error.
    return MethodFail(c, Error{r::kNotImplemented, fmt::format("queue '{}' in vhost '{}' does not support global qos",
                                                               q.name(), connection_.vhost().name())});
  }
  auto priority = broker::ParseConsumerPriority(
      c.arguments, fmt::format("queue '{}' in vhost '{}'", q.name(), connection_.vhost().name()));
  if (!priority) return MethodFail(c, priority.error());
  if (q.has_exclusive_consumer() || (c.exclusive && q.consumer_count() > 0)) {
    return MethodFail(c, Error{r::kAccessRefused, fmt::format("queue '{}' in vhost '{}' in exclusive use", q.name(),
                                                              connection_.vhost().name())});
  }
  std::optional<broker::StreamOffset> stream_offset;
  if (q.stream() != nullptr) {
    // RabbitMQ 3.10's rules: manual acks, and a per-consumer prefetch that bounds the read-ahead.
    const std::string label = fmt::format("queue '{}' in vhost '{}'", q.name(), connection_.vhost().name());
    if (c.no_ack) {
      return MethodFail(c, Error{r::kNotImplemented,
                                 "automatic acknowledgement not supported by stream queues " + label});
    }
    if (consumer_prefetch_ == 0) {
      return MethodFail(c, Error{r::kPreconditionFailed,
                                 fmt::format("consumer prefetch count is not set for '{}'", label)});
    }
    auto offset = broker::ParseStreamOffset(c.arguments, connection_.vhost().timers().UnixMillis(), label);
    if (!offset) return MethodFail(c, offset.error());
    stream_offset = *offset;
  }
  if (!c.no_wait) WriteMethodFrame(connection_.output(), id_, m::BasicConsumeOk{.consumer_tag = tag});
  auto consumer = std::make_unique<ChannelConsumer>(*this, tag, *queue, c.no_ack, consumer_prefetch_, *priority);
  ChannelConsumer* raw = consumer.get();
  consumers_.emplace(std::move(tag), std::move(consumer));
  if (stream_offset) {
    q.AddStreamConsumer(raw, *stream_offset);
  } else {
    q.AddConsumer(raw, c.exclusive);
  }
  q.Dispatch();
  return {};
}

Status Channel::ConsumeDirectReply(const m::BasicConsume& c) {
  std::string tag = c.consumer_tag.empty() ? broker::GenerateName("amq.ctag-") : std::string(c.consumer_tag);
  if (consumers_.contains(tag) || tag == reply_consumer_tag_) {
    return MethodFail(c, Error{r::kNotAllowed, fmt::format("attempt to reuse consumer tag '{}'", tag)});
  }
  if (!c.no_ack) return MethodFail(c, Error{r::kPreconditionFailed, "reply consumer cannot acknowledge"});
  if (!reply_to_name_.empty()) return MethodFail(c, Error{r::kPreconditionFailed, "reply consumer already set"});
  reply_to_name_ = connection_.broker().direct_replies().Register(connection_.vhost_name(), this);
  reply_consumer_tag_ = std::move(tag);
  if (!c.no_wait) WriteMethodFrame(connection_.output(), id_, m::BasicConsumeOk{.consumer_tag = reply_consumer_tag_});
  return {};
}

bool Channel::DeliverReply(const broker::MessageRef& message) {
  if (closing_ || connection_.unsent_bytes() > broker::kDirectReplyBacklogBytes) return false;
  OutputBuffer& out = connection_.output();
  WriteMethodFrame(out, id_,
                   m::BasicDeliver{.consumer_tag = reply_consumer_tag_, .delivery_tag = next_delivery_tag_++,
                                   .redelivered = false, .exchange = message->exchange(),
                                   .routing_key = message->routing_key()});
  WriteContentFrames(out, id_, connection_.frame_max(), message);
  return true;
}

template <>
Status Channel::On(const m::BasicCancel& c) {
  if (!reply_consumer_tag_.empty() && c.consumer_tag == reply_consumer_tag_) {
    connection_.broker().direct_replies().Unregister(reply_to_name_);
    reply_to_name_.clear();
    reply_consumer_tag_.clear();
  }
  CancelConsumer(std::string(c.consumer_tag), false);
  if (!c.no_wait) WriteMethodFrame(connection_.output(), id_, m::BasicCancelOk{.consumer_tag = c.consumer_tag});
  return {};
}

template <>
Status Channel::On(const m::BasicGet& g) {
  if (auto ok = Permit<m::BasicGet>({.op = Op::kGet, .name = QueueName(g.queue)}); !ok) return ok;
  auto queue = connection_.vhost().FindQueue(QueueName(g.queue), connection_.id());
  if (!queue) return MethodFail(g, queue.error());
  if ((*queue)->stream() != nullptr) {
    return MethodFail(g, Error{r::kNotImplemented,
                               fmt::format("basic.get not supported by stream queues queue '{}' in vhost '{}'",
                                           (*queue)->name(), connection_.vhost().name())});
  }
  auto message = (*queue)->Get(g.no_ack);
  OutputBuffer& out = connection_.output();
  if (!message) {
    connection_.broker().stats().Add(broker::MessageStat::kGetEmpty);
    WriteMethodFrame(out, id_, m::BasicGetEmpty{});
    return {};
  }
  const uint64_t tag = next_delivery_tag_++;
  const broker::Message& msg = *message->msg;
  WriteMethodFrame(out, id_,
                   m::BasicGetOk{.delivery_tag = tag, .redelivered = message->redelivered,
                                 .exchange = msg.exchange(), .routing_key = msg.routing_key(),
                                 .message_count = static_cast<uint32_t>((*queue)->ready_count())});
  WriteDeliveryContent(**queue, *message, /*by_get=*/true);
  connection_.broker().stats().AddDelivery(/*by_get=*/true, g.no_ack, message->redelivered);
  if (!g.no_ack) AddUnacked(tag, *queue, std::move(*message), nullptr);
  return {};
}

// ---- closing ----

void Channel::CloseWithError(const MethodError& error) {
  Shutdown();
  closing_ = true;
  WriteMethodFrame(connection_.output(), id_,
                   m::ChannelClose{.reply_code = error.error.code,
                                   .reply_text = fmt::format("{} - {}", r::Name(error.error.code), error.error.text),
                                   .class_id = error.class_id, .method_id = error.method_id});
}

void Channel::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (ack_timer_ != nullptr) ack_timer_->Cancel();
  DropAssembly();
  tx_publishes_.clear();
  if (!reply_to_name_.empty()) {
    connection_.broker().direct_replies().Unregister(reply_to_name_);
    reply_to_name_.clear();
    reply_consumer_tag_.clear();
  }
  std::vector<std::string> tags;
  for (const auto& [tag, c] : consumers_) tags.push_back(tag);
  for (const std::string& tag : tags) CancelConsumer(tag, false);
  closing_ = true;  // no deliveries to us while requeueing
  RequeueAll();
}

Status Channel::HandleMethod(const amqp::Method& method) {
  if (closing_) {
    // After we sent channel.close only close/close-ok matter (spec 2.3.5.2).
    if (const auto* close = std::get_if<m::ChannelClose>(&method)) return On(*close);
    if (const auto* close_ok = std::get_if<m::ChannelCloseOk>(&method)) return On(*close_ok);
    return {};
  }
  if (assembling_) {
    return MethodFail<m::BasicPublish>(
        r::kUnexpectedFrame, assembling_->builder
                                 ? "expected content body, got non content body frame instead"
                                 : "expected content header for class 60, got non content header frame instead");
  }
  return std::visit([this](const auto& m) { return On(m); }, method);
}

}  // namespace warren::net

