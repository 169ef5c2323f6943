// Channel: basic.publish and its content frames, routing, publisher confirms and transactions.
#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/persister.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/vhost.h"
#include "server/net/connection.h"
#include "server/net/frame_writer.h"
#include "server/net/internal/channel_methods.h"

namespace warren::net {

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
    if (!ex) return MethodFail<m::BasicPublish>(ex.error());
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

MethodResult<broker::Exchange*> Channel::PublishExchange(std::string_view name) {
  broker::Vhost& vhost = connection_.vhost();
  auto ex = vhost.FindExchange(name);
  if (!ex) return MethodFail<m::BasicPublish>(ex.error());
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
    if (!ttl) return MethodFail<m::BasicPublish>(ttl.error());
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
  if (connection_.broker().has_topic_permissions() && (*ex)->type() == broker::ExchangeType::kTopic) {
    auto ok = PermitTopic<m::BasicPublish>(connection_, AccessKind::kWrite, publish.exchange, publish.routing_key);
    if (!ok) return ok;
  }
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

}  // namespace warren::net
