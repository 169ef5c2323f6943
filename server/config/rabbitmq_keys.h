// RabbitMQ 3.10's configuration keys (its rabbit, management and prometheus schemas) that Warren
// has no setting for, sorted into the two ways settings.cc treats them: refused (the start stops,
// with the reason) or ignored (accepted, named in a warning). A key that RabbitMQ does not have
// is neither: it is unknown, and also stops the start.
#pragma once

#include <optional>
#include <string_view>

namespace warren::config {

inline constexpr std::string_view kNoTls =
    "this TLS setting is not supported yet (Warren has ssl_options.cacertfile, certfile, keyfile, verify, "
    "fail_if_no_peer_cert, versions.N and ciphers.N, management.ssl.port, cacertfile, certfile and keyfile); remove "
    "it rather than have TLS served otherwise than asked";

// Why Warren refuses `key`: serving without it would not be what the operator asked for.
std::optional<std::string_view> RefusedReason(std::string_view key);

// `key` changes nothing Warren does, or tunes what Warren lacks (clustering, Erlang, log exchanges).
bool IsIgnoredRabbitMqKey(std::string_view key);

}  // namespace warren::config
