// What counts as this machine's loopback, for the rules that trust a peer or a URL for being
// local: the local admin token (warrenctl sends it only to a loopback URL, the management API
// accepts it only from a loopback peer) and loopback-only users over HTTP. Pure functions,
// shared by warren-server and warrenctl.
#pragma once

#include <string_view>

namespace warren::http {

// A numeric address in 127.0.0.0/8, ::1, or an IPv4-mapped ::ffff:127.x.y.z; brackets around
// an IPv6 address are allowed. Names (even "localhost") are not addresses.
bool IsLoopbackAddress(std::string_view address);
// IsLoopbackAddress, or the name "localhost" (RFC 6761: it always names the loopback).
bool IsLoopbackHost(std::string_view host);

}  // namespace warren::http
