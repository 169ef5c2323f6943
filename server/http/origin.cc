#include "server/http/origin.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cctype>

namespace warren::http {

namespace {

bool EqualNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool HostAllowed(std::string_view host, std::string_view hostname, const std::vector<std::string>& allowed) {
  host = Trim(host);
  if (host.empty()) return true;
  std::string_view name;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    const std::string literal(host.substr(1, close - 1));
    in6_addr v6{};
    return inet_pton(AF_INET6, literal.c_str(), &v6) == 1;
  }
  name = host.substr(0, host.rfind(':'));
  if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      return false;
    }
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // "localhost." is "localhost"
  if (name.empty()) return false;
  in_addr v4{};
  if (inet_pton(AF_INET, std::string(name).c_str(), &v4) == 1) return true;
  if (EqualNoCase(name, "localhost") || (!hostname.empty() && EqualNoCase(name, hostname))) return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) { return EqualNoCase(name, a); });
}

bool SameOrigin(std::string_view origin, std::string_view host) {
  origin = Trim(origin);
  host = Trim(host);
  size_t scheme_end = origin.find("://");
  if (scheme_end == std::string_view::npos || host.empty()) return false;
  const std::string_view scheme = origin.substr(0, scheme_end);
  std::string_view authority = origin.substr(scheme_end + 3);
  if (!EqualNoCase(scheme, "http") && !EqualNoCase(scheme, "https")) return false;
  if (EqualNoCase(authority, host)) return true;
  // An origin leaves out its scheme's default port; a Host may still name it.
  const std::string_view default_port = EqualNoCase(scheme, "http") ? ":80" : ":443";
  return host.size() == authority.size() + default_port.size() && EqualNoCase(host.substr(0, authority.size()), authority) &&
         host.substr(authority.size()) == default_port;
}

bool IsJsonContentType(std::string_view content_type) {
  const std::string_view media = Trim(content_type.substr(0, content_type.find(';')));
  return EqualNoCase(media, "application/json");
}

}  // namespace warren::http
