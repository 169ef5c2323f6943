#include "server/http/loopback.h"

#include <arpa/inet.h>
#include <strings.h>

#include <cstring>
#include <string>

namespace warren::http {

bool IsLoopbackAddress(std::string_view address) {
  if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  const std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

bool IsLoopbackHost(std::string_view host) {
  return (host.size() == 9 && strncasecmp(host.data(), "localhost", 9) == 0) || IsLoopbackAddress(host);
}

}  // namespace warren::http
