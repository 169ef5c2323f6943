// The checks that keep a web page in someone's browser from using the management API: pure
// functions of request headers, applied by ManagementServer before anything else.
//
// - DNS rebinding: a page from evil.example can make its own name resolve to 127.0.0.1 and then
//   read and write the API "same-origin", from a loopback peer (where guest/guest works). Its
//   requests still carry `Host: evil.example`, so a Host that is not an IP literal, localhost,
//   this machine's hostname or a name the operator listed (--management-allowed-hosts) is
//   refused.
// - Cross-site writes: a form or fetch from another origin carries an Origin header naming that
//   origin; a write whose Origin does not name the Host it was sent to is refused, and a write
//   body must be application/json (which a cross-site form cannot send without a CORS preflight,
//   which the API never grants).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace warren::http {

// `host` is a Host header value (name or address, optional :port; IPv6 in brackets). An empty
// one (HTTP/1.0 clients send none) passes: no browser sends a request without it.
bool HostAllowed(std::string_view host, std::string_view hostname, const std::vector<std::string>& allowed);
// Whether `origin` (an Origin header: scheme://host[:port], or "null") names `host`.
bool SameOrigin(std::string_view origin, std::string_view host);
// Whether a Content-Type header value is application/json (parameters such as charset allowed).
bool IsJsonContentType(std::string_view content_type);

}  // namespace warren::http
