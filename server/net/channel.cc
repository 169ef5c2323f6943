#include "server/net/channel.h"

#include <algorithm>

#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/persister.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/vhost.h"
#include "server/net/channel_consumer.h"
#include "server/net/connection.h"
#include "server/net/frame_writer.h"

namespace warren::net {

namespace r = amqp::reply;
namespace m = amqp::method;
using broker::Error;
using Status = std::expected<void, MethodError>;

namespace {

template <typename M>
std::unexpected<MethodError> MethodFail(uint16_t code, std::string text) {
  return std::unexpected(MethodError{Error{code, std::move(text)}, M::kClassId, M::kMethodId});
}

template <typename M>
std::unexpected<MethodError> MethodFail(const M&, Error error) {
  return std::unexpected(MethodError{std::move(error), M::kClassId, M::kMethodId});
}

using broker::AccessKind;
using broker::ResourceKind;

// The string value of argument `key`, or nullptr (absent or not a string).
const std::string* StringArgument(const amqp::FieldTable& arguments, std::string_view key) {
  const amqp::FieldValue* v = arguments.Find(key);
  return v == nullptr ? nullptr : v->AsString();
}

}  // namespace

// Access control (RabbitMQ's table, rabbit_channel): 403 ACCESS_REFUSED for method M unless the
// connection's user has `access` to the resource.
template <typename M>
Status Channel::Permit(AccessKind access, ResourceKind resource, std::string_view name) const {
  auto allowed = connection_.CheckAccess(access, resource, name);
  if (!allowed) return MethodFail<M>(allowed.error().code, std::move(allowed.error().text));
  return {};
}

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

// ---- exchange class ----

template <>
Status Channel::On(const m::ExchangeDeclare& d) {
  // A passive declare needs no permission; the default exchange is refused by the vhost.
  if (!d.passive && !d.exchange.empty()) {
    if (auto ok = Permit<m::ExchangeDeclare>(AccessKind::kConfigure, ResourceKind::kExchange, d.exchange); !ok)
      return ok;
    // A new exchange with an alternate exchange: read on it, write on the alternate.
    const std::string* ae = StringArgument(d.arguments, "alternate-exchange");
    if (ae != nullptr && !connection_.vhost().exchanges().contains(d.exchange)) {
      if (auto ok = Permit<m::ExchangeDeclare>(AccessKind::kRead, ResourceKind::kExchange, d.exchange); !ok) return ok;
      if (auto ok = Permit<m::ExchangeDeclare>(AccessKind::kWrite, ResourceKind::kExchange, *ae); !ok) return ok;
    }
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
  if (!d.exchange.empty()) {
    if (auto ok = Permit<m::ExchangeDelete>(AccessKind::kConfigure, ResourceKind::kExchange, d.exchange); !ok)
      return ok;
  }
  auto result = connection_.vhost().DeleteExchange(d.exchange, d.if_unused);
  if (!result) return MethodFail(d, result.error());
  if (!d.no_wait) WriteMethodFrame(connection_.output(), id_, m::ExchangeDeleteOk{});
  return {};
}

template <>
Status Channel::On(const m::ExchangeBind& b) {
  if (auto ok = Permit<m::ExchangeBind>(AccessKind::kWrite, ResourceKind::kExchange, b.destination); !ok) return ok;
  // (Binding to or from the default exchange is refused by the vhost, as RabbitMQ does before the
  // read check.)
  if (!b.source.empty()) {
    if (auto ok = Permit<m::ExchangeBind>(AccessKind::kRead, ResourceKind::kExchange, b.source); !ok) return ok;
  }
  auto result = connection_.vhost().BindExchange(b.destination, b.source, b.routing_key, b.arguments);
  if (!result) return MethodFail(b, result.error());
  if (!b.no_wait) WriteMethodFrame(connection_.output(), id_, m::ExchangeBindOk{});
  return {};
}

template <>
Status Channel::On(const m::ExchangeUnbind& b) {
  if (auto ok = Permit<m::ExchangeUnbind>(AccessKind::kWrite, ResourceKind::kExchange, b.destination); !ok) return ok;
  if (!b.source.empty()) {
    if (auto ok = Permit<m::ExchangeUnbind>(AccessKind::kRead, ResourceKind::kExchange, b.source); !ok) return ok;
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
    if (connection_.broker().direct_replies().Find(d.queue) == nullptr) {
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
  if (!d.passive) {
    // Configure on the queue (a server-named one gets its name first, as in RabbitMQ); a new queue
    // with a dead-letter exchange also needs read on the queue and write on that exchange.
    if (queue_name.empty()) queue_name = broker::GenerateName("amq.gen-");
    if (auto ok = Permit<m::QueueDeclare>(AccessKind::kConfigure, ResourceKind::kQueue, queue_name); !ok) return ok;
    const std::string* dlx = StringArgument(d.arguments, "x-dead-letter-exchange");
    if (dlx != nullptr && !connection_.vhost().queues().contains(queue_name)) {
      if (auto ok = Permit<m::QueueDeclare>(AccessKind::kRead, ResourceKind::kQueue, queue_name); !ok) return ok;
      if (auto ok = Permit<m::QueueDeclare>(AccessKind::kWrite, ResourceKind::kExchange, *dlx); !ok) return ok;
    }
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
  if (auto ok = Permit<m::QueueBind>(AccessKind::kWrite, ResourceKind::kQueue, QueueName(b.queue)); !ok) return ok;
  if (!b.exchange.empty()) {
    if (auto ok = Permit<m::QueueBind>(AccessKind::kRead, ResourceKind::kExchange, b.exchange); !ok) return ok;
  }
  auto result = connection_.vhost().BindQueue(QueueName(b.queue), b.exchange, b.routing_key, b.arguments,
                                              connection_.id());
  if (!result) return MethodFail(b, result.error());
  if (!b.no_wait) WriteMethodFrame(connection_.output(), id_, m::QueueBindOk{});
  return {};
}

template <>
Status Channel::On(const m::QueueUnbind& b) {
  if (auto ok = Permit<m::QueueUnbind>(AccessKind::kWrite, ResourceKind::kQueue, QueueName(b.queue)); !ok) return ok;
  if (!b.exchange.empty()) {
    if (auto ok = Permit<m::QueueUnbind>(AccessKind::kRead, ResourceKind::kExchange, b.exchange); !ok) return ok;
  }
  auto result = connection_.vhost().UnbindQueue(QueueName(b.queue), b.exchange, b.routing_key, b.arguments,
                                                connection_.id());
  if (!result) return MethodFail(b, result.error());
  WriteMethodFrame(connection_.output(), id_, m::QueueUnbindOk{});
  return {};
}

template <>
Status Channel::On(const m::QueuePurge& p) {
  if (auto ok = Permit<m::QueuePurge>(AccessKind::kRead, ResourceKind::kQueue, QueueName(p.queue)); !ok) return ok;
  auto result = connection_.vhost().PurgeQueue(QueueName(p.queue), connection_.id());
  if (!result) return MethodFail(p, result.error());
  if (!p.no_wait) WriteMethodFrame(connection_.output(), id_, m::QueuePurgeOk{.message_count = *result});
  return {};
}

template <>
Status Channel::On(const m::QueueDelete& d) {
  if (auto ok = Permit<m::QueueDelete>(AccessKind::kConfigure, ResourceKind::kQueue, QueueName(d.queue)); !ok)
    return ok;
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
  if (auto ok = Permit<m::BasicConsume>(AccessKind::kRead, ResourceKind::kQueue, QueueName(c.queue)); !ok) return ok;
  auto queue = connection_.vhost().FindQueue(QueueName(c.queue), connection_.id());
  if (!queue) return MethodFail(c, queue.error());
  std::string tag = c.consumer_tag.empty() ? broker::GenerateName("amq.ctag-") : std::string(c.consumer_tag);
  if (consumers_.contains(tag) || tag == reply_consumer_tag_) {
    return MethodFail(c, Error{r::kNotAllowed, fmt::format("attempt to reuse consumer tag '{}'", tag)});
  }
  broker::Queue& q = **queue;
  auto priority = broker::ParseConsumerPriority(
      c.arguments, fmt::format("queue '{}' in vhost '{}'", q.name(), connection_.vhost().name()));
  if (!priority) return MethodFail(c, priority.error());
  if (q.has_exclusive_consumer() || (c.exclusive && q.consumer_count() > 0)) {
    return MethodFail(c, Error{r::kAccessRefused, fmt::format("queue '{}' in vhost '{}' in exclusive use", q.name(),
                                                              connection_.vhost().name())});
  }
  if (!c.no_wait) WriteMethodFrame(connection_.output(), id_, m::BasicConsumeOk{.consumer_tag = tag});
  auto consumer = std::make_unique<ChannelConsumer>(*this, tag, *queue, c.no_ack, consumer_prefetch_, *priority);
  ChannelConsumer* raw = consumer.get();
  consumers_.emplace(std::move(tag), std::move(consumer));
  q.AddConsumer(raw, c.exclusive);
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
  reply_to_name_ = connection_.broker().direct_replies().Register(this);
  reply_consumer_tag_ = std::move(tag);
  if (!c.no_wait) WriteMethodFrame(connection_.output(), id_, m::BasicConsumeOk{.consumer_tag = reply_consumer_tag_});
  return {};
}

void Channel::DeliverReply(const broker::MessageRef& message) {
  if (closing_) return;
  OutputBuffer& out = connection_.output();
  WriteMethodFrame(out, id_,
                   m::BasicDeliver{.consumer_tag = reply_consumer_tag_, .delivery_tag = next_delivery_tag_++,
                                   .redelivered = false, .exchange = message->exchange(),
                                   .routing_key = message->routing_key()});
  WriteContentFrames(out, id_, connection_.frame_max(), message);
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
Status Channel::On(const m::BasicPublish& p) {
  if (p.immediate) return MethodFail<m::BasicPublish>(r::kNotImplemented, "immediate=true");
  connection_.NotePublish();
  assembling_.emplace();
  assembling_->exchange.assign(p.exchange);
  assembling_->routing_key.assign(p.routing_key);
  assembling_->mandatory = p.mandatory;
  return {};
}

template <>
Status Channel::On(const m::BasicGet& g) {
  if (auto ok = Permit<m::BasicGet>(AccessKind::kRead, ResourceKind::kQueue, QueueName(g.queue)); !ok) return ok;
  auto queue = connection_.vhost().FindQueue(QueueName(g.queue), connection_.id());
  if (!queue) return MethodFail(g, queue.error());
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
  WriteContentFrames(out, id_, connection_.frame_max(), message->msg);
  connection_.broker().stats().AddDelivery(/*by_get=*/true, g.no_ack, message->redelivered);
  if (!g.no_ack) {
    unacked_.push_back(Unacked{tag, *queue, std::move(*message), nullptr});
    ++unacked_count_;
  }
  return {};
}

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

// ---- confirm and tx classes ----

template <>
Status Channel::On(const m::ConfirmSelect& s) {
  if (tx_mode_) return MethodFail<m::ConfirmSelect>(r::kPreconditionFailed, "cannot switch from tx to confirm mode");
  confirm_mode_ = true;
  if (!s.nowait) WriteMethodFrame(connection_.output(), id_, m::ConfirmSelectOk{});
  return {};
}

template <>
Status Channel::On(const m::TxSelect&) {
  if (confirm_mode_) return MethodFail<m::TxSelect>(r::kPreconditionFailed, "cannot switch from confirm to tx mode");
  tx_mode_ = true;
  WriteMethodFrame(connection_.output(), id_, m::TxSelectOk{});
  return {};
}

template <>
Status Channel::On(const m::TxCommit&) {
  if (!tx_mode_) return MethodFail<m::TxCommit>(r::kPreconditionFailed, "channel is not transactional");
  std::vector<PendingPublish> publishes;
  publishes.swap(tx_publishes_);
  last_store_ticket_ = 0;
  for (PendingPublish& p : publishes) {
    if (auto routed = Route(p); !routed) return MethodFail<m::TxCommit>(routed.error().error.code, routed.error().error.text);
  }
  if (tx_has_settles_) {
    tx_has_settles_ = false;
    std::vector<broker::Queue*> touched;
    for (size_t i = unacked_.size(); i-- > 0;) {
      Unacked& u = unacked_[i];
      if (!u.tx_pending) continue;
      u.tx_pending = false;
      if (std::find(touched.begin(), touched.end(), u.queue.get()) == touched.end()) touched.push_back(u.queue.get());
      ApplySettle(u, u.tx_kind);
    }
    PopSettled();
    for (broker::Queue* q : touched) q->Dispatch();
    ResumeConsumers();
  }
  broker::Persister* persister = connection_.broker().persister();
  if (last_store_ticket_ != 0 && persister != nullptr && persister->durable_ticket() < last_store_ticket_) {
    tx_commit_ticket_ = last_store_ticket_;  // commit-ok once the published messages are durable
    connection_.WaitForDurable();
    return {};
  }
  WriteMethodFrame(connection_.output(), id_, m::TxCommitOk{});
  return {};
}

template <>
Status Channel::On(const m::TxRollback&) {
  if (!tx_mode_) return MethodFail<m::TxRollback>(r::kPreconditionFailed, "channel is not transactional");
  tx_publishes_.clear();
  if (tx_has_settles_) {
    for (Unacked& u : unacked_) u.tx_pending = false;
    tx_has_settles_ = false;
  }
  WriteMethodFrame(connection_.output(), id_, m::TxRollbackOk{});
  return {};
}

// ---- content ----

Status Channel::HandleContentHeader(const amqp::ContentHeader& header) {
  if (closing_) return {};
  if (!assembling_ || assembling_->message) {
    return std::unexpected(MethodError{
        Error{r::kUnexpectedFrame, "expected method frame, got non method frame instead"}, 0, 0});
  }
  if (header.class_id != amqp::kClassBasic) {
    return std::unexpected(MethodError{
        Error{r::kUnexpectedFrame, fmt::format("content header for class {} does not match basic", header.class_id)},
        0, 0});
  }
  const uint64_t max = connection_.limits().max_message_size;
  if (header.body_size > max) {
    assembling_.reset();
    return MethodFail<m::BasicPublish>(
        r::kPreconditionFailed,
        fmt::format("message size {} is larger than configured max size {}", header.body_size, max));
  }
  assembling_->message = broker::Message::Create(assembling_->exchange, assembling_->routing_key,
                                                 header.raw_properties, header.body_size);
  if (header.body_size == 0) return FinishPublish();
  return {};
}

Status Channel::HandleContentBody(std::string_view chunk) {
  if (closing_) return {};
  if (!assembling_ || !assembling_->message) {
    return std::unexpected(MethodError{
        Error{r::kUnexpectedFrame, "expected method frame, got non method frame instead"}, 0, 0});
  }
  broker::Message& msg = *assembling_->message;
  if (chunk.size() > msg.body_size() - msg.body_filled()) {
    return MethodFail<m::BasicPublish>(
        r::kUnexpectedFrame, fmt::format("content body exceeds the declared body size {}", msg.body_size()));
  }
  msg.FillBody(chunk);
  if (msg.complete()) return FinishPublish();
  return {};
}

Status Channel::FinishPublish() {
  PendingPublish publish = std::move(*assembling_);
  assembling_.reset();
  if (auto ok = PermitPublish(publish.exchange); !ok) return ok;
  if (auto checked = CheckPublish(publish); !checked) return checked;
  if (tx_mode_) {
    // Validate now so the client hears about a missing exchange at publish time, as RabbitMQ.
    auto ex = connection_.vhost().FindExchange(publish.exchange);
    if (!ex) return MethodFail<m::BasicPublish>(ex.error().code, ex.error().text);
    tx_publishes_.push_back(std::move(publish));
    return {};
  }
  return Route(publish);
}

// Write on the exchange. Publishing is the hot path: the last exchange found writable is
// remembered until the broker's users/vhosts/permissions change.
Status Channel::PermitPublish(std::string_view exchange) {
  const uint64_t generation = connection_.broker().access_generation();
  if (publish_permit_generation_ == generation && publish_permit_exchange_ == exchange) return {};
  if (auto ok = Permit<m::BasicPublish>(AccessKind::kWrite, ResourceKind::kExchange, exchange); !ok) return ok;
  publish_permit_generation_ = generation;
  publish_permit_exchange_.assign(exchange);
  return {};
}

std::expected<broker::Exchange*, MethodError> Channel::PublishExchange(std::string_view name) {
  broker::Vhost& vhost = connection_.vhost();
  auto ex = vhost.FindExchange(name);
  if (!ex) return MethodFail<m::BasicPublish>(ex.error().code, ex.error().text);
  if ((*ex)->options().internal) {
    return MethodFail<m::BasicPublish>(
        r::kAccessRefused, fmt::format("cannot publish to internal exchange '{}' in vhost '{}'", name, vhost.name()));
  }
  return *ex;
}

Status Channel::CheckPublish(PendingPublish& publish) {
  const broker::Message& msg = *publish.message;
  const bool bad_expiration = msg.expiration() == broker::Message::Expiration::kInvalid;
  const bool direct_reply = amqp::PeekReplyTo(msg.raw_properties()) == broker::kDirectReplyTo;
  if (!bad_expiration && !direct_reply) return {};
  // RabbitMQ looks the exchange up before it looks at the properties.
  if (auto ex = PublishExchange(publish.exchange); !ex) return std::unexpected(ex.error());
  if (direct_reply) {
    if (reply_to_name_.empty()) {
      return MethodFail<m::BasicPublish>(r::kPreconditionFailed, "fast reply consumer does not exist");
    }
    broker::MessageRef rewritten = broker::WithReplyTo(msg, reply_to_name_);
    if (rewritten) publish.message = std::move(rewritten);
  }
  if (bad_expiration) {
    auto ttl = broker::ParseExpiration(amqp::PeekExpiration(publish.message->raw_properties()).value_or(""));
    if (!ttl) return MethodFail<m::BasicPublish>(ttl.error().code, ttl.error().text);
  }
  return {};
}

void Channel::NackPublish(uint64_t seq) {
  if (!unconfirmed_.empty()) {
    unconfirmed_.push_back(Unconfirmed{seq, 0, true});  // after the confirms waiting before it
    return;
  }
  FlushConfirms();
  WriteMethodFrame(connection_.output(), id_, m::BasicNack{.delivery_tag = seq, .multiple = false, .requeue = false});
  confirmed_upto_ = confirm_ready_upto_ = seq;
}

Status Channel::Route(PendingPublish& publish) {
  broker::Vhost& vhost = connection_.vhost();
  auto ex = PublishExchange(publish.exchange);
  if (!ex) return std::unexpected(ex.error());
  connection_.broker().stats().Add(broker::MessageStat::kPublish);
  vhost.Route(**ex, *publish.message, route_scratch_);
  bool routed = !route_scratch_.empty();
  if (!routed && publish.exchange.empty() && publish.routing_key.starts_with(broker::kDirectReplyToPrefix)) {
    // A direct reply: straight to the requesting channel, if it is still there.
    if (broker::DirectReplyTarget* target = connection_.broker().direct_replies().Find(publish.routing_key)) {
      target->DeliverReply(publish.message);
      routed = true;
    }
  }
  if (!routed) {
    connection_.broker().stats().Add(publish.mandatory ? broker::MessageStat::kReturnUnroutable
                                                       : broker::MessageStat::kDropUnroutable);
  }
  if (!routed && publish.mandatory) {
    OutputBuffer& out = connection_.output();
    const broker::Message& msg = *publish.message;
    WriteMethodFrame(out, id_,
                     m::BasicReturn{.reply_code = r::kNoRoute, .reply_text = "NO_ROUTE",
                                    .exchange = msg.exchange(), .routing_key = msg.routing_key()});
    WriteContentFrames(out, id_, connection_.frame_max(), publish.message);
  }
  // x-overflow=reject-publish: a full queue refuses the message (routed all the same: no return).
  bool rejected = false;
  std::erase_if(route_scratch_, [&](broker::Queue* q) {
    if (!q->RejectsPublish(publish.message)) return false;
    rejected = true;
    return true;
  });
  broker::Persister* persister = connection_.broker().persister();
  if (persister != nullptr && persister->enabled() && publish.message->persistent()) {
    size_t durable = 0;
    for (broker::Queue* q : route_scratch_) durable += q->on_disk() ? 1 : 0;
    if (durable > 1) {
      // One body for all the durable queues; each gets a small index entry pointing at it.
      const uint64_t body_id = persister->NextBodyId();
      const broker::Message& msg = *publish.message;
      persister->batch().PutBody(body_id, storage::MessageData{msg.exchange(), msg.routing_key(),
                                                               msg.raw_properties(), msg.body()});
      persister->AddBodyRefs(body_id, static_cast<uint32_t>(durable));
      publish.message->set_body_id(body_id);
    }
  }
  bool stored = false;
  for (broker::Queue* q : route_scratch_) {
    stored = q->Enqueue(publish.message) || stored;
    if (q->ShouldPausePublishers()) connection_.PausePublishingFor(*q);
  }
  if (stored) {
    last_store_ticket_ = persister->open_ticket();
    persister->CountPersistentPublish();
  }
  if (persister != nullptr && persister->congested()) connection_.PausePublishingForStore(*persister);
  if (confirm_mode_) {
    const uint64_t seq = next_publish_seq_++;
    if (rejected) {
      NackPublish(seq);
    } else if (stored) {
      unconfirmed_.push_back(Unconfirmed{seq, persister->open_ticket()});
      connection_.WaitForDurable();
    } else if (unconfirmed_.empty()) {
      confirm_ready_upto_ = seq;
      connection_.MarkConfirmsPending(this);
    } else {
      unconfirmed_.push_back(Unconfirmed{seq, 0});
    }
  }
  return {};
}

bool Channel::OnDurable(uint64_t ticket, bool ok) {
  if (closing_) return false;
  while (!unconfirmed_.empty() && unconfirmed_.front().ticket <= ticket) {
    const Unconfirmed u = unconfirmed_.front();
    unconfirmed_.pop_front();
    if (u.nack) {  // refused by a queue
      FlushConfirms();
      WriteMethodFrame(connection_.output(), id_,
                       m::BasicNack{.delivery_tag = u.publish_seq, .multiple = false, .requeue = false});
      confirmed_upto_ = confirm_ready_upto_ = u.publish_seq;
      continue;
    }
    if (ok || u.ticket == 0) {
      confirm_ready_upto_ = u.publish_seq;
      continue;
    }
    // Never confirm what the store could not make durable.
    FlushConfirms();
    WriteMethodFrame(connection_.output(), id_,
                     m::BasicNack{.delivery_tag = u.publish_seq, .multiple = false, .requeue = false});
    confirmed_upto_ = confirm_ready_upto_ = u.publish_seq;
  }
  FlushConfirms();
  if (tx_commit_ticket_ != 0 && tx_commit_ticket_ <= ticket) {
    tx_commit_ticket_ = 0;
    if (ok) {
      WriteMethodFrame(connection_.output(), id_, m::TxCommitOk{});
    } else {
      CloseWithError(MethodError{Error{r::kInternalError, "the store could not make the transaction durable"},
                                 m::TxCommit::kClassId, m::TxCommit::kMethodId});
      return false;
    }
  }
  return !unconfirmed_.empty() || tx_commit_ticket_ != 0;
}

void Channel::FlushConfirms() {
  if (closing_ || confirm_ready_upto_ <= confirmed_upto_) return;
  const bool multiple = confirm_ready_upto_ - confirmed_upto_ > 1;
  connection_.broker().stats().Add(broker::MessageStat::kConfirm, confirm_ready_upto_ - confirmed_upto_);
  WriteMethodFrame(connection_.output(), id_, m::BasicAck{.delivery_tag = confirm_ready_upto_, .multiple = multiple});
  confirmed_upto_ = confirm_ready_upto_;
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

void Channel::Deliver(ChannelConsumer& consumer, broker::Queue&, broker::QueuedMessage message) {
  const uint64_t tag = next_delivery_tag_++;
  OutputBuffer& out = connection_.output();
  const broker::Message& msg = *message.msg;
  WriteMethodFrame(out, id_,
                   m::BasicDeliver{.consumer_tag = consumer.tag(), .delivery_tag = tag,
                                   .redelivered = message.redelivered, .exchange = msg.exchange(),
                                   .routing_key = msg.routing_key()});
  WriteContentFrames(out, id_, connection_.frame_max(), message.msg);
  connection_.broker().stats().AddDelivery(/*by_get=*/false, consumer.no_ack(), message.redelivered);
  if (!consumer.no_ack()) {
    unacked_.push_back(Unacked{tag, consumer.queue(), std::move(message), &consumer});
    ++unacked_count_;
    ++consumer.unacked;
  }
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
  std::vector<broker::Queue*> touched;
  for (size_t i = unacked_.size(); i-- > 0;) {
    Unacked& u = unacked_[i];
    if (u.settled) continue;
    if (std::find(touched.begin(), touched.end(), u.queue.get()) == touched.end()) touched.push_back(u.queue.get());
    ApplySettle(u, SettleKind::kRequeue);
  }
  unacked_.clear();
  tx_has_settles_ = false;
  for (broker::Queue* q : touched) q->Dispatch();
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
  assembling_.reset();
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
        r::kUnexpectedFrame, assembling_->message
                                 ? "expected content body, got non content body frame instead"
                                 : "expected content header for class 60, got non content header frame instead");
  }
  return std::visit([this](const auto& m) { return On(m); }, method);
}

}  // namespace warren::net
