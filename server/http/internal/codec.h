// The small text codecs the management API needs around what httplib parses: percent-encoded
// path segments (httplib decodes a whole path, which would turn the vhost "%2F" into a
// separator) and base64 (basic auth, binary payloads). Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace warren::http::internal {

// "%2F" -> "/"; a malformed escape is kept as it is.
std::string DecodeSegment(std::string_view s);
// Escapes everything but RFC 3986's unreserved characters.
std::string EncodeSegment(std::string_view s);
// Standard base64 with padding.
std::string EncodeBase64(std::string_view in);
// Standard base64 (padding optional, whitespace ignored); nullopt when malformed.
std::optional<std::string> DecodeBase64(std::string_view in);

}  // namespace warren::http::internal
