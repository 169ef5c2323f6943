// How a channel method fails: the broker error with the method it answers, for channel.close or
// connection.close.
#pragma once

#include <cstdint>

#include "server/broker/error.h"

namespace warren::net {

struct MethodError {
  broker::Error error;
  uint16_t class_id = 0;
  uint16_t method_id = 0;
};

template <typename T = void>
using MethodResult = broker::Expected<T, MethodError>;

}  // namespace warren::net
