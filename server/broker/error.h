// The error type of every broker operation: an AMQP reply code and RabbitMQ-style reply text.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <utility>

#include "server/amqp/constants.h"

namespace warren::broker {

struct Error {
  uint16_t code = 0;
  std::string text;  // without the "NOT_FOUND - " prefix; the channel layer adds it
};

// std::expected that must not be ignored (libstdc++'s is not [[nodiscard]]). Converts both ways,
// so the monadic operations and code written against std::expected keep working.
template <typename T, typename E>
class [[nodiscard]] Expected : public std::expected<T, E> {
 public:
  using std::expected<T, E>::expected;
  Expected() = default;
  Expected(std::expected<T, E> e) : std::expected<T, E>(std::move(e)) {}  // NOLINT: implicit by design
};

template <typename T = void>
using Result = Expected<T, Error>;

inline std::unexpected<Error> Fail(uint16_t code, std::string text) {
  return std::unexpected(Error{code, std::move(text)});
}

}  // namespace warren::broker
