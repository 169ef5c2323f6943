// Memory accounting and the memory high watermark (RabbitMQ's vm_memory_high_watermark).
//
// The broker counts the bytes that clients make it hold, where they are added and removed:
// message blocks (bodies with their exchange, routing key and properties: in queues, unacked,
// in tx buffers, under assembly, pinned by output buffers; a message shared by many queues and
// connections is one block, counted once), content under assembly that is not yet a message,
// and connection buffers (read buffers and the bytes copied into output buffers). Each update is
// an add and a compare: no allocation, no clock, no I/O.
//
// The limit is the memory high watermark; the net layer raises the memory alarm (publishers
// blocked) while total() >= limit() and clears it below (docs/ARCHITECTURE.md, "Flow control").
//
// Thread: owned by the broker thread; no method may be called from another thread.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <limits>
#include <string>
#include <string_view>

namespace warren::broker {

enum class MemoryUse : uint8_t { kMessages, kAssembly, kConnectionBuffers };
inline constexpr size_t kMemoryUseCount = 3;
// "messages", "assembly", "connection_buffers".
std::string_view MemoryUseName(MemoryUse use);

class MemoryAccount {
 public:
  static constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

  void Add(MemoryUse use, uint64_t bytes) {
    used_[static_cast<size_t>(use)] += bytes;
    total_ += bytes;
    if (total_ >= limit_ && !limit_reported_) [[unlikely]] ReportLimitReached();
  }
  // REQUIRES: `bytes` were added to `use` before.
  void Sub(MemoryUse use, uint64_t bytes) {
    used_[static_cast<size_t>(use)] -= bytes;
    total_ -= bytes;
  }

  uint64_t total() const { return total_; }
  uint64_t used(MemoryUse use) const { return used_[static_cast<size_t>(use)]; }
  // kNoLimit until set. 0 is a valid limit: every publisher is blocked (as RabbitMQ's 0).
  uint64_t limit() const { return limit_; }
  void set_limit(uint64_t limit) { limit_ = limit; }
  bool over_limit() const { return total_ >= limit_; }

  // `hook` runs inside the Add that reaches the limit, once until RearmLimitHook: it must not
  // touch broker state (the net layer posts an alarm check to a fresh stack).
  void set_on_limit_reached(std::function<void()> hook) { on_limit_reached_ = std::move(hook); }
  // The alarm check ran: the next Add at or above the limit reports again.
  void RearmLimitHook() { limit_reported_ = false; }

 private:
  void ReportLimitReached();

  std::array<uint64_t, kMemoryUseCount> used_{};
  uint64_t total_ = 0;
  uint64_t limit_ = kNoLimit;
  bool limit_reported_ = false;
  std::function<void()> on_limit_reached_;
};

// An amount of bytes: an integer, alone or followed by one of RabbitMQ's units: k, K, KiB, kiB
// (2^10), kB, KB (10^3), M, m, MiB (2^20), MB (10^6), G, g, GiB (2^30), GB (10^9)
// (rabbit_resource_monitor_misc:parse_information_unit). The error says what is wrong.
std::expected<uint64_t, std::string> ParseByteAmount(std::string_view text);

// --memory-high-watermark: a fraction of the machine's memory (RabbitMQ's
// vm_memory_high_watermark.relative, "0.4") or an amount (vm_memory_high_watermark.absolute:
// bytes, "1073741824", or with RabbitMQ's units, "512MiB", "1GB").
struct MemoryWatermark {
  bool relative = true;
  double fraction = 0.4;  // relative: 0 <= fraction <= 1
  uint64_t bytes = 0;     // absolute
};
// A decimal number in [0, 1] ("0.4", "1", "0") is relative; an integer above 1, or any integer
// with a unit (ParseByteAmount), is absolute. The error says what is wrong.
std::expected<MemoryWatermark, std::string> ParseMemoryWatermark(std::string_view text);
// The limit in bytes: the fraction of `total_memory` (the machine's or the cgroup's), or the
// absolute amount.
uint64_t MemoryLimit(const MemoryWatermark& watermark, uint64_t total_memory);

}  // namespace warren::broker
