#include "server/config/config_parser.h"

#include <unordered_map>

#include <fmt/format.h>

namespace warren::config {

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsBlank(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsBlank(text.back())) text.remove_suffix(1);
  return text;
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool IsValidKey(std::string_view key) {
  bool word_started = false;
  for (char c : key) {
    if (c == '.') {
      if (!word_started) return false;
      word_started = false;
    } else if (IsWordChar(c)) {
      word_started = true;
    } else {
      return false;
    }
  }
  return word_started;
}

bool HasControlChar(std::string_view text) {
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

std::string Quote(std::string_view text) {
  constexpr size_t kShown = 80;
  std::string quoted = "\"";
  for (unsigned char c : text.substr(0, kShown)) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      quoted += fmt::format("\\x{:02x}", c);
    } else {
      quoted += static_cast<char>(c);
    }
  }
  quoted += text.size() > kShown ? "\"..." : "\"";
  return quoted;
}

std::string FormatProblem(std::string_view file, const ConfigProblem& problem) {
  std::string out(file);
  if (problem.line > 0) out += fmt::format(":{}", problem.line);
  out += ": ";
  if (!problem.key.empty()) out += problem.key + ": ";
  return out + problem.text;
}

std::expected<ParsedConfig, ConfigProblem> ParseConfig(std::string_view text) {
  auto fail = [](int line, std::string key, std::string why) {
    return std::unexpected(ConfigProblem{line, std::move(key), std::move(why)});
  };
  if (text.size() > kMaxConfigBytes) {
    return fail(0, {}, fmt::format("the file is larger than {} bytes", kMaxConfigBytes));
  }
  ParsedConfig parsed;
  std::unordered_map<std::string_view, size_t> index_of;  // views into `text`
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.size() > kMaxLineBytes) {
      return fail(line_number, {}, fmt::format("the line is longer than {} bytes", kMaxLineBytes));
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      // Not quoted back: a mistyped line may hold a password.
      return fail(line_number, {}, "expected `key = value`");
    }
    const std::string_view key = Trim(line.substr(0, equals));
    const std::string_view value = Trim(line.substr(equals + 1));
    if (!IsValidKey(key)) {
      return fail(line_number, {},
                  fmt::format("invalid key {}: keys are words of letters, digits, _ and - joined by dots", Quote(key)));
    }
    if (value.empty()) return fail(line_number, std::string(key), "no value after `=`");
    if (HasControlChar(value)) return fail(line_number, std::string(key), "the value holds a control character");
    if (auto seen = index_of.find(key); seen != index_of.end()) {
      ConfigEntry& earlier = parsed.entries[seen->second];
      parsed.warnings.push_back(
          {earlier.line, earlier.key, fmt::format("set again on line {}, which wins", line_number)});
      earlier.value = std::string(value);
      earlier.line = line_number;
      continue;
    }
    if (parsed.entries.size() == kMaxConfigEntries) {
      return fail(line_number, std::string(key), fmt::format("more than {} keys in the file", kMaxConfigEntries));
    }
    index_of.emplace(key, parsed.entries.size());
    parsed.entries.push_back({std::string(key), std::string(value), line_number});
  }
  return parsed;
}

}  // namespace warren::config
