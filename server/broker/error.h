// The error type of every broker operation: an AMQP reply code and RabbitMQ-style reply text.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

#include "server/amqp/constants.h"

namespace warren::broker {

struct Error {
  uint16_t code = 0;
  std::string text;  // without the "NOT_FOUND - " prefix; the channel layer adds it
};

template <typename T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> Fail(uint16_t code, std::string text) {
  return std::unexpected(Error{code, std::move(text)});
}

}  // namespace warren::broker
