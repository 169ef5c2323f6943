#include "server/broker/memory.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace warren::broker {

std::string_view MemoryUseName(MemoryUse use) {
  switch (use) {
    case MemoryUse::kMessages:
      return "messages";
    case MemoryUse::kAssembly:
      return "assembly";
    case MemoryUse::kConnectionBuffers:
      return "connection_buffers";
  }
  return "unknown";
}

void MemoryAccount::ReportLimitReached() {
  limit_reported_ = true;
  if (on_limit_reached_) on_limit_reached_();
}

namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

// RabbitMQ's information units (rabbit_resource_monitor_misc:parse_information_unit).
constexpr Unit kUnits[] = {
    {"k", 1ull << 10},   {"K", 1ull << 10},   {"kiB", 1ull << 10}, {"KiB", 1ull << 10}, {"kib", 1ull << 10},
    {"KIB", 1ull << 10}, {"kB", 1000},        {"KB", 1000},        {"kb", 1000},        {"Kb", 1000},
    {"m", 1ull << 20},   {"M", 1ull << 20},   {"MiB", 1ull << 20}, {"mib", 1ull << 20}, {"MIB", 1ull << 20},
    {"MB", 1000000},     {"mb", 1000000},     {"Mb", 1000000},     {"g", 1ull << 30},   {"G", 1ull << 30},
    {"GiB", 1ull << 30}, {"gib", 1ull << 30}, {"GIB", 1ull << 30}, {"GB", 1000000000}, {"gb", 1000000000},
    {"Gb", 1000000000},
};

}  // namespace

std::expected<uint64_t, std::string> ParseByteAmount(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::unexpected(text.empty() ? "empty" : "it does not start with a number");
  const std::string_view rest = text.substr(digits);
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (ec != std::errc()) return std::unexpected("the number is too large");
  uint64_t factor = 1;
  if (!rest.empty()) {
    factor = 0;
    for (const Unit& unit : kUnits) {
      if (unit.name == rest) factor = unit.factor;
    }
    if (factor == 0) return std::unexpected(fmt::format("unknown unit '{}'", rest));
  }
  if (number > std::numeric_limits<uint64_t>::max() / factor) return std::unexpected("the amount is too large");
  return number * factor;
}

std::expected<MemoryWatermark, std::string> ParseMemoryWatermark(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return std::unexpected(fmt::format("invalid memory high watermark '{}': {} (a fraction of memory such as 0.4, "
                                       "or an amount such as 512MiB or 1GB)",
                                       text, why));
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view rest = text.substr(digits);
  if (digits > 0 && (rest.empty() || rest.front() == '.')) {
    // A decimal number: a fraction when at most 1, else (an integer) bytes.
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return bad("not a number");
    if (value <= 1.0) return MemoryWatermark{.relative = true, .fraction = value};
    if (!rest.empty()) return bad("a fraction must be at most 1");
  }
  auto bytes = ParseByteAmount(text);
  if (!bytes) return bad(bytes.error());
  return MemoryWatermark{.relative = false, .fraction = 0, .bytes = *bytes};
}

uint64_t MemoryLimit(const MemoryWatermark& watermark, uint64_t total_memory) {
  if (!watermark.relative) return watermark.bytes;
  return static_cast<uint64_t>(std::floor(watermark.fraction * static_cast<double>(total_memory)));
}

}  // namespace warren::broker
