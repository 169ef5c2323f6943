// Tests for basic properties and content headers: full round trips, bit-exact re-encoding of
// decoded bytes, the peek fast paths, and malformed flags/lists.
#include "server/amqp/properties.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::amqp {
namespace {

using namespace std::string_literals;

std::string Encode(const BasicProperties& p) {
  std::string out;
  ByteWriter w(out);
  EncodeProperties(p, w);
  return out;
}

BasicProperties AllSet() {
  BasicProperties p;
  p.content_type = "application/json";
  p.content_encoding = "gzip";
  p.headers = FieldTable{{{"x-match", FieldValue("all"s)},
                          {"n", FieldValue(int32_t{-7})},
                          {"nested", FieldValue::Table(FieldTable{{{"b", FieldValue(true)}}})}}};
  p.delivery_mode = 2;
  p.priority = 9;
  p.correlation_id = "corr";
  p.reply_to = "amq.rabbitmq.reply-to";
  p.expiration = "60000";
  p.message_id = "msg-1";
  p.timestamp = 0x0102030405060708ULL;
  p.type = "order.created";
  p.user_id = "guest";
  p.app_id = "warren-test";
  p.cluster_id = "c1";
  return p;
}

TEST(PropertiesTest, EmptyEncodesAsZeroFlags) {
  EXPECT_EQ(Encode({}), "\x00\x00"s);
  BasicProperties p;
  p.priority = 1;
  ASSERT_TRUE(DecodeProperties("\x00\x00"s, &p));
  EXPECT_EQ(p, BasicProperties{});
}

TEST(PropertiesTest, AllPropertiesRoundTrip) {
  const BasicProperties p = AllSet();
  const std::string raw = Encode(p);
  EXPECT_EQ(raw.substr(0, 2), "\xff\xfc"s);  // bits 15..2 set
  BasicProperties decoded;
  ASSERT_TRUE(DecodeProperties(raw, &decoded));
  EXPECT_EQ(decoded, p);
  EXPECT_EQ(Encode(decoded), raw);
  EXPECT_TRUE(ValidateProperties(raw));
}

TEST(PropertiesTest, EachPropertyAloneHasItsFlagBitAndRoundTrips) {
  const BasicProperties all = AllSet();
  struct Single {
    const char* name;
    int bit;
    void (*set)(BasicProperties&, const BasicProperties&);
  };
  const Single singles[] = {
      {"content_type", 15, [](BasicProperties& p, const BasicProperties& a) { p.content_type = a.content_type; }},
      {"content_encoding", 14, [](BasicProperties& p, const BasicProperties& a) { p.content_encoding = a.content_encoding; }},
      {"headers", 13, [](BasicProperties& p, const BasicProperties& a) { p.headers = a.headers; }},
      {"delivery_mode", 12, [](BasicProperties& p, const BasicProperties& a) { p.delivery_mode = a.delivery_mode; }},
      {"priority", 11, [](BasicProperties& p, const BasicProperties& a) { p.priority = a.priority; }},
      {"correlation_id", 10, [](BasicProperties& p, const BasicProperties& a) { p.correlation_id = a.correlation_id; }},
      {"reply_to", 9, [](BasicProperties& p, const BasicProperties& a) { p.reply_to = a.reply_to; }},
      {"expiration", 8, [](BasicProperties& p, const BasicProperties& a) { p.expiration = a.expiration; }},
      {"message_id", 7, [](BasicProperties& p, const BasicProperties& a) { p.message_id = a.message_id; }},
      {"timestamp", 6, [](BasicProperties& p, const BasicProperties& a) { p.timestamp = a.timestamp; }},
      {"type", 5, [](BasicProperties& p, const BasicProperties& a) { p.type = a.type; }},
      {"user_id", 4, [](BasicProperties& p, const BasicProperties& a) { p.user_id = a.user_id; }},
      {"app_id", 3, [](BasicProperties& p, const BasicProperties& a) { p.app_id = a.app_id; }},
      {"cluster_id", 2, [](BasicProperties& p, const BasicProperties& a) { p.cluster_id = a.cluster_id; }},
  };
  for (const Single& s : singles) {
    SCOPED_TRACE(s.name);
    BasicProperties p;
    s.set(p, all);
    const std::string raw = Encode(p);
    const uint16_t flags = static_cast<uint16_t>((static_cast<uint8_t>(raw[0]) << 8) |
                                                 static_cast<uint8_t>(raw[1]));
    EXPECT_EQ(flags, 1u << s.bit);
    BasicProperties decoded;
    ASSERT_TRUE(DecodeProperties(raw, &decoded));
    EXPECT_EQ(decoded, p);
  }
}

TEST(PropertiesTest, HandWrittenBytesDecode) {
  // delivery-mode 2, correlation-id "c", timestamp 5.
  const std::string raw = "\x14\x40" "\x02" "\x01" "c" "\x00\x00\x00\x00\x00\x00\x00\x05"s;
  BasicProperties p;
  ASSERT_TRUE(DecodeProperties(raw, &p));
  BasicProperties want;
  want.delivery_mode = 2;
  want.correlation_id = "c";
  want.timestamp = 5;
  EXPECT_EQ(p, want);
  EXPECT_EQ(Encode(p), raw);
}

TEST(PropertiesTest, DecodedBytesReEncodeIdentically) {
  // Sparse selections of properties, decoded from bytes and re-encoded.
  const BasicProperties all = AllSet();
  for (uint32_t mask = 0; mask < (1u << 14); mask += 0x155) {
    BasicProperties p;
    if (mask & 1) p.content_type = all.content_type;
    if (mask & 2) p.content_encoding = all.content_encoding;
    if (mask & 4) p.headers = all.headers;
    if (mask & 8) p.delivery_mode = all.delivery_mode;
    if (mask & 16) p.priority = all.priority;
    if (mask & 32) p.correlation_id = all.correlation_id;
    if (mask & 64) p.reply_to = all.reply_to;
    if (mask & 128) p.expiration = all.expiration;
    if (mask & 256) p.message_id = all.message_id;
    if (mask & 512) p.timestamp = all.timestamp;
    if (mask & 1024) p.type = all.type;
    if (mask & 2048) p.user_id = all.user_id;
    if (mask & 4096) p.app_id = all.app_id;
    if (mask & 8192) p.cluster_id = all.cluster_id;
    const std::string raw = Encode(p);
    BasicProperties decoded;
    ASSERT_TRUE(DecodeProperties(raw, &decoded)) << mask;
    EXPECT_EQ(decoded, p) << mask;
    EXPECT_EQ(Encode(decoded), raw) << mask;
  }
}

TEST(PropertiesTest, EmptyStringsAndEmptyHeadersArePresent) {
  BasicProperties p;
  p.content_type = "";
  p.headers = FieldTable{};
  const std::string raw = Encode(p);
  EXPECT_EQ(raw, "\xa0\x00" "\x00" "\x00\x00\x00\x00"s);
  BasicProperties decoded;
  ASSERT_TRUE(DecodeProperties(raw, &decoded));
  EXPECT_EQ(decoded, p);
}

TEST(PropertiesTest, EveryTruncationIsRejected) {
  const std::string raw = Encode(AllSet());
  for (size_t n = 0; n < raw.size(); ++n) {
    SCOPED_TRACE(n);
    BasicProperties p;
    EXPECT_FALSE(DecodeProperties(std::string_view(raw).substr(0, n), &p));
    EXPECT_FALSE(ValidateProperties(std::string_view(raw).substr(0, n)));
  }
}

TEST(PropertiesTest, TrailingBytesAreRejected) {
  BasicProperties p;
  EXPECT_FALSE(DecodeProperties("\x00\x00\x00"s, &p));
  EXPECT_FALSE(ValidateProperties(Encode(AllSet()) + "x"));
}

TEST(PropertiesTest, MalformedFlags) {
  BasicProperties p;
  EXPECT_FALSE(DecodeProperties("", &p));
  EXPECT_FALSE(DecodeProperties("\x00"s, &p));
  // Bit 1 names no property.
  EXPECT_FALSE(DecodeProperties("\x00\x02"s, &p));
  // Continuation bit without a following word.
  EXPECT_FALSE(DecodeProperties("\x00\x01"s, &p));
  EXPECT_FALSE(DecodeProperties("\x00\x01\x00"s, &p));
  // Continuation word announcing unknown properties.
  EXPECT_FALSE(DecodeProperties("\x00\x01\x80\x00"s, &p));
  // Flag set but the value is missing.
  EXPECT_FALSE(DecodeProperties("\x80\x00"s, &p));
  EXPECT_FALSE(DecodeProperties("\x20\x00\x00\x00\x00\x05\x01k"s, &p));  // headers too short
  EXPECT_FALSE(DecodeProperties("\x20\x00\x00\x00\x00\x03\x01kZ"s, &p));  // bad type letter
  // Empty continuation words are tolerated.
  ASSERT_TRUE(DecodeProperties("\x10\x01\x00\x01\x00\x00\x02"s, &p));
  EXPECT_EQ(p.delivery_mode, 2);
  for (std::string bad : {""s, "\x00"s, "\x00\x02"s, "\x00\x01"s, "\x00\x01\x80\x00"s,
                          "\x80\x00"s}) {
    EXPECT_FALSE(ValidateProperties(bad));
    EXPECT_EQ(PeekDeliveryMode(bad), std::nullopt);
    std::optional<FieldTable> h;
    EXPECT_FALSE(PeekHeaders(bad, &h));
  }
}

TEST(PropertiesTest, DecodeFailureLeavesOutputUntouched) {
  BasicProperties p = AllSet();
  EXPECT_FALSE(DecodeProperties("\x80\x00"s, &p));
  EXPECT_EQ(p, AllSet());
}

TEST(PropertiesTest, PeekDeliveryMode) {
  EXPECT_EQ(PeekDeliveryMode(Encode(AllSet())), 2);
  EXPECT_EQ(PeekDeliveryMode(Encode({})), std::nullopt);
  BasicProperties p;
  p.delivery_mode = 1;
  EXPECT_EQ(PeekDeliveryMode(Encode(p)), 1);
  p.content_type = "text/plain";
  p.content_encoding = "utf-8";
  p.headers = FieldTable{{{"k", FieldValue::Array({FieldValue(1.5)})}}};
  p.priority = 3;
  EXPECT_EQ(PeekDeliveryMode(Encode(p)), 1);
  // Delivery mode flagged but missing; headers before it malformed.
  EXPECT_EQ(PeekDeliveryMode("\x10\x00"s), std::nullopt);
  EXPECT_EQ(PeekDeliveryMode("\x30\x00\x00\x00\x00\x09\x02"s), std::nullopt);
  // Truncations never crash.
  const std::string raw = Encode(AllSet());
  for (size_t n = 0; n < raw.size(); ++n) PeekDeliveryMode(std::string_view(raw).substr(0, n));
}

TEST(PropertiesTest, PeekHeaders) {
  std::optional<FieldTable> h = FieldTable{{{"stale", FieldValue(true)}}};
  ASSERT_TRUE(PeekHeaders(Encode({}), &h));
  EXPECT_EQ(h, std::nullopt);

  ASSERT_TRUE(PeekHeaders(Encode(AllSet()), &h));
  EXPECT_EQ(h, AllSet().headers);

  BasicProperties p;
  p.headers = FieldTable{};
  ASSERT_TRUE(PeekHeaders(Encode(p), &h));
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->empty());

