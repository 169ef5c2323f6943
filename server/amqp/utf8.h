// UTF-8 validation, as RabbitMQ applies it to the short strings of incoming methods.
#pragma once

#include <string_view>

namespace warren::amqp {

// Whether `s` is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800 to
// U+DFFF), nothing above U+10FFFF, no truncated sequence.
bool IsValidUtf8(std::string_view s);

}  // namespace warren::amqp
