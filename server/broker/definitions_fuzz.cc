// libFuzzer target: definitions import (LoadDefinitions) into a fresh in-memory broker (no store:
// the Persister is what journals, and the import's validation and application do not need it).
// Invariant: what was imported exports to a document that a fresh broker imports again, giving
// the same export (import ∘ export is the identity on imported state).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/broker/broker.h"
#include "server/broker/definitions.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::broker;
  Broker broker;
  if (!LoadDefinitions(broker, std::string_view(reinterpret_cast<const char*>(data), size))) return 0;
  const std::string exported = ExportDefinitions(broker);
  Broker reloaded;
  Check(LoadDefinitions(reloaded, exported).has_value());
  Check(ExportDefinitions(reloaded) == exported);
  return 0;
}