  // Content type present but truncated before the headers.
  EXPECT_FALSE(PeekHeaders("\xa0\x00\x05" "ab"s, &h));
  // Headers malformed.
  EXPECT_FALSE(PeekHeaders("\x20\x00\x00\x00\x00\x03\x01kZ"s, &h));
  EXPECT_EQ(h, std::nullopt);
}

TEST(PropertiesTest, PeekPriorityExpirationReplyTo) {
  const std::string all = Encode(AllSet());
  EXPECT_EQ(PeekPriority(all), 9);
  EXPECT_EQ(PeekExpiration(all), std::optional<std::string_view>("60000"));
  EXPECT_EQ(PeekReplyTo(all), std::optional<std::string_view>("amq.rabbitmq.reply-to"));
  const std::string none = Encode({});
  EXPECT_EQ(PeekPriority(none), std::nullopt);
  EXPECT_EQ(PeekExpiration(none), std::nullopt);
  EXPECT_EQ(PeekReplyTo(none), std::nullopt);
  BasicProperties p;
  p.expiration = "";
  EXPECT_EQ(PeekExpiration(Encode(p)), std::optional<std::string_view>(""));
  // Flagged but missing.
  EXPECT_EQ(PeekExpiration("\x01\x00"s), std::nullopt);
  EXPECT_EQ(PeekPriority("\x08\x00"s), std::nullopt);
  for (size_t n = 0; n < all.size(); ++n) {
    const std::string_view cut = std::string_view(all).substr(0, n);
    PeekPriority(cut);
    PeekExpiration(cut);
    PeekReplyTo(cut);
  }
}

