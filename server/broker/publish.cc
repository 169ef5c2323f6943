#include "server/broker/publish.h"

#include <algorithm>

#include <fmt/format.h>

#include "server/amqp/properties.h"
#include "server/broker/broker.h"
#include "server/broker/delayed.h"
#include "server/broker/persister.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/stream.h"
#include "server/broker/vhost.h"

namespace warren::broker {

namespace r = amqp::reply;

Result<Exchange*> FindPublishExchange(Vhost& vhost, std::string_view name) {
  auto ex = vhost.FindExchange(name);
  if (!ex) return ex;
  if ((*ex)->options().internal) {
    return Fail(r::kAccessRefused, fmt::format("cannot publish to internal exchange '{}' in vhost '{}'", name,
                                               vhost.name()));
  }
  return ex;
}

Result<> CheckPublishProperties(const Broker& broker, std::string_view user, std::string_view raw_properties) {
  if (auto claimed = amqp::PeekUserId(raw_properties); claimed && *claimed != user) [[unlikely]] {
    const User* u = broker.FindUser(user);
    const bool impersonator =
        u != nullptr && std::find(u->tags.begin(), u->tags.end(), "impersonator") != u->tags.end();
    if (!impersonator) {
      return Fail(r::kPreconditionFailed,
                  fmt::format("user_id property set to '{}' but authenticated user was '{}'", *claimed, user));
    }
  }
  if (auto expiration = amqp::PeekExpiration(raw_properties)) [[unlikely]] {
    if (auto ttl = ParseExpiration(*expiration); !ttl) return std::unexpected(ttl.error());
  }
  return {};
}

namespace {

PublishOutcome Deliver(Broker& broker, Vhost& vhost, const Exchange& exchange, const MessageRef& message,
                       bool mandatory, std::vector<Queue*>& scratch) {
  PublishOutcome out;
  vhost.Route(exchange, *message, scratch);
  out.routed = !scratch.empty();
  if (!out.routed && exchange.name().empty() && message->routing_key().starts_with(kDirectReplyToPrefix)) {
    // A direct reply: straight to the requesting channel, if it is still there.
    DirectReplyTarget* target = broker.direct_replies().Find(vhost.name(), message->routing_key());
    out.routed = target != nullptr && target->DeliverReply(message);
  }
  if (!out.routed) broker.stats().Add(mandatory ? MessageStat::kReturnUnroutable : MessageStat::kDropUnroutable);
  // x-overflow=reject-publish: a full queue refuses the message (routed all the same: no return).
  std::erase_if(scratch, [&](Queue* q) {
    if (!q->RejectsPublish(message)) return false;
    out.rejected = true;
    return true;
  });
  Persister* persister = broker.persister();
  if (persister != nullptr && persister->enabled() && message->persistent()) {
    size_t durable = 0;
    // A stream writes its own entry (with its offset header), never a reference to a shared body.
    for (Queue* q : scratch) durable += q->on_disk() && q->stream() == nullptr ? 1 : 0;
    if (durable > 1) {
      // One body for all the durable queues; each gets a small index entry pointing at it.
      const uint64_t body_id = persister->NextBodyId();
      persister->batch().PutBody(body_id, storage::MessageData{message->exchange(), message->routing_key(),
                                                               message->raw_properties(), message->body()});
      persister->AddBodyRefs(body_id, static_cast<uint32_t>(durable));
      message->set_body_id(body_id);
    }
  }
  for (Queue* q : scratch) {
    out.stored = q->Enqueue(message) || out.stored;
    if (out.pause_for == nullptr && q->ShouldPausePublishers()) out.pause_for = q;
  }
  if (out.stored) persister->CountPersistentPublish();
  out.store_congested = persister != nullptr && persister->congested();
  return out;
}

}  // namespace

PublishOutcome Publish(Broker& broker, Vhost& vhost, const Exchange& exchange, const MessageRef& message,
                       bool mandatory, std::vector<Queue*>& scratch) {
  broker.stats().Add(MessageStat::kPublish);
  DelayedSchedule* delayed = exchange.delayed();
  if (delayed == nullptr) [[likely]] {
    return Deliver(broker, vhost, exchange, message, mandatory, scratch);
  }
  const std::optional<int64_t> delay = DelayOf(message->raw_properties());
  if (!delay) return Deliver(broker, vhost, exchange, message, mandatory, scratch);
  PublishOutcome out;
  broker.stats().Add(mandatory ? MessageStat::kReturnUnroutable : MessageStat::kDropUnroutable);
  out.stored = delayed->Add(*message, *delay);
  Persister* persister = broker.persister();
  if (out.stored) persister->CountPersistentPublish();
  out.store_congested = persister != nullptr && persister->congested();
  return out;
}

void PublishDue(Broker& broker, Vhost& vhost, const Exchange& exchange, const MessageRef& message,
                std::vector<Queue*>& scratch) {
  Deliver(broker, vhost, exchange, message, false, scratch);
}

}  // namespace warren::broker
