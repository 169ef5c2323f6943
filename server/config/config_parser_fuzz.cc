// libFuzzer target: the configuration file parser (ParseConfig) and the settings it resolves to.
// Invariants: every entry has a valid key and a non-empty value without a comment or a line break,
// at most kMaxConfigEntries of them, unique keys; writing the entries back as `key = value` lines
// parses to the same entries; resolving them (no environment, no flags) gives settings or an
// error naming the file, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "server/config/config_parser.h"
#include "server/config/settings.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::config;
  auto parsed = ParseConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!parsed) {
    Check(!parsed.error().text.empty());
    return 0;
  }
  Check(parsed->entries.size() <= kMaxConfigEntries);
  std::set<std::string> keys;
  std::string rewritten;
  for (const ConfigEntry& entry : parsed->entries) {
    Check(!entry.key.empty() && !entry.value.empty() && entry.line >= 1);
    Check(entry.value.find_first_of("#\n\r") == std::string::npos);
    Check(keys.insert(entry.key).second);
    rewritten += entry.key + " = " + entry.value + "\n";
  }
  auto again = ParseConfig(rewritten);
  Check(again.has_value() && again->entries.size() == parsed->entries.size() && again->warnings.empty());
  for (size_t i = 0; i < parsed->entries.size(); ++i) {
    Check(again->entries[i].key == parsed->entries[i].key && again->entries[i].value == parsed->entries[i].value);
  }
  Sources sources;
  sources.file_name = "fuzz.conf";
  sources.file = &*parsed;
  auto resolved = Resolve(sources);
  Check(resolved.has_value() || resolved.error().starts_with("fuzz.conf:"));
  if (resolved) Check(!FormatEffective(*resolved).empty());
  return 0;
}
