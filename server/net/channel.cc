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

// ---- exchange class ----

template <>
Status Channel::On(const m::ExchangeDeclare& d) {
  if (auto ok = Permit<m::ExchangeDeclare>(
          {.op = Op::kDeclareExchange, .name = d.exchange, .arguments = &d.arguments, .passive = d.passive});
      !ok) {
    return ok;
  }
  broker::ExchangeOptions options{.durable = d.durable, .auto_delete = d.auto_delete, .internal = d.internal,
                                  .arguments = d.arguments};
  auto result = connection_.vhost().DeclareExchange(d.exchange, d.type, d.passive, std::move(options));
  if (!result) return MethodFail(d, result.error());
  if (!d.no_wait) WriteMethodFrame(connection_.output(), id_, m::ExchangeDeclareOk{});
  return {};
}

template <>
Status Channel::On(const m::ExchangeDelete& d) {
  if (auto ok = Permit<m::ExchangeDelete>({.op = Op::kDeleteExchange, .name = d.exchange}); !ok) return ok;
  auto result = connection_.vhost().DeleteExchange(d.exchange, d.if_unused);
  if (!result) return MethodFail(d, result.error());
  if (!d.no_wait) WriteMethodFrame(connection_.output(), id_, m::ExchangeDeleteOk{});
  return {};
}

template <>
Status Channel::On(const m::ExchangeBind& b) {
  if (auto ok = Permit<m::ExchangeBind>(
          {.op = Op::kBindExchange, .name = b.destination, .source = b.source, .routing_key = b.routing_key});
      !ok) {
    return ok;
  }
  auto result = connection_.vhost().BindExchange(b.destination, b.source, b.routing_key, b.arguments);
  if (!result) return MethodFail(b, result.error());
  if (!b.no_wait) WriteMethodFrame(connection_.output(), id_, m::ExchangeBindOk{});
  return {};
}

template <>
Status Channel::On(const m::ExchangeUnbind& b) {
  if (auto ok = Permit<m::ExchangeUnbind>(
          {.op = Op::kUnbindExchange, .name = b.destination, .source = b.source, .routing_key = b.routing_key});
      !ok) {
    return ok;
  }
  auto result = connection_.vhost().UnbindExchange(b.destination, b.source, b.routing_key, b.arguments);
  if (!result) return MethodFail(b, result.error());
  if (!b.no_wait) WriteMethodFrame(connection_.output(), id_, m::ExchangeUnbindOk{});
  return {};
}

// ---- queue class ----

std::string_view Channel::QueueName(std::string_view name) const {
  return name.empty() ? std::string_view(last_queue_) : name;
}

template <>
Status Channel::On(const m::QueueDeclare& d) {
  if (d.passive && d.queue.starts_with(broker::kDirectReplyToPrefix)) {
    // Direct reply-to: a reply-to name "exists" while its consumer does.
    if (connection_.broker().direct_replies().Find(connection_.vhost_name(), d.queue) == nullptr) {
      return MethodFail(d, Error{r::kNotFound, fmt::format("no queue '{}' in vhost '{}'", d.queue,
                                                           connection_.vhost().name())});
    }
    if (!d.no_wait) {
      WriteMethodFrame(connection_.output(), id_,
                       m::QueueDeclareOk{.queue = d.queue, .message_count = 0, .consumer_count = 1});
    }
    return {};
  }
  broker::QueueOptions options{.durable = d.durable, .exclusive = d.exclusive, .auto_delete = d.auto_delete,
                               .owner_connection = 0, .arguments = d.arguments};
  std::string queue_name(d.queue);
  const bool server_named = !d.passive && queue_name.empty();
  // A server-named queue gets its name first and is checked under it, as in RabbitMQ.
  if (server_named) queue_name = broker::GenerateName("amq.gen-");
  if (auto ok = Permit<m::QueueDeclare>(
          {.op = Op::kDeclareQueue, .name = queue_name, .arguments = &d.arguments, .passive = d.passive});
      !ok) {
    return ok;
  }
  auto result =
      connection_.vhost().DeclareQueue(queue_name, d.passive, std::move(options), connection_.id(), server_named);
  if (!result) return MethodFail(d, result.error());
  last_queue_ = result->queue->name();
  if (!d.no_wait) {
    WriteMethodFrame(connection_.output(), id_,
                     m::QueueDeclareOk{.queue = last_queue_, .message_count = result->message_count,
                                       .consumer_count = result->consumer_count});
  }
  return {};
}

template <>
Status Channel::On(const m::QueueBind& b) {
  if (auto ok = Permit<m::QueueBind>(
          {.op = Op::kBindQueue, .name = QueueName(b.queue), .source = b.exchange, .routing_key = b.routing_key});
      !ok) {
    return ok;
  }
  auto result = connection_.vhost().BindQueue(QueueName(b.queue), b.exchange, b.routing_key, b.arguments,
                                              connection_.id());
  if (!result) return MethodFail(b, result.error());
  if (!b.no_wait) WriteMethodFrame(connection_.output(), id_, m::QueueBindOk{});
  return {};
}

template <>
Status Channel::On(const m::QueueUnbind& b) {
  if (auto ok = Permit<m::QueueUnbind>(
          {.op = Op::kUnbindQueue, .name = QueueName(b.queue), .source = b.exchange, .routing_key = b.routing_key});
      !ok) {
    return ok;
  }
  auto result = connection_.vhost().UnbindQueue(QueueName(b.queue), b.exchange, b.routing_key, b.arguments,
                                                connection_.id());
  if (!result) return MethodFail(b, result.error());
  WriteMethodFrame(connection_.output(), id_, m::QueueUnbindOk{});
  return {};
}

template <>
Status Channel::On(const m::QueuePurge& p) {
  if (auto ok = Permit<m::QueuePurge>({.op = Op::kPurge, .name = QueueName(p.queue)}); !ok) return ok;
  auto result = connection_.vhost().PurgeQueue(QueueName(p.queue), connection_.id());
  if (!result) return MethodFail(p, result.error());
  if (!p.no_wait) WriteMethodFrame(connection_.output(), id_, m::QueuePurgeOk{.message_count = *result});
  return {};
}

template <>
Status Channel::On(const m::QueueDelete& d) {
  if (auto ok = Permit<m::QueueDelete>({.op = Op::kDeleteQueue, .name = QueueName(d.queue)}); !ok) return ok;
  auto result = connection_.vhost().DeleteQueue(QueueName(d.queue), d.if_unused, d.if_empty, connection_.id());
  if (!result) return MethodFail(d, result.error());
  if (!d.no_wait) WriteMethodFrame(connection_.output(), id_, m::QueueDeleteOk{.message_count = *result});
  return {};
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