TEST(ContentHeaderTest, EncodeDecode) {
  const std::string raw = Encode(AllSet());
  std::string payload;
  ByteWriter w(payload);
  EncodeContentHeader(60, 0x0000000100000002ULL, raw, w);
  EXPECT_EQ(payload.substr(0, 12), "\x00\x3c\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02"s);

  ContentHeader h;
  ASSERT_TRUE(DecodeContentHeader(payload, &h));
  EXPECT_EQ(h.class_id, 60);
  EXPECT_EQ(h.weight, 0);
  EXPECT_EQ(h.body_size, 0x0000000100000002ULL);
  EXPECT_EQ(h.raw_properties, raw);
  EXPECT_EQ(h.raw_properties.data(), payload.data() + 12);  // a view, not a copy
  BasicProperties p;
  ASSERT_TRUE(DecodeProperties(h.raw_properties, &p));
  EXPECT_EQ(p, AllSet());
}

TEST(ContentHeaderTest, TruncationAndMalformedPropertiesRejected) {
  std::string payload;
  ByteWriter w(payload);
  EncodeContentHeader(60, 5, Encode(AllSet()), w);
  for (size_t n = 0; n < payload.size(); ++n) {
    SCOPED_TRACE(n);
    ContentHeader h;
    EXPECT_FALSE(DecodeContentHeader(std::string_view(payload).substr(0, n), &h));
  }
  ContentHeader h;
  EXPECT_FALSE(DecodeContentHeader(payload + "x", &h));
  std::string bad_flags;
  ByteWriter bw(bad_flags);
  EncodeContentHeader(60, 5, "\x00\x02"s, bw);
  EXPECT_FALSE(DecodeContentHeader(bad_flags, &h));
}

