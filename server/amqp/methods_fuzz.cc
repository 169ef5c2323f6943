// libFuzzer target: the generated method decoder on a method frame payload.
// Invariant: whatever decodes re-encodes to a payload that decodes to the same method, and that
// re-encoding is stable (encode ∘ decode is idempotent).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/amqp/methods.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::amqp;
  auto decoded = DecodeMethod(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!decoded) return 0;
  MethodName(*decoded);
  std::string encoded;
  ByteWriter w(encoded);
  EncodeMethod(*decoded, w);
  auto again = DecodeMethod(encoded);
  Check(again.has_value() && *again == *decoded);
  std::string reencoded;
  ByteWriter w2(reencoded);
  EncodeMethod(*again, w2);
  Check(reencoded == encoded);
  return 0;
}
