// Publishing: the one entry point through which a complete message enters the broker, used by
// basic.publish (net/channel_publish.cc) and the management API's POST
// /api/exchanges/{vhost}/{name}/publish (http/internal/routes_messages.cc). Around it the adapters
// keep only what is theirs: AMQP's confirms, basic.return and pausing the socket; HTTP's reply.
//
// The checks RabbitMQ makes on a publish, in its order, split so the AMQP path can make each as
// soon as it has what the check needs (basic.publish, then the content header):
//   1. Authorize(kPublish) (broker/authorize.h): write on the exchange, topic write of the key;
//   2. FindPublishExchange: 404 when missing, 403 when internal;
//   3. CheckPublishProperties: user_id and expiration (406).
//
// Thread: the broker thread.
#pragma once

#include <string_view>
#include <vector>

#include "server/broker/error.h"
#include "server/broker/message.h"

namespace warren::broker {

class Broker;
class Exchange;
class Queue;
class Vhost;

// The exchange `name` of `vhost` as a publish target: 404 NOT_FOUND "no exchange 'x' in vhost
// '/'" when missing, 403 ACCESS_REFUSED when internal.
Result<Exchange*> FindPublishExchange(Vhost& vhost, std::string_view name);

// RabbitMQ's checks of a publish's properties: a user_id property must name `user` unless the
// user is tagged `impersonator` (406 PRECONDITION_FAILED "user_id property set to 'a' but
// authenticated user was 'b'"); an expiration must be a valid TTL (406, ParseExpiration's text).
Result<> CheckPublishProperties(const Broker& broker, std::string_view user, std::string_view raw_properties);

struct PublishOutcome {
  bool routed = false;    // reached a queue (or a direct reply-to consumer)
  bool rejected = false;  // a queue with x-overflow=reject-publish refused it: nack a confirm
  bool stored = false;    // written to the store's open batch (durable at Persister::open_ticket())
  // Credit flow: a queue whose consumers the publisher outran (pause it until the queue drains),
  // and whether the store's writer is behind (pause it until the writer catches up).
  Queue* pause_for = nullptr;
  bool store_congested = false;
};

// Routes `message` from `exchange` (checked as above) and enqueues it everywhere it goes: the
// publish and unroutable (returned when `mandatory`, dropped otherwise) counters, direct reply-to
// from the default exchange, reject-publish queues, and the store records: one shared body and a
// reference per durable queue when several durable queues take a persistent message, an inline
// record in each otherwise. `scratch` is reused between calls so routing does not allocate.
// To an x-delayed-message exchange, a message with an x-delay (broker/delayed.h) is only stored
// and held: `stored`, not `routed` (so, as with the plugin, a mandatory one is returned at once
// with NO_ROUTE, and is still routed when due).
PublishOutcome Publish(Broker& broker, Vhost& vhost, const Exchange& exchange, const MessageRef& message,
                       bool mandatory, std::vector<Queue*>& scratch);

// A held delayed message is due: routed and enqueued as Publish does (not counted again as a
// publish, never returned).
void PublishDue(Broker& broker, Vhost& vhost, const Exchange& exchange, const MessageRef& message,
                std::vector<Queue*>& scratch);

}  // namespace warren::broker
