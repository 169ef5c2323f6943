// Field table codec (see field_table.h for the type letters).
//
// Contract: decoding never reads outside the input and never recurses deeper than
// kMaxFieldNesting container levels; any malformed input (unknown type letter, truncated data,
// a table/array length that exceeds the input or does not end exactly on an entry boundary)
// fails the reader. Encoding is the exact inverse, so decode → encode reproduces the input.
#include "server/amqp/field_table.h"

#include <bit>
#include <type_traits>

namespace warren::amqp {

// ---------------------------------------------------------------------------------------------
// FieldTable / FieldValue accessors

const FieldValue* FieldTable::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool FieldTable::operator==(const FieldTable& other) const { return entries == other.entries; }

char FieldValue::TypeCode() const {
  return std::visit(
      [](const auto& x) -> char {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Void>) return 'V';
        else if constexpr (std::is_same_v<T, bool>) return 't';
        else if constexpr (std::is_same_v<T, int8_t>) return 'b';
        else if constexpr (std::is_same_v<T, uint8_t>) return 'B';
        else if constexpr (std::is_same_v<T, int16_t>) return 's';
        else if constexpr (std::is_same_v<T, uint16_t>) return 'u';
        else if constexpr (std::is_same_v<T, int32_t>) return 'I';
        else if constexpr (std::is_same_v<T, uint32_t>) return 'i';
        else if constexpr (std::is_same_v<T, int64_t>) return 'l';
        else if constexpr (std::is_same_v<T, float>) return 'f';
        else if constexpr (std::is_same_v<T, double>) return 'd';
        else if constexpr (std::is_same_v<T, Decimal>) return 'D';
        else if constexpr (std::is_same_v<T, std::string>) return 'S';
        else if constexpr (std::is_same_v<T, ByteArray>) return 'x';
        else if constexpr (std::is_same_v<T, Timestamp>) return 'T';
        else if constexpr (std::is_same_v<T, std::shared_ptr<FieldArray>>) return 'A';
        else {
          static_assert(std::is_same_v<T, std::shared_ptr<FieldTable>>);
          return 'F';
        }
      },
      v);
}

const FieldTable* FieldValue::AsTable() const {
  auto* p = std::get_if<std::shared_ptr<FieldTable>>(&v);
  return p ? p->get() : nullptr;
}

const FieldArray* FieldValue::AsArray() const {
  auto* p = std::get_if<std::shared_ptr<FieldArray>>(&v);
  return p ? p->get() : nullptr;
}

std::optional<bool> FieldValue::AsBool() const {
  if (auto* b = std::get_if<bool>(&v)) return *b;
  return std::nullopt;
}

std::optional<int64_t> FieldValue::AsInt() const {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) return std::nullopt;
        else if constexpr (std::is_integral_v<T>) return static_cast<int64_t>(x);
        else if constexpr (std::is_same_v<T, Timestamp>) return static_cast<int64_t>(x.seconds);
        else return std::nullopt;
      },
      v);
}

bool FieldValue::IsInteger() const {
  switch (TypeCode()) {
    case 'b': case 'B': case 's': case 'u': case 'I': case 'i': case 'l':
      return true;
    default:
      return false;
  }
}

// Deep equality. Floats compare by bit pattern so that equality is reflexive (NaN == NaN) and
// matches wire identity; a null table/array pointer equals an empty one.
bool FieldValue::operator==(const FieldValue& other) const {
  if (v.index() != other.v.index()) return false;
  return std::visit(
      [&other](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(other.v);
        if constexpr (std::is_same_v<T, float>) {
          return std::bit_cast<uint32_t>(x) == std::bit_cast<uint32_t>(y);
        } else if constexpr (std::is_same_v<T, double>) {
          return std::bit_cast<uint64_t>(x) == std::bit_cast<uint64_t>(y);
        } else if constexpr (std::is_same_v<T, std::shared_ptr<FieldTable>>) {
          static const FieldTable kEmpty;
          return (x ? *x : kEmpty) == (y ? *y : kEmpty);
        } else if constexpr (std::is_same_v<T, std::shared_ptr<FieldArray>>) {
          static const FieldArray kEmpty;
          return (x ? *x : kEmpty) == (y ? *y : kEmpty);
        } else {
          return x == y;
        }
      },
      v);
}

