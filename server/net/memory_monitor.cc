#include "server/net/memory_monitor.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <asio/post.hpp>
#include <spdlog/spdlog.h>

namespace warren::net {

namespace {

constexpr auto kInterval = std::chrono::milliseconds(250);

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

MemoryMonitor::MemoryMonitor(asio::io_context& io, broker::MemoryAccount& account,
                             std::function<void(bool)> on_change)
    : io_(io), account_(account), on_change_(std::move(on_change)), checks_(io, kInterval, [this] { Check(); }) {
  // Runs inside an accounting update: only post, the check runs on a fresh stack.
  account_.set_on_limit_reached([this] { asio::post(io_, [this] { Check(); }); });
}

MemoryMonitor::~MemoryMonitor() { account_.set_on_limit_reached(nullptr); }

void MemoryMonitor::Check() {
  if (checks_.stopped()) return;
  resident_bytes_ = ResidentMemoryBytes();
  const bool alarm = account_.over_limit();
  // While over, the hook stays silent; once below, the next update reaching the limit reports.
  if (!alarm) account_.RearmLimitHook();
  if (alarm == alarm_) return;
  alarm_ = alarm;
  if (alarm) {
    spdlog::warn("memory alarm: {} bytes in use (messages {}, under assembly {}, connection buffers {}; "
                 "resident {}), at or above the memory high watermark of {}; blocking publishers",
                 account_.total(), account_.used(broker::MemoryUse::kMessages),
                 account_.used(broker::MemoryUse::kAssembly), account_.used(broker::MemoryUse::kConnectionBuffers),
                 resident_bytes_, account_.limit());
  } else {
    spdlog::info("memory alarm cleared: {} bytes in use (resident {}), below the high watermark of {}; "
                 "publishers unblocked",
                 account_.total(), resident_bytes_, account_.limit());
  }
  on_change_(alarm);
}

uint64_t ResidentMemoryBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

std::optional<uint64_t> ParseMemTotal(std::string_view meminfo) {
  constexpr std::string_view kKey = "MemTotal:";
  const size_t at = meminfo.find(kKey);
  if (at == std::string_view::npos || (at != 0 && meminfo[at - 1] != '\n')) return std::nullopt;
  std::string_view line = meminfo.substr(at + kKey.size());
  line = Trim(line.substr(0, line.find('\n')));
  uint64_t kib = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), kib);
  if (ec != std::errc() || Trim(std::string_view(end, line.data() + line.size() - end)) != "kB") return std::nullopt;
  return kib * 1024;
}

std::optional<uint64_t> ParseCgroupLimit(std::string_view text) {
  text = Trim(text);
  uint64_t bytes = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), bytes);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;  // "max", garbage
  return bytes;
}

std::vector<std::string> CgroupLimitFiles(std::string_view proc_self_cgroup) {
  std::vector<std::string> files;
  std::string v1_root;
  while (!proc_self_cgroup.empty()) {
    std::string_view line = proc_self_cgroup.substr(0, proc_self_cgroup.find('\n'));
    proc_self_cgroup.remove_prefix(std::min(proc_self_cgroup.size(), line.size() + 1));
    // hierarchy-id:controllers:path
    const size_t first = line.find(':');
    const size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    std::string path(Trim(line.substr(second + 1)));
    if (path == "/") path.clear();
    if (line.substr(0, first) == "0" && controllers.empty()) {
      if (!path.empty()) files.push_back("/sys/fs/cgroup" + path + "/memory.max");
      continue;
    }
    std::string_view list = controllers;
    while (!list.empty()) {
      const std::string_view name = list.substr(0, list.find(','));
      list.remove_prefix(std::min(list.size(), name.size() + 1));
      if (name == "memory" && !path.empty()) {
        files.push_back("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes");
      }
    }
  }
  files.push_back("/sys/fs/cgroup/memory.max");
  files.push_back("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  return files;
}

uint64_t TotalMemoryBytes() {
  uint64_t total = 0;
  if (auto meminfo = ReadFile("/proc/meminfo")) total = ParseMemTotal(*meminfo).value_or(0);
  const std::string cgroup = ReadFile("/proc/self/cgroup").value_or("");
  for (const std::string& file : CgroupLimitFiles(cgroup)) {
    auto text = ReadFile(file);
    if (!text) continue;
    // The first readable file is the process's cgroup; "max" or a huge v1 value means no limit.
    if (auto limit = ParseCgroupLimit(*text); limit && *limit > 0 && (total == 0 || *limit < total)) total = *limit;
    break;
  }
  return total;
}

}  // namespace warren::net
