// Watches the free space of the data directory's file system and raises the disk alarm when it
// falls below a limit, as RabbitMQ's disk_free_limit does: publishing connections are then
// blocked (connection.blocked) until space comes back, so the store never runs out of disk in
// the middle of a write and nothing unwritable is ever confirmed.
//
// Thread: the broker thread (its timer runs on the io_context the Server uses).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <asio/io_context.hpp>

#include "server/net/periodic_check.h"

namespace warren::net {

class DiskMonitor {
 public:
  // `on_change(alarm)` runs whenever the alarm is raised or cleared.
  DiskMonitor(asio::io_context& io, std::string path, uint64_t free_limit_bytes,
              std::function<void(bool alarm)> on_change);

  void Start() { checks_.Start(); }
  void Stop() { checks_.Stop(); }
  bool alarm() const { return alarm_; }
  // Free bytes at the last check.
  uint64_t free_bytes() const { return free_bytes_; }
  uint64_t free_limit() const { return limit_; }

 private:
  void Check();

  std::string path_;
  uint64_t limit_;
  std::function<void(bool)> on_change_;
  uint64_t free_bytes_ = 0;
  bool alarm_ = false;
  PeriodicCheck checks_;
};

}  // namespace warren::net
