// libFuzzer target: JSON → field table (the management API's and definitions files' "arguments"
// and publish headers). Inputs that are not a JSON object are dropped after parsing.
// Invariants: a table accepted from JSON converts back to JSON that gives the same table, and it
// encodes to AMQP bytes that decode again, since what HTTP accepts is stored and re-read as a
// field table.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "server/amqp/field_table.h"
#include "server/broker/field_table_json.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren;
  const auto parsed = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return 0;
  auto table = broker::FieldTableFromJson(parsed);
  if (!table) return 0;
  auto again = broker::FieldTableFromJson(broker::FieldTableToJson(*table));
  Check(again.has_value() && *again == *table);

  std::string encoded;
  amqp::ByteWriter w(encoded);
  amqp::EncodeFieldTable(*table, w);
  amqp::FieldTable decoded;
  amqp::ByteReader r(encoded);
  Check(amqp::DecodeFieldTable(r, &decoded) && decoded == *table);
  return 0;
}
