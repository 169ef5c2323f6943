#include "server/net/fd_budget.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace warren::net {

uint64_t RaiseFdLimit(std::string* error) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    *error = std::string("getrlimit: ") + std::strerror(errno);
    return 1024;
  }
  if (limit.rlim_cur != limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      limit = raised;
    } else {
      *error = std::string("setrlimit: ") + std::strerror(errno);
    }
  }
  return limit.rlim_cur == RLIM_INFINITY ? uint64_t{1} << 20 : static_cast<uint64_t>(limit.rlim_cur);
}

FdBudget PlanFdBudget(uint64_t fd_limit, uint64_t max_connections_flag) {
  FdBudget b;
  b.fd_limit = fd_limit;
  b.reserve = std::min(kReserve, fd_limit / 2);
  b.store_max_open_files = static_cast<int>(
      std::max<uint64_t>(kStoreMinOpenFiles, b.reserve > kOtherDescriptors ? b.reserve - kOtherDescriptors : 0));
  b.max_connections = std::max<uint64_t>(1, fd_limit - b.reserve);
  if (max_connections_flag != 0) b.max_connections = std::min(b.max_connections, max_connections_flag);
  return b;
}

}  // namespace warren::net
