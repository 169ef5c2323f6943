// Authorization: the one function that decides whether a user may perform an operation, with
// RabbitMQ 3.10's access-control table (rabbit_channel's check_*_permitted calls):
//
//   operation                        needs
//   exchange.declare (not passive)   configure on the exchange; a *new* exchange with an
//                                    `alternate-exchange` argument also read on it and write on
//                                    the alternate
//   exchange.delete                  configure on the exchange
//   queue.declare (not passive)      configure on the queue; a *new* queue with an
//                                    `x-dead-letter-exchange` argument also read on it and write on
//                                    that exchange
//   queue.delete                     configure on the queue
//   queue.bind / queue.unbind        write on the queue, read on the exchange, topic read of the key
//   exchange.bind / exchange.unbind  write on the destination, read on the source, topic read of key
//   basic.publish                    write on the exchange, topic write of the routing key
//   basic.consume, basic.get,        read on the queue
//   queue.purge
//   read or change a policy          the administrator tag, or policymaker and a permission in
//                                    the vhost ("User not authorised to access object")
//   read or change an operator       the administrator tag ("Not administrator user")
//   policy
//
// The default exchange ("") is left to the vhost where RabbitMQ refuses it before any permission
// (declaring, deleting or binding it: "operation not permitted on the default exchange"); it is
// checked as "amq.default" where it is used (publishing). Topic permissions apply to topic
// exchanges only (broker/topic_permissions.h).
//
// The AMQP channel (net/channel*.cc) and the management API (http/internal) are adapters: they
// describe the operation in an AccessRequest, call Authorize, and turn a refusal into their own
// reply (channel.close 403; HTTP 401 with the same text).
//
// Thread: the broker thread (reads the broker's live permissions and the vhost's objects).
#pragma once

#include <optional>
#include <string_view>

#include "server/amqp/field_table.h"
#include "server/broker/error.h"

namespace warren::broker {

class Broker;
class Vhost;

enum class Operation {
  kDeclareExchange,
  kDeleteExchange,
  kDeclareQueue,
  kDeleteQueue,
  kBindQueue,
  kUnbindQueue,
  kBindExchange,
  kUnbindExchange,
  kPublish,
  kConsume,
  kGet,
  kPurge,
  kReadPolicy,
  kChangePolicy,
  kReadOperatorPolicy,
  kChangeOperatorPolicy,
};

struct AccessRequest {
  Operation op;
  // The exchange or queue operated on; for bindings the destination.
  std::string_view name;
  // Bindings: the source exchange.
  std::string_view source = {};
  // Bindings: the binding key; publishing: the routing key. nullopt: not known yet (the management
  // API authorizes before it reads the request body), so the topic permission is not checked.
  std::optional<std::string_view> routing_key = std::string_view();
  // Declares: the arguments (alternate-exchange, x-dead-letter-exchange). nullptr: not known yet,
  // so only the permission that does not depend on them is checked.
  const amqp::FieldTable* arguments = nullptr;
  // Passive declares need no permission.
  bool passive = false;
};

// OK when `user` may perform `request` in `vhost`; otherwise 403 ACCESS_REFUSED with RabbitMQ's
// text ("access to exchange 'x' in vhost '/' refused for user 'u'", or "access to topic 'k' in
// exchange 'x' in vhost '/' refused for user 'u'").
Result<> Authorize(const Broker& broker, std::string_view user, const Vhost& vhost, const AccessRequest& request);

}  // namespace warren::broker
