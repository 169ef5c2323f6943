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
#include <type_traits>
#include <utility>

#include "server/amqp/methods.h"
#include "server/net/channel.h"
#include "server/net/connection.h"

namespace warren::net {

// The names the channel files write their handlers in (this header is theirs alone).
namespace r = amqp::reply;
namespace m = amqp::method;
using broker::Error;
using Op = broker::Operation;
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

// Access control (broker/authorize.h): 403 ACCESS_REFUSED for method M unless the connection's
// user may perform `request`.
template <typename M>
Status Channel::Permit(const broker::AccessRequest& request) const {
  auto allowed = connection_.Authorize(request);
  if (!allowed) return MethodFail<M>(std::move(allowed.error()));
  return {};
}

template <typename M, typename Op, typename Reply>
Status Channel::AskBroker(Op op, Reply reply) {
  connection_.CallBroker(
      *this, [side = broker_side(), op = std::move(op), reply = std::move(reply)]() mutable -> ChannelContinuation {
        auto result = op(side);
        return [result = std::move(result), reply = std::move(reply)](Channel& channel) mutable -> Status {
          if (!result) return MethodFail<M>(std::move(result.error()));
          if constexpr (std::is_void_v<typename decltype(result)::value_type>) {
            reply(channel);
          } else {
            reply(channel, *result);
          }
          return {};
        };
      });
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
