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

template <typename M>
std::unexpected<MethodError> MethodFail(uint16_t code, std::string text) {
  return std::unexpected(MethodError{broker::Error{code, std::move(text)}, M::kClassId, M::kMethodId});
}

template <typename M>
std::unexpected<MethodError> MethodFail(const M&, broker::Error error) {
  return std::unexpected(MethodError{std::move(error), M::kClassId, M::kMethodId});
}

// Access control (RabbitMQ's table, rabbit_channel): 403 ACCESS_REFUSED for method M unless the
// connection's user has `access` to the resource.
template <typename M>
std::expected<void, MethodError> Channel::Permit(broker::AccessKind access, broker::ResourceKind resource,
                                                 std::string_view name) const {
  auto allowed = connection_.CheckAccess(access, resource, name);
  if (!allowed) return MethodFail<M>(allowed.error().code, std::move(allowed.error().text));
  return {};
}

// Topic permissions for method M: 403 ACCESS_REFUSED unless the user may use `routing_key` on
// `exchange` (checked only for topic exchanges; see broker/topic_permissions.h).
template <typename M>
std::expected<void, MethodError> PermitTopic(const Connection& connection, broker::AccessKind access,
                                             std::string_view exchange, std::string_view routing_key) {
  auto allowed = connection.CheckTopicAccess(access, exchange, routing_key);
  if (!allowed) return MethodFail<M>(allowed.error().code, std::move(allowed.error().text));
  return {};
}

// channel_publish.cc
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::BasicPublish&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::ConfirmSelect&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::TxSelect&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::TxCommit&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::TxRollback&);
// channel_delivery.cc
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::BasicAck&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::BasicReject&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::BasicNack&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::BasicRecoverAsync&);
template <>
std::expected<void, MethodError> Channel::On(const amqp::method::BasicRecover&);

}  // namespace warren::net
