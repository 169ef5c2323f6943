// AMQP field tables and field values, with every type RabbitMQ accepts:
//   t bool, b int8, B uint8, s int16, u uint16, I int32, i uint32, l int64, f float, d double,
//   D decimal, S long string, x byte array, A array, T timestamp, F nested table, V void.
// (RabbitMQ's type letters, which differ from the 0-9-1 spec's errata for s/u/i.)
//
// A FieldTable keeps its entries in wire order so that decode→encode is bit-exact.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/amqp/byte_buffer.h"

namespace warren::amqp {

struct FieldValue;

struct FieldTable {
  std::vector<std::pair<std::string, FieldValue>> entries;

  // Returns the first entry named `key`, or nullptr.
  const FieldValue* Find(std::string_view key) const;
  bool empty() const;
  bool operator==(const FieldTable&) const;
};

using FieldArray = std::vector<FieldValue>;

struct Decimal {
  uint8_t scale = 0;
  uint32_t value = 0;
  bool operator==(const Decimal&) const = default;
};

// A byte array ('x'), kept distinct from a long string ('S') so that it round-trips.
struct ByteArray {
  std::string bytes;
  bool operator==(const ByteArray&) const = default;
};

struct Timestamp {
  uint64_t seconds = 0;
  bool operator==(const Timestamp&) const = default;
};

struct Void {
  bool operator==(const Void&) const = default;
};

struct FieldValue {
  // Nested tables and arrays are boxed so FieldValue stays small and the type is complete.
  using Value = std::variant<Void, bool, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t,
                             int64_t, float, double, Decimal, std::string, ByteArray, Timestamp,
                             std::shared_ptr<FieldArray>, std::shared_ptr<FieldTable>>;
  Value v;

  FieldValue() = default;
  template <typename T>
  FieldValue(T x) : v(std::move(x)) {}
  static FieldValue Table(FieldTable t) { return FieldValue(std::make_shared<FieldTable>(std::move(t))); }
  static FieldValue Array(FieldArray a) { return FieldValue(std::make_shared<FieldArray>(std::move(a))); }

  // The wire type letter of this value ('t', 'b', ...).
  char TypeCode() const;
  // Convenience accessors; nullptr/nullopt when the value holds another type.
  const std::string* AsString() const { return std::get_if<std::string>(&v); }
  const FieldTable* AsTable() const;
  const FieldArray* AsArray() const;
  std::optional<bool> AsBool() const;
  // Any integer type (b B s u I i l T) widened to int64; nullopt otherwise.
  std::optional<int64_t> AsInt() const;
  // An integer type other than a timestamp (b B s u I i l): what RabbitMQ takes as an integer
  // argument or policy value.
  bool IsInteger() const;

  // Deep equality (nested tables/arrays compared by content).
  bool operator==(const FieldValue&) const;
};

// Defined once FieldValue is complete (clang instantiates the vector's members here otherwise).
inline bool FieldTable::empty() const { return entries.empty(); }

// Encodes `table` as a field table (u32 byte length + entries).
void EncodeFieldTable(const FieldTable& table, ByteWriter& w);
// Decodes a field table (u32 length prefix + entries) from r. On malformed input (unknown type
// letter, truncated data, over-long nesting) returns false and leaves r !ok().
bool DecodeFieldTable(ByteReader& r, FieldTable* out);
// Encodes/decodes one value with its type letter.
void EncodeFieldValue(const FieldValue& value, ByteWriter& w);
bool DecodeFieldValue(ByteReader& r, FieldValue* out);
// Validates a field table exactly as DecodeFieldTable would and advances r past it, without
// building it (no allocation). Returns false and leaves r !ok() on malformed input.
bool SkipFieldTable(ByteReader& r);

// Maximum nesting of tables/arrays inside a decoded table or value; deeper input is malformed.
inline constexpr int kMaxFieldNesting = 64;

}  // namespace warren::amqp
