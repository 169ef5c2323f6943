// Tests for the field table codec: every type letter bit-exact against hand-written bytes,
// round trips, nesting, and rejection of malformed or hostile input (truncation, unknown type
// letters, nesting bombs, lengths beyond the input).
#include "server/amqp/field_table.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace warren::amqp {
namespace {

using namespace std::string_literals;

std::string Encode(const FieldTable& t) {
  std::string out;
  ByteWriter w(out);
  EncodeFieldTable(t, w);
  return out;
}

std::string EncodeValue(const FieldValue& v) {
  std::string out;
  ByteWriter w(out);
  EncodeFieldValue(v, w);
  return out;
}

// Decodes `bytes` as a whole table; fails the test unless the input is consumed exactly.
FieldTable Decode(std::string_view bytes) {
  ByteReader r(bytes);
  FieldTable t;
  EXPECT_TRUE(DecodeFieldTable(r, &t));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.empty());
  return t;
}

bool DecodeFails(std::string_view bytes) {
  ByteReader r(bytes);
  FieldTable t;
  bool ok = DecodeFieldTable(r, &t);
  EXPECT_EQ(ok, r.ok());
  ByteReader s(bytes);
  bool skip_ok = SkipFieldTable(s);
  EXPECT_EQ(ok, skip_ok) << "SkipFieldTable disagrees with DecodeFieldTable";
  if (ok) {
    EXPECT_EQ(r.position(), s.position());
  }
  return !ok;
}

std::string U32(uint32_t v) {
  std::string out;
  ByteWriter(out).WriteU32(v);
  return out;
}

// Each case: a value and its exact wire encoding (type letter + payload).
struct Case {
  const char* name;
  FieldValue value;
  std::string wire;
};

std::vector<Case> AllTypeCases() {
  return {
      {"bool_true", FieldValue(true), "t\x01"s},
      {"bool_false", FieldValue(false), "t\x00"s},
      {"int8", FieldValue(int8_t{-2}), "b\xfe"s},
      {"uint8", FieldValue(uint8_t{0xfe}), "B\xfe"s},
      {"int16", FieldValue(int16_t{-2}), "s\xff\xfe"s},
      {"uint16", FieldValue(uint16_t{0xfffe}), "u\xff\xfe"s},
      {"int32", FieldValue(int32_t{-2}), "I\xff\xff\xff\xfe"s},
      {"uint32", FieldValue(uint32_t{0xfffffffe}), "i\xff\xff\xff\xfe"s},
      {"int64", FieldValue(int64_t{-2}), "l\xff\xff\xff\xff\xff\xff\xff\xfe"s},
      {"float", FieldValue(1.5f), "f\x3f\xc0\x00\x00"s},
      {"double", FieldValue(-2.0), "d\xc0\x00\x00\x00\x00\x00\x00\x00"s},
      {"decimal", FieldValue(Decimal{2, 12345}), "D\x02\x00\x00\x30\x39"s},
      {"longstr", FieldValue("a\0\xff"s), "S\x00\x00\x00\x03" "a\0\xff"s},
      {"empty_longstr", FieldValue(""s), "S\x00\x00\x00\x00"s},
      {"bytearray", FieldValue(ByteArray{"\x01\x02"s}), "x\x00\x00\x00\x02\x01\x02"s},
      {"timestamp", FieldValue(Timestamp{0x0102030405060708ULL}),
       "T\x01\x02\x03\x04\x05\x06\x07\x08"s},
      {"void", FieldValue(Void{}), "V"s},
      {"empty_array", FieldValue::Array({}), "A\x00\x00\x00\x00"s},
      {"array", FieldValue::Array({FieldValue(uint8_t{7}), FieldValue("s"s)}),
       "A\x00\x00\x00\x08" "B\x07" "S\x00\x00\x00\x01s"s},
      {"empty_table", FieldValue::Table({}), "F\x00\x00\x00\x00"s},
      {"table", FieldValue::Table(FieldTable{{{"k", FieldValue(true)}}}),
       "F\x00\x00\x00\x04" "\x01k" "t\x01"s},
  };
}

TEST(FieldValueTest, EveryTypeMatchesWireBytesAndRoundTrips) {
  for (const Case& c : AllTypeCases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.value.TypeCode(), c.wire[0]);
    EXPECT_EQ(EncodeValue(c.value), c.wire);
    ByteReader r(c.wire);
    FieldValue decoded;
    ASSERT_TRUE(DecodeFieldValue(r, &decoded));
    EXPECT_TRUE(r.empty());
    EXPECT_EQ(decoded, c.value);
    EXPECT_EQ(decoded.v.index(), c.value.v.index());
    EXPECT_EQ(EncodeValue(decoded), c.wire);
  }
}