// ---------------------------------------------------------------------------------------------
// Encoding

namespace {

// Writes a u32 length placeholder, runs body(), then back-fills the byte count.
template <typename Body>
void WriteLengthPrefixed(ByteWriter& w, Body&& body) {
  const size_t at = w.size();
  w.WriteU32(0);
  body();
  w.PatchU32(at, static_cast<uint32_t>(w.size() - at - 4));
}

}  // namespace

void EncodeFieldTable(const FieldTable& table, ByteWriter& w) {
  WriteLengthPrefixed(w, [&] {
    for (const auto& [key, value] : table.entries) {
      w.WriteShortStr(key);
      EncodeFieldValue(value, w);
    }
  });
}

void EncodeFieldValue(const FieldValue& value, ByteWriter& w) {
  w.WriteU8(static_cast<uint8_t>(value.TypeCode()));
  std::visit(
      [&w](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Void>) {
          // no payload
        } else if constexpr (std::is_same_v<T, bool>) {
          w.WriteU8(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
          w.WriteU8(static_cast<uint8_t>(x));
        } else if constexpr (std::is_same_v<T, int16_t> || std::is_same_v<T, uint16_t>) {
          w.WriteU16(static_cast<uint16_t>(x));
        } else if constexpr (std::is_same_v<T, int32_t> || std::is_same_v<T, uint32_t>) {
          w.WriteU32(static_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, int64_t>) {
          w.WriteU64(static_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, float>) {
          w.WriteU32(std::bit_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, double>) {
          w.WriteU64(std::bit_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, Decimal>) {
          w.WriteU8(x.scale);
          w.WriteU32(x.value);
        } else if constexpr (std::is_same_v<T, std::string>) {
          w.WriteLongStr(x);
        } else if constexpr (std::is_same_v<T, ByteArray>) {
          w.WriteLongStr(x.bytes);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          w.WriteU64(x.seconds);
        } else if constexpr (std::is_same_v<T, std::shared_ptr<FieldArray>>) {
          WriteLengthPrefixed(w, [&] {
            if (x) {
              for (const FieldValue& item : *x) EncodeFieldValue(item, w);
            }
          });
        } else {
          static_assert(std::is_same_v<T, std::shared_ptr<FieldTable>>);
          if (x) {
            EncodeFieldTable(*x, w);
          } else {
            w.WriteU32(0);
          }
        }
      },
      value.v);
}

// ---------------------------------------------------------------------------------------------
// Decoding
//
// `depth` counts the container levels already entered; opening one more than kMaxFieldNesting
// fails. Nested containers are parsed from a sub-reader spanning exactly their declared byte
// length, so an entry that runs past the end of its container fails.

namespace {

bool DecodeTableBody(ByteReader& r, FieldTable* out, int depth);
bool DecodeValue(ByteReader& r, FieldValue* out, int depth);

// Reads a u32 length and returns a reader over that many bytes (r fails if they are missing).
ByteReader ReadContainer(ByteReader& r) { return ByteReader(r.ReadLongStr()); }

bool DecodeTableBody(ByteReader& r, FieldTable* out, int depth) {
  out->entries.clear();
  if (depth >= kMaxFieldNesting) {
    r.Fail();
    return false;
  }
  ByteReader body = ReadContainer(r);
  if (!r.ok()) return false;
  while (!body.empty()) {
    std::string key(body.ReadShortStr());
    FieldValue value;
    if (!body.ok() || !DecodeValue(body, &value, depth + 1)) {
      r.Fail();
      return false;
    }
    out->entries.emplace_back(std::move(key), std::move(value));
  }
  return true;
}

bool DecodeArrayBody(ByteReader& r, FieldArray* out, int depth) {
  out->clear();
  if (depth >= kMaxFieldNesting) {
    r.Fail();
    return false;
  }
  ByteReader body = ReadContainer(r);
  if (!r.ok()) return false;
  while (!body.empty()) {
    FieldValue value;
    if (!DecodeValue(body, &value, depth + 1)) {
      r.Fail();
      return false;
    }
    out->push_back(std::move(value));
  }
  return true;
}

bool DecodeValue(ByteReader& r, FieldValue* out, int depth) {
  const char type = static_cast<char>(r.ReadU8());
  if (!r.ok()) return false;
  switch (type) {
    case 't': out->v = r.ReadU8() != 0; break;
    case 'b': out->v = static_cast<int8_t>(r.ReadU8()); break;
    case 'B': out->v = r.ReadU8(); break;
    case 's': out->v = static_cast<int16_t>(r.ReadU16()); break;
    case 'u': out->v = r.ReadU16(); break;
    case 'I': out->v = static_cast<int32_t>(r.ReadU32()); break;
    case 'i': out->v = r.ReadU32(); break;
    case 'l': out->v = static_cast<int64_t>(r.ReadU64()); break;
    case 'f': out->v = std::bit_cast<float>(r.ReadU32()); break;
    case 'd': out->v = std::bit_cast<double>(r.ReadU64()); break;
    case 'D': {
      Decimal d;
      d.scale = r.ReadU8();
      d.value = r.ReadU32();
      out->v = d;
      break;
    }
    case 'S': out->v = std::string(r.ReadLongStr()); break;
    case 'x': out->v = ByteArray{std::string(r.ReadLongStr())}; break;
    case 'T': out->v = Timestamp{r.ReadU64()}; break;
    case 'V': out->v = Void{}; break;
    case 'A': {
      auto array = std::make_shared<FieldArray>();
      if (!DecodeArrayBody(r, array.get(), depth)) return false;
      out->v = std::move(array);
      break;
    }
    case 'F': {
      auto table = std::make_shared<FieldTable>();
      if (!DecodeTableBody(r, table.get(), depth)) return false;
      out->v = std::move(table);
      break;
    }
    default:
      r.Fail();
      return false;
  }
  return r.ok();
}

// Allocation-free twin of DecodeValue/DecodeTableBody used by SkipFieldTable.
bool SkipValue(ByteReader& r, int depth);

bool SkipContainer(ByteReader& r, int depth, bool keyed) {
  if (depth >= kMaxFieldNesting) {
    r.Fail();
    return false;
  }
  ByteReader body = ReadContainer(r);
  if (!r.ok()) return false;
  while (!body.empty()) {
    if (keyed) body.ReadShortStr();
    if (!body.ok() || !SkipValue(body, depth + 1)) {
      r.Fail();
      return false;
    }
  }
  return true;
}

bool SkipValue(ByteReader& r, int depth) {
  const char type = static_cast<char>(r.ReadU8());
  if (!r.ok()) return false;
  switch (type) {
    case 't': case 'b': case 'B': r.ReadBytes(1); break;
    case 's': case 'u': r.ReadBytes(2); break;
    case 'I': case 'i': case 'f': r.ReadBytes(4); break;
    case 'l': case 'd': case 'T': r.ReadBytes(8); break;
    case 'D': r.ReadBytes(5); break;
    case 'S': case 'x': r.ReadLongStr(); break;
    case 'V': break;
    case 'A': return SkipContainer(r, depth, /*keyed=*/false);
    case 'F': return SkipContainer(r, depth, /*keyed=*/true);
    default: r.Fail(); return false;
  }
  return r.ok();
}

}  // namespace

bool DecodeFieldTable(ByteReader& r, FieldTable* out) {
  if (!r.ok()) return false;
  return DecodeTableBody(r, out, 0);
}

bool DecodeFieldValue(ByteReader& r, FieldValue* out) {
  if (!r.ok()) return false;
  return DecodeValue(r, out, 0);
}

bool SkipFieldTable(ByteReader& r) {
  if (!r.ok()) return false;
  return SkipContainer(r, 0, /*keyed=*/true);
}

}  // namespace warren::amqp
