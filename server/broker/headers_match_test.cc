#include "server/broker/headers_match.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace warren::broker {
namespace {

using amqp::ByteArray;
using amqp::Decimal;
using amqp::FieldArray;
using amqp::FieldTable;
using amqp::FieldValue;
using amqp::Timestamp;
using amqp::Void;

FieldTable Table(std::initializer_list<std::pair<std::string, FieldValue>> entries) {
  FieldTable t;
  for (const auto& e : entries) t.entries.push_back(e);
  return t;
}

FieldValue Str(const char* s) { return FieldValue(std::string(s)); }

// binding args {x-match: mode, key: pattern} against headers {key: header}.
bool One(const char* mode, const FieldValue& pattern, const FieldValue& header) {
  FieldTable args = Table({{"x-match", Str(mode)}, {"k", pattern}});
  FieldTable headers = Table({{"k", header}});
  return HeadersMatch(args, &headers);
}

// Value equality, checked in both directions and in both "all" and "any" mode.
void ExpectEqualValues(const FieldValue& a, const FieldValue& b, bool equal, const char* what) {
  EXPECT_EQ(One("all", a, b), equal) << what;
  EXPECT_EQ(One("all", b, a), equal) << what << " (swapped)";
  EXPECT_EQ(One("any", a, b), equal) << what << " (any)";
}

TEST(HeadersMatchTest, AllIsTheDefault) {
  FieldTable args = Table({{"format", Str("pdf")}, {"type", Str("report")}});
  FieldTable both = Table({{"type", Str("report")}, {"format", Str("pdf")}, {"extra", Str("x")}});
  FieldTable one = Table({{"format", Str("pdf")}});
  FieldTable wrong = Table({{"format", Str("pdf")}, {"type", Str("log")}});
  EXPECT_TRUE(HeadersMatch(args, &both));  // header order and extra headers do not matter
  EXPECT_FALSE(HeadersMatch(args, &one));
  EXPECT_FALSE(HeadersMatch(args, &wrong));
  EXPECT_FALSE(HeadersMatch(args, nullptr));

  FieldTable explicit_all = args;
  explicit_all.entries.insert(explicit_all.entries.begin(), {"x-match", Str("all")});
  EXPECT_TRUE(HeadersMatch(explicit_all, &both));
  EXPECT_FALSE(HeadersMatch(explicit_all, &one));
}

TEST(HeadersMatchTest, Any) {
  FieldTable args = Table({{"x-match", Str("any")}, {"format", Str("pdf")}, {"type", Str("report")}});
  FieldTable one = Table({{"format", Str("pdf")}});
  FieldTable other = Table({{"type", Str("report")}, {"format", Str("zip")}});
  FieldTable none = Table({{"format", Str("zip")}, {"type", Str("log")}});
  FieldTable empty;
  EXPECT_TRUE(HeadersMatch(args, &one));
  EXPECT_TRUE(HeadersMatch(args, &other));
  EXPECT_FALSE(HeadersMatch(args, &none));
  EXPECT_FALSE(HeadersMatch(args, &empty));
  EXPECT_FALSE(HeadersMatch(args, nullptr));
}

TEST(HeadersMatchTest, NoArgumentsAllMatchesEverythingAnyMatchesNothing) {
  FieldTable headers = Table({{"a", FieldValue(1)}});
  FieldTable empty;
  for (const FieldTable& args :
       {FieldTable{}, Table({{"x-match", Str("all")}}), Table({{"x-match", Str("all-with-x")}}),
        Table({{"x-foo", Str("bar")}}), Table({{"x-match", Str("all")}, {"x-foo", Str("bar")}})}) {
    EXPECT_TRUE(HeadersMatch(args, &headers));
    EXPECT_TRUE(HeadersMatch(args, &empty));
    EXPECT_TRUE(HeadersMatch(args, nullptr));
  }
  for (const FieldTable& args : {Table({{"x-match", Str("any")}}), Table({{"x-match", Str("any-with-x")}}),
                                 Table({{"x-match", Str("any")}, {"x-foo", Str("bar")}})}) {
    FieldTable with_x = Table({{"x-foo", Str("bar")}, {"a", FieldValue(1)}});
    EXPECT_FALSE(HeadersMatch(args, &headers));
    EXPECT_FALSE(HeadersMatch(args, &with_x));
    EXPECT_FALSE(HeadersMatch(args, &empty));
    EXPECT_FALSE(HeadersMatch(args, nullptr));
  }
}

TEST(HeadersMatchTest, XArgumentsIgnoredUnlessWithX) {
  FieldTable a_only = Table({{"a", FieldValue(1)}});
  FieldTable a_and_x = Table({{"a", FieldValue(1)}, {"x-foo", Str("bar")}});
  FieldTable x_only = Table({{"x-foo", Str("bar")}});
  FieldTable x_wrong = Table({{"a", FieldValue(1)}, {"x-foo", Str("baz")}});

  FieldTable all = Table({{"x-match", Str("all")}, {"x-foo", Str("bar")}, {"a", FieldValue(1)}});
  EXPECT_TRUE(HeadersMatch(all, &a_only));
  EXPECT_TRUE(HeadersMatch(all, &x_wrong));
  EXPECT_FALSE(HeadersMatch(all, &x_only));

  FieldTable all_x = Table({{"x-match", Str("all-with-x")}, {"x-foo", Str("bar")}, {"a", FieldValue(1)}});
  EXPECT_FALSE(HeadersMatch(all_x, &a_only));
  EXPECT_TRUE(HeadersMatch(all_x, &a_and_x));
  EXPECT_FALSE(HeadersMatch(all_x, &x_wrong));
  EXPECT_FALSE(HeadersMatch(all_x, &x_only));

  FieldTable any = Table({{"x-match", Str("any")}, {"x-foo", Str("bar")}, {"a", FieldValue(2)}});
  EXPECT_FALSE(HeadersMatch(any, &x_only));
  EXPECT_FALSE(HeadersMatch(any, &a_and_x));

  FieldTable any_x = Table({{"x-match", Str("any-with-x")}, {"x-foo", Str("bar")}, {"a", FieldValue(2)}});
  EXPECT_TRUE(HeadersMatch(any_x, &x_only));
  EXPECT_TRUE(HeadersMatch(any_x, &a_and_x));
  EXPECT_FALSE(HeadersMatch(any_x, &a_only));

  // A key merely starting with "x" (no dash) is an ordinary key.
  FieldTable xyz = Table({{"xyz", FieldValue(1)}});
  FieldTable no_xyz;
  EXPECT_FALSE(HeadersMatch(xyz, &no_xyz));
}

TEST(HeadersMatchTest, XMatchItselfIsNeverMatched) {
  // The message need not carry x-match, even in *-with-x mode.
  FieldTable all_x = Table({{"x-match", Str("all-with-x")}, {"a", FieldValue(1)}});
  FieldTable headers = Table({{"a", FieldValue(1)}});
  EXPECT_TRUE(HeadersMatch(all_x, &headers));
  // And a message's x-match header cannot make an "any-with-x" binding match.
  FieldTable any_x = Table({{"x-match", Str("any-with-x")}, {"a", FieldValue(1)}});
  FieldTable only_xmatch = Table({{"x-match", Str("any-with-x")}});
  EXPECT_FALSE(HeadersMatch(any_x, &only_xmatch));
}

TEST(HeadersMatchTest, VoidPatternIsAPresenceTest) {
  FieldTable all = Table({{"a", FieldValue(Void{})}, {"b", Str("x")}});
  FieldTable with_a = Table({{"a", Str("anything")}, {"b", Str("x")}});
  FieldTable a_void = Table({{"a", FieldValue(Void{})}, {"b", Str("x")}});
  FieldTable a_table = Table({{"a", FieldValue::Table(FieldTable{})}, {"b", Str("x")}});
  FieldTable no_a = Table({{"b", Str("x")}});
  EXPECT_TRUE(HeadersMatch(all, &with_a));
  EXPECT_TRUE(HeadersMatch(all, &a_void));
  EXPECT_TRUE(HeadersMatch(all, &a_table));
  EXPECT_FALSE(HeadersMatch(all, &no_a));

  FieldTable any = Table({{"x-match", Str("any")}, {"a", FieldValue(Void{})}});
  EXPECT_TRUE(HeadersMatch(any, &with_a));
  EXPECT_FALSE(HeadersMatch(any, &no_a));
  EXPECT_FALSE(HeadersMatch(any, nullptr));

  // A void header does not equal a non-void pattern.
  EXPECT_FALSE(One("all", Str("x"), FieldValue(Void{})));
  EXPECT_FALSE(One("all", FieldValue(0), FieldValue(Void{})));
}

TEST(HeadersMatchTest, IntegersCompareByValueAcrossWireTypes) {
  // RabbitMQ compares the decoded Erlang values with ==, ignoring the wire type.
  ExpectEqualValues(FieldValue(int8_t{5}), FieldValue(int64_t{5}), true, "b5 vs l5");
  ExpectEqualValues(FieldValue(uint8_t{5}), FieldValue(int32_t{5}), true, "B5 vs I5");
  ExpectEqualValues(FieldValue(int16_t{-7}), FieldValue(int64_t{-7}), true, "s-7 vs l-7");
  ExpectEqualValues(FieldValue(uint16_t{65535}), FieldValue(uint32_t{65535}), true, "u vs i");
  ExpectEqualValues(FieldValue(Timestamp{5}), FieldValue(int64_t{5}), true, "T5 vs l5");
  ExpectEqualValues(FieldValue(int32_t{5}), FieldValue(int32_t{6}), false, "I5 vs I6");
  ExpectEqualValues(FieldValue(uint8_t{255}), FieldValue(int8_t{-1}), false, "B255 vs b-1");
  ExpectEqualValues(FieldValue(Timestamp{std::numeric_limits<uint64_t>::max()}), FieldValue(int64_t{-1}),
                    false, "T(2^64-1) vs l-1");
  ExpectEqualValues(FieldValue(Timestamp{uint64_t{1} << 63}),
                    FieldValue(std::numeric_limits<int64_t>::min()), false, "T2^63 vs l-2^63");
  ExpectEqualValues(FieldValue(uint32_t{4294967295u}), FieldValue(int32_t{-1}), false, "i max vs I-1");
}

TEST(HeadersMatchTest, FloatsCompareNumericallyWithIntegers) {
  ExpectEqualValues(FieldValue(5.0), FieldValue(int32_t{5}), true, "d5.0 vs I5");
  ExpectEqualValues(FieldValue(5.0f), FieldValue(int64_t{5}), true, "f5.0 vs l5");
  ExpectEqualValues(FieldValue(5.0f), FieldValue(5.0), true, "f5.0 vs d5.0");
  ExpectEqualValues(FieldValue(5.5), FieldValue(int32_t{5}), false, "d5.5 vs I5");
  ExpectEqualValues(FieldValue(0.1f), FieldValue(0.1), false, "f0.1 vs d0.1 (different numbers)");
  ExpectEqualValues(FieldValue(0.5f), FieldValue(0.5), true, "f0.5 vs d0.5");
  ExpectEqualValues(FieldValue(-0.0), FieldValue(0.0), true, "-0.0 vs 0.0");
  ExpectEqualValues(FieldValue(-0.0), FieldValue(int8_t{0}), true, "-0.0 vs b0");
  ExpectEqualValues(FieldValue(0x1p63), FieldValue(std::numeric_limits<int64_t>::max()), false,
                    "d2^63 vs l max");
  ExpectEqualValues(FieldValue(0x1p63), FieldValue(Timestamp{uint64_t{1} << 63}), true, "d2^63 vs T2^63");
  ExpectEqualValues(FieldValue(-0x1p63), FieldValue(std::numeric_limits<int64_t>::min()), true,
                    "d-2^63 vs l min");
  ExpectEqualValues(FieldValue(0x1p64), FieldValue(Timestamp{std::numeric_limits<uint64_t>::max()}), false,
                    "d2^64 vs T max");
  ExpectEqualValues(FieldValue(std::numeric_limits<double>::infinity()), FieldValue(int64_t{0}), false,
                    "inf vs 0");
  ExpectEqualValues(FieldValue(std::numeric_limits<double>::quiet_NaN()),
                    FieldValue(std::numeric_limits<double>::quiet_NaN()), false, "NaN vs NaN");
}

TEST(HeadersMatchTest, StringsAndByteArrays) {
  ExpectEqualValues(Str("abc"), Str("abc"), true, "S vs S");
  ExpectEqualValues(Str("abc"), Str("ABC"), false, "case-sensitive");
  ExpectEqualValues(Str(""), Str(""), true, "empty strings");
  // Both decode to Erlang binaries, so RabbitMQ considers them equal.
  ExpectEqualValues(Str("abc"), FieldValue(ByteArray{"abc"}), true, "S vs x");
  ExpectEqualValues(FieldValue(ByteArray{"abc"}), FieldValue(ByteArray{"abd"}), false, "x vs x");
  ExpectEqualValues(FieldValue(ByteArray{std::string("a\0b", 3)}), FieldValue(std::string("a\0b", 3)), true,
                    "embedded NUL");
  ExpectEqualValues(Str("5"), FieldValue(int32_t{5}), false, "S'5' vs I5");
  ExpectEqualValues(Str("true"), FieldValue(true), false, "S'true' vs t");
}

TEST(HeadersMatchTest, BooleansDecimalsAndVoid) {
  ExpectEqualValues(FieldValue(true), FieldValue(true), true, "true");
  ExpectEqualValues(FieldValue(false), FieldValue(false), true, "false");
  ExpectEqualValues(FieldValue(true), FieldValue(false), false, "true vs false");
  ExpectEqualValues(FieldValue(true), FieldValue(int8_t{1}), false, "bool is not a number");
  ExpectEqualValues(FieldValue(false), FieldValue(int8_t{0}), false, "bool is not a number (0)");
  ExpectEqualValues(FieldValue(Decimal{2, 100}), FieldValue(Decimal{2, 100}), true, "decimal");
  ExpectEqualValues(FieldValue(Decimal{2, 100}), FieldValue(Decimal{1, 10}), false,
                    "decimals compare as {scale, value}");
  ExpectEqualValues(FieldValue(Decimal{0, 5}), FieldValue(int32_t{5}), false, "decimal vs int");
  // A header void vs a non-void pattern was covered above; void vs void is a presence match.
  EXPECT_TRUE(One("all", FieldValue(Void{}), FieldValue(Void{})));
}

TEST(HeadersMatchTest, ArraysAndTablesCompareDeeplyWithTypes) {
  auto arr = [](std::initializer_list<FieldValue> vs) { return FieldValue::Array(FieldArray(vs)); };
  ExpectEqualValues(arr({FieldValue(int32_t{1}), Str("x")}), arr({FieldValue(int32_t{1}), Str("x")}), true,
                    "same array");
  ExpectEqualValues(arr({FieldValue(int32_t{1}), Str("x")}), arr({Str("x"), FieldValue(int32_t{1})}), false,
                    "order matters");
  // Inside arrays Erlang keeps {Type, Value}, so the element types must agree.
  ExpectEqualValues(arr({FieldValue(int32_t{1})}), arr({FieldValue(int64_t{1})}), false, "nested I1 vs l1");
  ExpectEqualValues(arr({}), arr({}), true, "empty arrays");
  ExpectEqualValues(arr({FieldValue(int32_t{1})}), FieldValue(int32_t{1}), false, "array vs scalar");

  FieldValue t1 = FieldValue::Table(Table({{"a", FieldValue(int32_t{1})}, {"b", Str("x")}}));
  FieldValue t2 = FieldValue::Table(Table({{"a", FieldValue(int32_t{1})}, {"b", Str("x")}}));
  FieldValue t3 = FieldValue::Table(Table({{"b", Str("x")}, {"a", FieldValue(int32_t{1})}}));
  FieldValue t4 = FieldValue::Table(Table({{"a", FieldValue(int64_t{1})}, {"b", Str("x")}}));
  ExpectEqualValues(t1, t2, true, "same table");
  ExpectEqualValues(t1, t3, false, "nested table order matters");
  ExpectEqualValues(t1, t4, false, "nested table types matter");
  // Both are the Erlang empty list.
  ExpectEqualValues(FieldValue::Table(FieldTable{}), arr({}), true, "empty table vs empty array");
  ExpectEqualValues(t1, arr({FieldValue(int32_t{1}), Str("x")}), false, "table vs array");
}

TEST(HeadersMatchTest, DuplicateKeysPairInOrder) {
  // RabbitMQ pairs the k-th pattern entry named K with the k-th header named K.
  FieldTable k12 = Table({{"k", FieldValue(1)}, {"k", FieldValue(2)}});
  FieldTable k21 = Table({{"k", FieldValue(2)}, {"k", FieldValue(1)}});
  FieldTable k1 = Table({{"k", FieldValue(1)}});
  FieldTable k11 = Table({{"k", FieldValue(1)}, {"k", FieldValue(1)}});
  FieldTable any12 = Table({{"x-match", Str("any")}, {"k", FieldValue(1)}, {"k", FieldValue(2)}});

  EXPECT_TRUE(HeadersMatch(k12, &k12));
  EXPECT_FALSE(HeadersMatch(k12, &k21));
  EXPECT_FALSE(HeadersMatch(any12, &k21));
  EXPECT_TRUE(HeadersMatch(any12, &k1));
  EXPECT_FALSE(HeadersMatch(k1, &k21));  // the first header named k is 2
  EXPECT_TRUE(HeadersMatch(k1, &k12));
  EXPECT_FALSE(HeadersMatch(k11, &k1));  // the second pattern entry has no partner
  EXPECT_TRUE(HeadersMatch(k11, &k11));
}

TEST(HeadersMatchTest, ValidXMatch) {
  EXPECT_TRUE(ValidXMatch(FieldTable{}));
  EXPECT_TRUE(ValidXMatch(Table({{"a", FieldValue(1)}})));
  for (const char* ok : {"all", "any", "all-with-x", "any-with-x"}) {
    EXPECT_TRUE(ValidXMatch(Table({{"x-match", Str(ok)}}))) << ok;
  }
  for (const char* bad : {"", "ALL", "Any", "none", "all ", "all-with-X", "with-x"}) {
    EXPECT_FALSE(ValidXMatch(Table({{"x-match", Str(bad)}}))) << bad;
  }
  // Must be a long string.
  EXPECT_FALSE(ValidXMatch(Table({{"x-match", FieldValue(ByteArray{"all"})}})));
  EXPECT_FALSE(ValidXMatch(Table({{"x-match", FieldValue(1)}})));
  EXPECT_FALSE(ValidXMatch(Table({{"x-match", FieldValue(Void{})}})));
  EXPECT_FALSE(ValidXMatch(Table({{"x-match", FieldValue(true)}})));
  // Only the first x-match counts.
  EXPECT_TRUE(ValidXMatch(Table({{"x-match", Str("any")}, {"x-match", Str("bogus")}})));
  EXPECT_FALSE(ValidXMatch(Table({{"x-match", Str("bogus")}, {"x-match", Str("any")}})));
}

TEST(HeadersMatchTest, InvalidXMatchActsAsAll) {
  // Cannot be bound (ValidXMatch), but the matcher must still behave: RabbitMQ falls back to all.
  FieldTable args = Table({{"x-match", Str("bogus")}, {"a", FieldValue(1)}, {"b", FieldValue(2)}});
  FieldTable both = Table({{"a", FieldValue(1)}, {"b", FieldValue(2)}});
  FieldTable one = Table({{"a", FieldValue(1)}});
  EXPECT_TRUE(HeadersMatch(args, &both));
  EXPECT_FALSE(HeadersMatch(args, &one));
  FieldTable first_wins = Table({{"x-match", Str("any")}, {"x-match", Str("all")}, {"a", FieldValue(1)},
                                 {"b", FieldValue(2)}});
  EXPECT_TRUE(HeadersMatch(first_wins, &one));
}

TEST(HeadersMatchTest, LargeTables) {
  // Big enough to take the sort-and-merge path.
  FieldTable args;
  FieldTable headers;
  for (int i = 0; i < 200; ++i) {
    args.entries.push_back({"key" + std::to_string(i), FieldValue(int32_t{i})});
  }
  for (int i = 299; i >= 0; --i) {
    headers.entries.push_back({"key" + std::to_string(i), FieldValue(int64_t{i})});
  }
  EXPECT_TRUE(HeadersMatch(args, &headers));
  headers.entries[150].second = FieldValue(int64_t{-1});  // key149 now differs
  EXPECT_FALSE(HeadersMatch(args, &headers));
  FieldTable any = args;
  any.entries.push_back({"x-match", Str("any")});
  EXPECT_TRUE(HeadersMatch(any, &headers));
  for (auto& e : headers.entries) e.second = FieldValue(int64_t{-1});
  EXPECT_FALSE(HeadersMatch(any, &headers));
}

// The direct-lookup path (small tables) and the sort-and-merge path (large tables) agree.
TEST(HeadersMatchTest, RandomizedSmallVersusLargePath) {
  std::mt19937 rng(4242);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const std::vector<std::string> keys = {"a", "b", "c", "x-a", "x-b"};
  const std::vector<FieldValue> values = {FieldValue(int32_t{1}), FieldValue(int64_t{1}), FieldValue(1.0),
                                          FieldValue(int8_t{2}), Str("1"), FieldValue(ByteArray{"1"}),
                                          FieldValue(true)};
  const std::vector<std::string> modes = {"", "all", "any", "all-with-x", "any-with-x"};

  // Padding: headers with unrelated keys never change the outcome.
  FieldTable padding;
  for (int i = 0; i < 4100; ++i) padding.entries.push_back({"pad" + std::to_string(i), FieldValue(i)});

  int matched = 0;
  for (int round = 0; round < 600; ++round) {
    FieldTable args;
    const std::string& mode = modes[pick(static_cast<int>(modes.size()))];
    if (!mode.empty()) args.entries.push_back({"x-match", Str(mode.c_str())});
    for (int i = pick(5); i > 0; --i) {
      FieldValue v = pick(6) == 0 ? FieldValue(Void{}) : values[pick(static_cast<int>(values.size()))];
      args.entries.push_back({keys[pick(static_cast<int>(keys.size()))], v});
    }
    FieldTable headers;
    for (int i = pick(6); i > 0; --i) {
      headers.entries.push_back(
          {keys[pick(static_cast<int>(keys.size()))], values[pick(static_cast<int>(values.size()))]});
    }
    bool small = HeadersMatch(args, &headers);
    FieldTable big = headers;
    big.entries.insert(big.entries.begin() + pick(static_cast<int>(big.entries.size()) + 1),
                       padding.entries.begin(), padding.entries.end());
    EXPECT_EQ(HeadersMatch(args, &big), small) << "round " << round;
    matched += small ? 1 : 0;
  }
  // Sanity: the generator produces both outcomes.
  EXPECT_GT(matched, 30);
  EXPECT_LT(matched, 570);
}

}  // namespace
}  // namespace warren::broker