TEST(FieldValueTest, EveryTypeInsideATableRoundTripsBitExact) {
  FieldTable t;
  std::string body;
  for (const Case& c : AllTypeCases()) {
    t.entries.emplace_back(c.name, c.value);
    body += static_cast<char>(std::string_view(c.name).size());
    body += c.name;
    body += c.wire;
  }
  const std::string wire = U32(static_cast<uint32_t>(body.size())) + body;
  EXPECT_EQ(Encode(t), wire);
  FieldTable decoded = Decode(wire);
  EXPECT_EQ(decoded, t);
  EXPECT_EQ(Encode(decoded), wire);
}

TEST(FieldValueTest, FloatsAreBitExactIncludingNaNAndNegativeZero) {
  const float nan_f = std::bit_cast<float>(0x7fc01234u);
  const double nan_d = std::bit_cast<double>(0x7ff8000000abcdefULL);
  for (const FieldValue& v : {FieldValue(nan_f), FieldValue(-0.0f), FieldValue(nan_d),
                              FieldValue(-0.0), FieldValue(std::numeric_limits<double>::infinity())}) {
    const std::string wire = EncodeValue(v);
    ByteReader r(wire);
    FieldValue decoded;
    ASSERT_TRUE(DecodeFieldValue(r, &decoded));
    EXPECT_EQ(decoded, v);  // bitwise equality: NaN equals itself
    EXPECT_EQ(EncodeValue(decoded), wire);
  }
  EXPECT_FALSE(FieldValue(0.0) == FieldValue(-0.0));
  EXPECT_FALSE(FieldValue(1.0f) == FieldValue(1.0));  // different types
}

TEST(FieldValueTest, BoolIsNonZeroOctet) {
  const std::string wire = "t\x02"s;
  ByteReader r(wire);
  FieldValue v;
  ASSERT_TRUE(DecodeFieldValue(r, &v));
  EXPECT_EQ(v.AsBool(), true);
}

TEST(FieldValueTest, RabbitMqIntegerLettersAndSignedness) {
  // RabbitMQ: 's' int16, 'u' uint16, 'I' int32, 'i' uint32, 'l' int64.
  struct {
    std::string wire;
    int64_t expect;
  } cases[] = {
      {"s\x80\x00"s, -32768},
      {"u\x80\x00"s, 32768},
      {"I\x80\x00\x00\x00"s, -2147483648LL},
      {"i\x80\x00\x00\x00"s, 2147483648LL},
      {"l\x80\x00\x00\x00\x00\x00\x00\x00"s, std::numeric_limits<int64_t>::min()},
      {"b\x80"s, -128},
      {"B\x80"s, 128},
      {"T\x00\x00\x00\x00\x00\x00\x00\x2a"s, 42},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.wire.substr(0, 1));
    ByteReader r(c.wire);
    FieldValue v;
    ASSERT_TRUE(DecodeFieldValue(r, &v));
    EXPECT_EQ(v.AsInt(), c.expect);
    EXPECT_EQ(v.TypeCode(), c.wire[0]);
  }
}

TEST(FieldValueTest, Accessors) {
  EXPECT_EQ(FieldValue(true).AsInt(), std::nullopt);
  EXPECT_EQ(FieldValue(int32_t{5}).AsBool(), std::nullopt);
  EXPECT_EQ(FieldValue(1.0).AsInt(), std::nullopt);
  EXPECT_EQ(*FieldValue("x"s).AsString(), "x");
  EXPECT_EQ(FieldValue(int8_t{1}).AsString(), nullptr);
  EXPECT_EQ(FieldValue::Table({}).AsArray(), nullptr);
  ASSERT_NE(FieldValue::Table({}).AsTable(), nullptr);
  ASSERT_NE(FieldValue::Array({}).AsArray(), nullptr);
  EXPECT_EQ(FieldValue(true).AsTable(), nullptr);

  FieldTable t{{{"a", FieldValue(int16_t{1})}, {"b", FieldValue(true)}, {"a", FieldValue(2.0)}}};
  ASSERT_NE(t.Find("a"), nullptr);
  EXPECT_EQ(t.Find("a")->AsInt(), 1);  // first match wins
  EXPECT_EQ(t.Find("b")->AsBool(), true);
  EXPECT_EQ(t.Find("c"), nullptr);
  EXPECT_FALSE(t.empty());
  EXPECT_TRUE(FieldTable{}.empty());
}

