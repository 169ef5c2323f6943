#include "server/net/disk_monitor.h"

#include <sys/statvfs.h>

#include <chrono>

#include <spdlog/spdlog.h>

namespace warren::net {

namespace {
constexpr auto kInterval = std::chrono::milliseconds(250);
}

DiskMonitor::DiskMonitor(asio::io_context& io, std::string path, uint64_t free_limit_bytes,
                         std::function<void(bool)> on_change)
    : path_(std::move(path)),
      limit_(free_limit_bytes),
      on_change_(std::move(on_change)),
      checks_(io, kInterval, [this] { Check(); }) {}

void DiskMonitor::Check() {
  struct statvfs st {};
  if (statvfs(path_.c_str(), &st) != 0) return;  // keep the last verdict
  free_bytes_ = uint64_t{st.f_bavail} * st.f_frsize;
  const bool alarm = free_bytes_ < limit_;
  if (alarm == alarm_) return;
  alarm_ = alarm;
  if (alarm) {
    spdlog::warn("disk alarm: {} bytes free on the data directory's file system, below the limit of {}; "
                 "blocking publishers",
                 free_bytes_, limit_);
  } else {
    spdlog::info("disk alarm cleared: {} bytes free; publishers unblocked", free_bytes_);
  }
  on_change_(alarm);
}

}  // namespace warren::net
