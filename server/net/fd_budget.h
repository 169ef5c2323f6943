// The process's file descriptors, split between the store and client sockets so that sockets can
// never starve RocksDB (which fails writes, and so the broker, when it cannot open a file).
//
// Rule: kReserve descriptors (or half the limit, when that is smaller) are kept away from AMQP
// sockets; the store's table cache gets the reserve less kOtherDescriptors (listeners, HTTP,
// WAL, logs, ...), at least kStoreMinOpenFiles; AMQP connections get the rest, and
// --max-connections can only lower that.
#pragma once

#include <cstdint>
#include <string>

namespace warren::net {

struct FdBudget {
  uint64_t fd_limit = 0;          // RLIMIT_NOFILE soft limit in force
  uint64_t reserve = 0;           // kept for everything but AMQP sockets
  int store_max_open_files = 0;   // RocksDB's max_open_files
  uint64_t max_connections = 0;   // AMQP connections at most (never 0)
};

inline constexpr uint64_t kReserve = 1024;
inline constexpr uint64_t kOtherDescriptors = 64;
inline constexpr int kStoreMinOpenFiles = 20;  // RocksDB's own floor

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns the soft limit in force afterwards; on
// failure `*error` says why (the limit is then left as it was).
uint64_t RaiseFdLimit(std::string* error);

// `max_connections_flag` 0 means no limit of the user's own.
FdBudget PlanFdBudget(uint64_t fd_limit, uint64_t max_connections_flag);

}  // namespace warren::net