TEST(FieldValueTest, EqualityIsDeep) {
  FieldValue a = FieldValue::Table(FieldTable{{{"x", FieldValue::Array({FieldValue(1.0)})}}});
  FieldValue b = FieldValue::Table(FieldTable{{{"x", FieldValue::Array({FieldValue(1.0)})}}});
  FieldValue c = FieldValue::Table(FieldTable{{{"x", FieldValue::Array({FieldValue(2.0)})}}});
  EXPECT_EQ(a, b);
  EXPECT_FALSE(a == c);
  // A null box equals an empty container and encodes like one.
  FieldValue null_table(std::shared_ptr<FieldTable>{});
  EXPECT_EQ(null_table, FieldValue::Table({}));
  EXPECT_EQ(EncodeValue(null_table), "F\x00\x00\x00\x00"s);
  FieldValue null_array(std::shared_ptr<FieldArray>{});
  EXPECT_EQ(null_array, FieldValue::Array({}));
  EXPECT_EQ(EncodeValue(null_array), "A\x00\x00\x00\x00"s);
}

TEST(FieldTableTest, KeepsWireOrderAndDuplicates) {
  FieldTable t{{{"z", FieldValue(int8_t{1})}, {"a", FieldValue(int8_t{2})},
                {"z", FieldValue(int8_t{3})}}};
  const std::string wire = Encode(t);
  EXPECT_EQ(wire, "\x00\x00\x00\x0c" "\x01z" "b\x01" "\x01" "a" "b\x02" "\x01z" "b\x03"s);
  EXPECT_EQ(Decode(wire), t);
}

FieldTable NestedSample() {
  FieldTable inner{{{"deep", FieldValue::Array({FieldValue::Table(
                                                    FieldTable{{{"x", FieldValue(Void{})}}}),
                                                FieldValue::Array({FieldValue(int64_t{-1})}),
                                                FieldValue(ByteArray{"\0"s})})}}};
  return FieldTable{{{"capabilities", FieldValue::Table(FieldTable{{
                                          {"publisher_confirms", FieldValue(true)},
                                          {"inner", FieldValue::Table(inner)},
                                      }})},
                     {"product", FieldValue("Warren"s)},
                     {"list", FieldValue::Array({FieldValue::Array({}), FieldValue::Table({})})}}};
}

TEST(FieldTableTest, NestedTablesAndArraysRoundTrip) {
  const FieldTable t = NestedSample();
  const std::string wire = Encode(t);
  FieldTable decoded = Decode(wire);
  EXPECT_EQ(decoded, t);
  EXPECT_EQ(Encode(decoded), wire);
  const FieldTable* caps = decoded.Find("capabilities")->AsTable();
  ASSERT_NE(caps, nullptr);
  EXPECT_EQ(caps->Find("publisher_confirms")->AsBool(), true);
}

TEST(FieldTableTest, EmptyTable) {
  EXPECT_EQ(Encode({}), "\x00\x00\x00\x00"s);
  EXPECT_TRUE(Decode("\x00\x00\x00\x00"s).empty());
}

TEST(FieldTableTest, DecodeReplacesPreviousContents) {
  FieldTable t{{{"old", FieldValue(true)}}};
  const std::string wire = "\x00\x00\x00\x00"s;
  ByteReader r(wire);
  ASSERT_TRUE(DecodeFieldTable(r, &t));
  EXPECT_TRUE(t.empty());
}

TEST(FieldTableTest, DecodeStopsAtTableEnd) {
  // Bytes after the table belong to the caller.
  const std::string wire = Encode(NestedSample()) + "tail";
  ByteReader r(wire);
  FieldTable t;
  ASSERT_TRUE(DecodeFieldTable(r, &t));
  EXPECT_EQ(r.ReadBytes(4), "tail");
  ByteReader s(wire);
  ASSERT_TRUE(SkipFieldTable(s));
  EXPECT_EQ(s.remaining(), 4u);
}

TEST(FieldTableTest, EveryTruncationIsRejected) {
  const std::string wire = Encode(NestedSample());
  for (size_t n = 0; n < wire.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_TRUE(DecodeFails(std::string_view(wire).substr(0, n)));
  }
  EXPECT_FALSE(DecodeFails(wire));
}

