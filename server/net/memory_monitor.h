// Raises and clears the memory alarm (RabbitMQ's vm_memory_high_watermark): on while the bytes the
// broker's MemoryAccount counts are at or above its limit. Raised at once when an update reaches
// the limit (the account's hook posts a check), cleared by the check that finds it below, every
// 250 ms. Also samples the process's resident memory for the management API and metrics.
//
// Also here: the machine's memory as the relative watermark sees it (the smaller of MemTotal and
// the cgroup's limit) and the process's RSS, with the pure parsers they use.
//
// Thread: the broker thread (its timer runs on the io_context the Server uses).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>

#include "server/broker/memory.h"
#include "server/net/periodic_check.h"

namespace warren::net {

class MemoryMonitor {
 public:
  // `on_change(alarm)` runs whenever the alarm is raised or cleared. Sets the account's hook.
  MemoryMonitor(asio::io_context& io, broker::MemoryAccount& account, std::function<void(bool alarm)> on_change);
  ~MemoryMonitor();

  void Start() { checks_.Start(); }
  void Stop() { checks_.Stop(); }
  bool alarm() const { return alarm_; }
  // Resident memory at the last check.
  uint64_t resident_bytes() const { return resident_bytes_; }

 private:
  void Check();

  asio::io_context& io_;
  broker::MemoryAccount& account_;
  std::function<void(bool)> on_change_;
  uint64_t resident_bytes_ = 0;
  bool alarm_ = false;
  PeriodicCheck checks_;
};

// The process's resident set size (/proc/self/statm); 0 when unreadable.
uint64_t ResidentMemoryBytes();
// What a relative watermark is a fraction of: MemTotal, or the cgroup's memory limit when it is
// smaller (cgroup v2 memory.max, v1 memory.limit_in_bytes). 0 when /proc/meminfo is unreadable.
uint64_t TotalMemoryBytes();

// "MemTotal:  24683620 kB" in /proc/meminfo -> bytes.
std::optional<uint64_t> ParseMemTotal(std::string_view meminfo);
// A cgroup limit file's content: bytes, or nullopt for "max" (v2) and anything unparsable.
std::optional<uint64_t> ParseCgroupLimit(std::string_view text);
// The limit files to try, most specific first, for the process's /proc/self/cgroup content:
// v2 ("0::/path") -> /sys/fs/cgroup/path/memory.max, v1 ("N:...memory...:/path") ->
// /sys/fs/cgroup/memory/path/memory.limit_in_bytes, then the roots (inside a container the
// process's own cgroup is mounted there).
std::vector<std::string> CgroupLimitFiles(std::string_view proc_self_cgroup);

}  // namespace warren::net
