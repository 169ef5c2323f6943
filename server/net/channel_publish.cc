// Channel: basic.publish and its content frames, routing, publisher confirms and transactions.
#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/persister.h"
#include "server/broker/publish.h"
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
  // Everything that needs only the method is checked before any content is taken in.
  if (auto ok = PermitPublish(p.exchange, p.routing_key); !ok) return ok;
  if (auto ex = PublishExchange(p.exchange); !ex) return std::unexpected(ex.error());
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
    // The acknowledgement timer may have fired meanwhile and found nothing live.
    if (const Unacked* first = FirstAckDeadline()) ArmAckTimer(first->ack_deadline);
  }
  WriteMethodFrame(connection_.output(), id_, m::TxRollbackOk{});
  return {};
}

// ---- content ----

Status Channel::HandleContentHeader(const amqp::ContentHeader& header) {
  if (closing_) return {};
  if (!assembling_ || assembling_->builder) {
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
    DropAssembly();
    return MethodFail<m::BasicPublish>(
        r::kPreconditionFailed,
        fmt::format("message size {} is larger than configured max size {}", header.body_size, max));
  }
  if (auto ok = CheckPublishHeader(header.raw_properties); !ok) {
    DropAssembly();
    return ok;
  }
  assembling_->builder.emplace(assembling_->exchange, assembling_->routing_key, header.raw_properties,
                               header.body_size, &connection_.broker().memory());
  if (auto ok = ChargeAssembly(assembling_->builder->allocated()); !ok) return ok;
  if (header.body_size == 0) return FinishPublish();
  return {};
}

Status Channel::HandleContentBody(std::string_view chunk) {
  if (closing_) return {};
  if (!assembling_ || !assembling_->builder) {
    return std::unexpected(MethodError{
        Error{r::kUnexpectedFrame, "expected method frame, got non method frame instead"}, 0, 0});
  }
  broker::MessageBuilder& builder = *assembling_->builder;
  if (chunk.size() > builder.remaining()) {
    return MethodFail<m::BasicPublish>(
        r::kUnexpectedFrame,
        fmt::format("content body exceeds the declared body size {}", builder.body_size()));
  }
  if (auto ok = ChargeAssembly(builder.AllocatedAfter(chunk.size())); !ok) return ok;
  builder.Append(chunk);
  if (builder.complete()) return FinishPublish();
  return {};
}

Status Channel::ChargeAssembly(uint64_t allocated) {
  if (allocated <= assembly_charge_) return {};
  if (!connection_.ChargeAssembly(allocated - assembly_charge_)) {
    return MethodFail<m::BasicPublish>(
        r::kResourceError, fmt::format("content being assembled on this connection would exceed {} bytes",
                                       connection_.limits().max_assembly_bytes));
  }
  assembly_charge_ = allocated;
  return {};
}

void Channel::DropAssembly() {
  connection_.ReleaseAssembly(assembly_charge_);
  assembly_charge_ = 0;
  assembling_.reset();
}

Status Channel::FinishPublish() {
  PendingPublish publish{std::move(assembling_->exchange), std::move(assembling_->routing_key),
                         assembling_->mandatory, assembling_->builder->Finish(), std::nullopt};
  DropAssembly();
  if (amqp::PeekReplyTo(publish.message->raw_properties()) == broker::kDirectReplyTo) {
    // The reply consumer was there at the content header; it may have been cancelled since.
    if (reply_to_name_.empty()) {
      return MethodFail<m::BasicPublish>(r::kPreconditionFailed, "fast reply consumer does not exist");
    }
    broker::MessageRef rewritten = broker::WithReplyTo(*publish.message, reply_to_name_);
    if (rewritten) publish.message = std::move(rewritten);
  }
  if (tx_mode_) {
    tx_publishes_.push_back(std::move(publish));
    return {};
  }
  return Route(publish);
}

// Write on the exchange (and the topic permission for the routing key). Publishing is the hot
// path: the last exchange found writable is remembered until the broker's users/vhosts/
// permissions change, unless topic permissions exist (their answer depends on the key).
Status Channel::PermitPublish(std::string_view exchange, std::string_view routing_key) {
  const uint64_t generation = connection_.broker().access_generation();
  const bool memoizable = !connection_.broker().has_topic_permissions();
  if (memoizable && publish_permit_generation_ == generation && publish_permit_exchange_ == exchange) return {};
  if (auto ok = Permit<m::BasicPublish>({.op = Op::kPublish, .name = exchange, .routing_key = routing_key}); !ok) {
    return ok;
  }
  if (memoizable) {
    publish_permit_generation_ = generation;
    publish_permit_exchange_.assign(exchange);
  }
  return {};
}

MethodResult<broker::Exchange*> Channel::PublishExchange(std::string_view name) {
  broker::Vhost& vhost = connection_.vhost();
  PublishExchangeMemo& memo = publish_exchange_;
  if (memo.exchange != nullptr && memo.removals == vhost.exchange_removals() && memo.name == name) {
    return memo.exchange;
  }
  auto ex = broker::FindPublishExchange(vhost, name);
  if (!ex) return MethodFail<m::BasicPublish>(std::move(ex.error()));
  memo.name.assign(name);
  memo.exchange = *ex;
  memo.removals = vhost.exchange_removals();
  return *ex;
}

Status Channel::CheckPublishHeader(std::string_view raw_properties) {
  if (amqp::PeekReplyTo(raw_properties) == broker::kDirectReplyTo && reply_to_name_.empty()) {
    return MethodFail<m::BasicPublish>(r::kPreconditionFailed, "fast reply consumer does not exist");
  }
  if (auto ok = broker::CheckPublishProperties(connection_.broker(), connection_.user_name(), raw_properties); !ok) {
    return MethodFail<m::BasicPublish>(std::move(ok.error()));
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
  // Looked up again: in a transaction the exchange may have gone since basic.publish.
  auto ex = PublishExchange(publish.exchange);
  if (!ex) return std::unexpected(ex.error());
  const broker::PublishOutcome outcome = broker::Publish(connection_.broker(), connection_.vhost(), **ex,
                                                     publish.message, publish.mandatory, route_scratch_);
  if (!outcome.routed && publish.mandatory) {
    OutputBuffer& out = connection_.output();
    const broker::Message& msg = *publish.message;
    WriteMethodFrame(out, id_,
                     m::BasicReturn{.reply_code = r::kNoRoute, .reply_text = "NO_ROUTE",
                                    .exchange = msg.exchange(), .routing_key = msg.routing_key()});
    WriteContentFrames(out, id_, connection_.frame_max(), publish.message);
  }
  if (outcome.pause_for != nullptr) connection_.PausePublishingFor(*outcome.pause_for);
  broker::Persister* persister = connection_.broker().persister();
  if (outcome.stored) last_store_ticket_ = persister->open_ticket();
  if (outcome.store_congested) connection_.PausePublishingForStore(*persister);
  if (confirm_mode_) {
    const uint64_t seq = next_publish_seq_++;
    if (outcome.rejected) {
      NackPublish(seq);
    } else if (outcome.stored) {
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
