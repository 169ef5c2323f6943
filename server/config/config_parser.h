// The text of a configuration file in rabbitmq.conf's "new style" syntax (cuttlefish's): one
// `key = value` per line, `#` starts a comment (also after a value, as in RabbitMQ: a value
// cannot hold `#`), blank lines skipped. Pure: no I/O, nothing about what the keys mean
// (settings.h maps them to Warren's settings).
#pragma once

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace warren::config {

// A configuration file is written by an operator, but it may come from a template or a tool:
// bounded like any input (docs/ARCHITECTURE.md, "Configuration").
inline constexpr size_t kMaxConfigBytes = 1 << 20;
inline constexpr size_t kMaxLineBytes = 16 << 10;  // room for a PATH_MAX path after its key
inline constexpr size_t kMaxConfigEntries = 1000;   // RabbitMQ's whole schema has fewer keys

struct ConfigEntry {
  std::string key;    // dot-separated words of [A-Za-z0-9_-]
  std::string value;  // without the blanks around it; never empty
  int line = 0;       // 1-based
};

// What is wrong, and where: `line` 0 means the file as a whole, `key` may be empty.
struct ConfigProblem {
  int line = 0;
  std::string key;
  std::string text;
};

struct ParsedConfig {
  // A key set on several lines appears once, with its last value (cuttlefish keeps the last),
  // and each earlier line is named in `warnings`.
  std::vector<ConfigEntry> entries;
  std::vector<ConfigProblem> warnings;
};

std::expected<ParsedConfig, ConfigProblem> ParseConfig(std::string_view text);

// "warren.conf:12: heartbeat: ..." (the parts that are known).
std::string FormatProblem(std::string_view file, const ConfigProblem& problem);

// `text` in double quotes for a message, shortened to a readable length.
std::string Quote(std::string_view text);

}  // namespace warren::config
