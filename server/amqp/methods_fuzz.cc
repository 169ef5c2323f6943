// libFuzzer target: the generated method decoder on a method frame payload, in each protocol.
// Invariant: whatever decodes re-encodes (in the same protocol) to a payload that decodes to the
// same method, and that re-encoding is stable (encode ∘ decode is idempotent).
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

void RoundTrip(std::string_view payload, warren::amqp::Protocol protocol) {
  using namespace warren::amqp;
  auto decoded = DecodeMethod(payload, protocol);
  if (!decoded) return;
  MethodName(*decoded);
  std::string encoded;
  ByteWriter w(encoded);
  EncodeMethod(*decoded, w, protocol);
  auto again = DecodeMethod(encoded, protocol);
  Check(again.has_value() && *again == *decoded);
  std::string reencoded;
  ByteWriter w2(reencoded);
  EncodeMethod(*again, w2, protocol);
  Check(reencoded == encoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  RoundTrip(payload, warren::amqp::Protocol::k0_9_1);
  RoundTrip(payload, warren::amqp::Protocol::k0_8);
  return 0;
}
