#include "storage/info_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <thread>
#include <vector>

namespace warren::storage {

InfoLog::InfoLog(std::string dir, uint64_t max_bytes) : path_(std::move(dir) + "/LOG"), max_bytes_(max_bytes) {
  std::lock_guard<std::mutex> l(mu_);
  OpenLocked();
  if (size_ >= max_bytes_) RotateLocked();
}

InfoLog::~InfoLog() {
  if (fd_ >= 0) ::close(fd_);
}

void InfoLog::OpenLocked() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  struct stat st{};
  size_ = fd_ >= 0 && ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void InfoLog::RotateLocked() {
  if (fd_ >= 0) ::close(fd_);
  std::rename(path_.c_str(), (path_ + ".old").c_str());  // if it fails, LOG is reopened and grows on
  OpenLocked();
}

void InfoLog::Logv(const char* format, va_list ap) {
  // RocksDB's layout: local time with microseconds, the thread, the message.
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm t{};
  localtime_r(&secs, &t);
  char head[64];
  const int head_len = std::snprintf(head, sizeof head, "%04d/%02d/%02d-%02d:%02d:%02d.%06lld %zx ",
                                     t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                                     static_cast<long long>(micros),
                                     std::hash<std::thread::id>{}(std::this_thread::get_id()));
  va_list copy;
  va_copy(copy, ap);
  const int body_len = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (head_len < 0 || body_len < 0) return;
  std::vector<char> line(static_cast<size_t>(head_len) + static_cast<size_t>(body_len) + 2);
  std::copy(head, head + head_len, line.begin());
  std::vsnprintf(line.data() + head_len, static_cast<size_t>(body_len) + 1, format, ap);
  line[line.size() - 2] = '\n';

  std::lock_guard<std::mutex> l(mu_);
  if (fd_ < 0) OpenLocked();
  if (fd_ < 0) return;
  // One write per line, O_APPEND: lines from several threads do not interleave. A failed or
  // short write is dropped; the next line tries again.
  const ssize_t n = ::write(fd_, line.data(), line.size() - 1);
  if (n > 0) size_ += static_cast<uint64_t>(n);
  if (size_ >= max_bytes_) RotateLocked();
}

size_t InfoLog::GetLogFileSize() const {
  std::lock_guard<std::mutex> l(mu_);
  return size_;
}

}  // namespace warren::storage