TEST(FieldTableTest, EveryTruncatedValueIsRejected) {
  for (const Case& c : AllTypeCases()) {
    for (size_t n = 0; n < c.wire.size(); ++n) {
      SCOPED_TRACE(std::string(c.name) + " at " + std::to_string(n));
      ByteReader r(std::string_view(c.wire).substr(0, n));
      FieldValue v;
      EXPECT_FALSE(DecodeFieldValue(r, &v));
      EXPECT_FALSE(r.ok());
    }
  }
}

TEST(FieldTableTest, UnknownTypeLetterIsRejected) {
  for (char letter : {'Z', 'U', 'L', 'c', '\0', '\xff'}) {
    SCOPED_TRACE(static_cast<int>(letter));
    std::string body = "\x01k"s + letter + "\x00\x00\x00\x00"s;
    EXPECT_TRUE(DecodeFails(U32(static_cast<uint32_t>(body.size())) + body));
    const std::string value = std::string(1, letter) + "\x00\x00\x00\x00"s;
    ByteReader r(value);
    FieldValue v;
    EXPECT_FALSE(DecodeFieldValue(r, &v));
  }
}

TEST(FieldTableTest, TableLengthLargerThanInputIsRejected) {
  EXPECT_TRUE(DecodeFails("\x00\x00\x00\x05" "\x01k" "t\x01"s));
  EXPECT_TRUE(DecodeFails("\xff\xff\xff\xff"s));
  EXPECT_TRUE(DecodeFails("\x00\x00\x00\x01"s));
  // Nested table claiming more than its parent holds.
  EXPECT_TRUE(DecodeFails("\x00\x00\x00\x08" "\x01k" "F\x00\x00\x00\x05" "\x00"s));
  // Array claiming more than the input.
  EXPECT_TRUE(DecodeFails("\x00\x00\x00\x08" "\x01k" "A\x00\x01\x00\x00" "\x00"s));
}

TEST(FieldTableTest, EntryOverrunningTableLengthIsRejected) {
  // The table says 3 bytes but its only entry needs 4; the extra byte follows the table.
  EXPECT_TRUE(DecodeFails("\x00\x00\x00\x03" "\x01k" "t\x01"s));
  // Same for an array whose declared length splits a value.
  EXPECT_TRUE(DecodeFails("\x00\x00\x00\x09" "\x01k" "A\x00\x00\x00\x01" "B\x07"s));
  // A key longer than the table.
  EXPECT_TRUE(DecodeFails("\x00\x00\x00\x02" "\x05k"s));
}

// Builds a top-level table holding `levels` containers nested in each other, with consistent
// lengths, in linear time. Tables: each level is one entry "k" -> 'F'. Arrays: the table holds
// "k" -> 'A', and each further level is an array's only value.
std::string NestingBomb(int levels, bool arrays) {
  const auto n = static_cast<uint32_t>(levels);
  if (!arrays) {
    std::string out = U32(7 * n);
    for (uint32_t k = n; k >= 1; --k) out += "\x01kF" + U32(7 * (k - 1));
    return out;
  }
  std::string out = U32(7 + 5 * (n - 1)) + "\x01kA" + U32(5 * (n - 1));
  for (uint32_t k = n - 1; k >= 1; --k) out += "A" + U32(5 * (k - 1));
  return out;
}

TEST(FieldTableTest, NestingBombIsRejected) {
  for (bool arrays : {false, true}) {
    SCOPED_TRACE(arrays ? "arrays" : "tables");
    EXPECT_TRUE(DecodeFails(NestingBomb(1'000'000, arrays)));
  }
}

TEST(FieldTableTest, NestingLimitIsExact) {
  // NestingBomb(n) holds n containers below the top-level table: n + 1 levels in all.
  for (bool arrays : {false, true}) {
    SCOPED_TRACE(arrays ? "arrays" : "tables");
    EXPECT_FALSE(DecodeFails(NestingBomb(kMaxFieldNesting - 1, arrays)));
    EXPECT_TRUE(DecodeFails(NestingBomb(kMaxFieldNesting, arrays)));
  }
}

TEST(FieldTableTest, RandomInputNeverCrashesAndSkipAgrees) {
  std::mt19937 rng(12345);
  const std::string valid = Encode(NestedSample());
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = valid;
    // Mutate a few bytes of a valid encoding, which reaches deeper than pure noise.
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    DecodeFails(bytes);  // checks Decode/Skip agreement; must not crash
  }
}

}  // namespace
}  // namespace warren::amqp
