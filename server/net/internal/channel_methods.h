// What the three files of Channel share (channel.cc: the channel, exchange and queue classes,
// consumers, basic.get and dispatch; channel_publish.cc: publishing, confirms and transactions;
// channel_delivery.cc: deliveries, acknowledgements and requeueing): the method-error helpers,
// Channel::Permit, and the declarations of the method handlers defined outside channel.cc. An
// explicit specialization of Channel::On must be declared before HandleMethod's dispatch
// instantiates On for that method, or the "unimplemented" primary template would answer it.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include "server/amqp/methods.h"
#include "server/net/channel.h"
#include "server/net/connection.h"

namespace warren::net {

// The names the channel files write their handlers in (this header is theirs alone).
namespace r = amqp::reply;
namespace m = amqp::method;
using broker::AccessKind;
using broker::Error;
using broker::ResourceKind;
using Status = MethodResult<>;

// A broker error as the failure of method M.
template <typename M>
std::unexpected<MethodError> MethodFail(Error error) {
  return std::unexpected(MethodError{std::move(error), M::kClassId, M::kMethodId});
}

template <typename M>
std::unexpected<MethodError> MethodFail(uint16_t code, std::string text) {
  return MethodFail<M>(Error{code, std::move(text)});
}

template <typename M>
std::unexpected<MethodError> MethodFail(const M&, Error error) {
  return MethodFail<M>(std::move(error));
}

// Access control (RabbitMQ's table, rabbit_channel): 403 ACCESS_REFUSED for method M unless the
// connection's user has `access` to the resource.
template <typename M>
Status Channel::Permit(AccessKind access, ResourceKind resource, std::string_view name) const {
  auto allowed = connection_.CheckAccess(access, resource, name);
  if (!allowed) return MethodFail<M>(std::move(allowed.error()));
  return {};
}

// Topic permissions for method M: 403 ACCESS_REFUSED unless the user may use `routing_key` on
// `exchange` (checked only for topic exchanges; see broker/topic_permissions.h).
template <typename M>
Status PermitTopic(const Connection& connection, AccessKind access, std::string_view exchange,
                   std::string_view routing_key) {
  auto allowed = connection.CheckTopicAccess(access, exchange, routing_key);
  if (!allowed) return MethodFail<M>(std::move(allowed.error()));
  return {};
}

// channel_publish.cc
template <>
Status Channel::On(const m::BasicPublish&);
template <>
Status Channel::On(const m::ConfirmSelect&);
template <>
Status Channel::On(const m::TxSelect&);
template <>
Status Channel::On(const m::TxCommit&);
template <>
Status Channel::On(const m::TxRollback&);
// channel_delivery.cc
template <>
Status Channel::On(const m::BasicAck&);
template <>
Status Channel::On(const m::BasicReject&);
template <>
Status Channel::On(const m::BasicNack&);
template <>
Status Channel::On(const m::BasicRecoverAsync&);
template <>
Status Channel::On(const m::BasicRecover&);

}  // namespace warren::net