TEST(PropertiesTest, SetHeaderAppendsOrReplacesAndKeepsTheRest) {
  BasicProperties p;
  p.content_type = "text/plain";
  p.priority = 3;
  p.headers = FieldTable{{{"a", FieldValue(int32_t{1})}}};
  std::string out;
  ASSERT_TRUE(SetHeader(Encode(p), "x-delivery-count", FieldValue(int64_t{2}), &out));
  BasicProperties got;
  ASSERT_TRUE(DecodeProperties(out, &got));
  EXPECT_EQ(got.content_type, "text/plain");
  EXPECT_EQ(got.priority, 3);
  ASSERT_EQ(got.headers->entries.size(), 2u);
  EXPECT_EQ(got.headers->entries[1].first, "x-delivery-count");
  EXPECT_EQ(got.headers->entries[1].second.TypeCode(), 'l');
  EXPECT_EQ(got.headers->entries[1].second.AsInt(), 2);
  // Replaced where the publisher set it; a message without headers gets a table.
  ASSERT_TRUE(SetHeader(out, "x-delivery-count", FieldValue(int64_t{5}), &out));
  ASSERT_TRUE(DecodeProperties(out, &got));
  ASSERT_EQ(got.headers->entries.size(), 2u);
  EXPECT_EQ(got.headers->Find("x-delivery-count")->AsInt(), 5);
  ASSERT_TRUE(SetHeader(Encode(BasicProperties{}), "k", FieldValue(int64_t{0}), &out));
  ASSERT_TRUE(DecodeProperties(out, &got));
  EXPECT_EQ(got.headers->entries.size(), 1u);
  EXPECT_FALSE(SetHeader(std::string("\xff", 1), "k", FieldValue(int64_t{0}), &out));
}

}  // namespace
}  // namespace warren::amqp
