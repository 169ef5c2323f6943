// libFuzzer target: field tables (u32 length + entries), as they arrive in method arguments and
// content headers. Invariants:
//  - SkipFieldTable (the allocation-free validator) gives DecodeFieldTable's verdict and consumes
//    the same bytes;
//  - a decoded table re-encodes to as many bytes as it was read from, and decodes back to an equal
//    table whose encoding is identical (round trip; only a bool's non-zero octet is normalised).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/amqp/field_table.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::amqp;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  FieldTable table;
  ByteReader r(input);
  const bool decoded = DecodeFieldTable(r, &table);
  Check(decoded == r.ok());
  ByteReader skip(input);
  Check(SkipFieldTable(skip) == decoded);
  if (!decoded) return 0;
  Check(skip.position() == r.position());

  std::string encoded;
  ByteWriter w(encoded);
  EncodeFieldTable(table, w);
  Check(encoded.size() == r.position());
  FieldTable again;
  ByteReader r2(encoded);
  Check(DecodeFieldTable(r2, &again) && r2.empty() && again == table);
  std::string reencoded;
  ByteWriter w2(reencoded);
  EncodeFieldTable(again, w2);
  Check(reencoded == encoded);
  return 0;
}
