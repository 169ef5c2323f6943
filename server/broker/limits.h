// Length limits on names and keys that every entry point shares. AMQP carries queue, exchange
// and consumer names and routing/binding keys as short strings (at most 255 bytes), so over AMQP
// nothing longer can arrive; the management API and definitions import take JSON and URLs, which
// could carry any length. The broker functions both adapters call (declare, bind, add vhost/user,
// publish, definitions import) check with CheckNameLength, so a name accepted over HTTP can always
// be used, stored and exported over AMQP as well.
#pragma once

#include <cstddef>
#include <string_view>

#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/error.h"

namespace warren::broker {

inline constexpr size_t kMaxNameBytes = 255;

// OK when `value` fits a short string; otherwise 406 PRECONDITION_FAILED (HTTP: 400) with
// RabbitMQ's text for an over-long queue name: "queue should be less than 255 bytes, actually
// was 300". `what` names the field ("queue", "exchange", "routing_key", "vhost", "user").
inline Result<> CheckNameLength(std::string_view what, std::string_view value) {
  if (value.size() <= kMaxNameBytes) return {};
  return Fail(amqp::reply::kPreconditionFailed,
              fmt::format("{} should be less than {} bytes, actually was {}", what, kMaxNameBytes, value.size()));
}

}  // namespace warren::broker
