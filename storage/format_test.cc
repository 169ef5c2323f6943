// Key and value encodings.
#include "storage/format.h"

#include <string>

#include <gtest/gtest.h>

namespace warren::storage {
namespace {

TEST(FormatTest, MessageKeysOrderByQueueThenSeq) {
  EXPECT_LT(MessageKey(1, 2), MessageKey(1, 3));
  EXPECT_LT(MessageKey(1, 255), MessageKey(1, 256));
  EXPECT_LT(MessageKey(1, UINT64_MAX), MessageKey(2, 0));
  EXPECT_LT(MessageKey(1, UINT64_MAX), QueueRangeEnd(1));
  EXPECT_LE(QueueRangeEnd(1), MessageKey(2, 0));
  EXPECT_LT(MessageKey(UINT64_MAX, UINT64_MAX), QueueRangeEnd(UINT64_MAX));
  uint64_t q = 0, s = 0;
  ASSERT_TRUE(DecodeMessageKey(MessageKey(0x0102030405060708, 42), &q, &s));
  EXPECT_EQ(q, 0x0102030405060708u);
  EXPECT_EQ(s, 42u);
  EXPECT_FALSE(DecodeMessageKey("short", &q, &s));
}

TEST(FormatTest, DefinitionKeysAreUnambiguousAndOrdered) {
  // Without escaping, ("a\0b", "c") and ("a", "b\0c") could collide.
  EXPECT_NE(ExchangeKey(std::string("a\0b", 3), "c"), ExchangeKey("a", std::string("b\0c", 3)));
  EXPECT_NE(ExchangeKey("ab", "c"), ExchangeKey("a", "bc"));
  EXPECT_LT(QueueKey("/", "a"), QueueKey("/", "b"));
  EXPECT_LT(QueueKey("/", "a"), QueueKey("/", "aa"));
  EXPECT_LT(QueueKey("/", "zz"), QueueKey("a", ""));
  EXPECT_NE(BindingKey("/", "x", "q", false, "", ""), BindingKey("/", "x", "q", true, "", ""));
  std::string k = QueueKey("v", "n");
  EXPECT_GE(k, DefPrefix(DefKind::kQueue));
  EXPECT_LT(k, DefPrefixEnd(DefKind::kQueue));
}

TEST(FormatTest, DelayedKeysOrderByDueThenSeqWithinTheirExchangesRange) {
  const std::string a = DelayedExchangePrefix("/", "a");
  EXPECT_LT(DelayedKey(a, 5, 9), DelayedKey(a, 6, 1));
  EXPECT_LT(DelayedKey(a, 6, 1), DelayedKey(a, 6, 2));
  EXPECT_LT(DelayedKey(a, UINT64_MAX, UINT64_MAX), DelayedRangeEnd(a));
  EXPECT_GE(DelayedKey(a, 0, 0), a);
  // No other exchange's key falls in a's range: names that extend it or hold 00 bytes.
  for (std::string_view other : {std::string_view("ab"), std::string_view("a\0", 2), std::string_view("")}) {
    const std::string k = DelayedKey(DelayedExchangePrefix("/", other), 0, 0);
    EXPECT_FALSE(k >= a && k < DelayedRangeEnd(a)) << PrintableKey(k);
  }
  const std::string k = DelayedKey(DelayedExchangePrefix("vh", "x"), 42, 7);
  EXPECT_LT(k, DelayedRangeEnd(kDelayedPrefix));
  std::string_view prefix;
  uint64_t due = 0, seq = 0;
  ASSERT_TRUE(DecodeDelayedKey(k, &prefix, &due, &seq));
  EXPECT_EQ(prefix, DelayedExchangePrefix("vh", "x"));
  EXPECT_EQ(due, 42u);
  EXPECT_EQ(seq, 7u);
  EXPECT_FALSE(DecodeDelayedKey("delayed/short", &prefix, &due, &seq));
}

TEST(FormatTest, MessageValueRoundTrip) {
  std::string value;
  std::string props("\x80\x00\x05hello", 8), body("bo\0dy", 5);
  MessageData m{"exchange", "rk", props, body};
  EncodeMessageHeader(kInlineMessage, m, &value);
  value.append(m.body);
  MessageView v;
  ASSERT_TRUE(DecodeIndexValue(value, &v).ok());
  EXPECT_EQ(v.kind, kInlineMessage);
  EXPECT_EQ(v.exchange, m.exchange);
  EXPECT_EQ(v.routing_key, m.routing_key);
  EXPECT_EQ(v.properties, m.properties);
  EXPECT_EQ(v.body, m.body);
  // A shared body value is not an index value and vice versa.
  value[0] = static_cast<char>(kSharedBody);
  EXPECT_TRUE(DecodeIndexValue(value, &v).IsCorruption());
  EXPECT_TRUE(DecodeBodyValue(value, &v).ok());
  EXPECT_EQ(v.body, m.body);
}

TEST(FormatTest, LongFieldsUseMultiByteLengths) {
  std::string value;
  std::string props(70000, 'p');
  EncodeMessageHeader(kInlineMessage, MessageData{"", "", props, ""}, &value);
  MessageView v;
  ASSERT_TRUE(DecodeIndexValue(value, &v).ok());
  EXPECT_EQ(v.properties.size(), 70000u);
  EXPECT_TRUE(v.body.empty());
}

TEST(FormatTest, TruncatedValuesAreCorruption) {
  std::string value;
  EncodeMessageHeader(kInlineMessage, MessageData{"exchange", "rk", "props", ""}, &value);
  MessageView v;
  for (size_t n = 0; n < value.size(); ++n) {
    EXPECT_TRUE(DecodeIndexValue(value.substr(0, n), &v).IsCorruption()) << n;
  }
  EXPECT_TRUE(DecodeIndexValue("\x09", &v).IsCorruption());
  EXPECT_TRUE(DecodeIndexValue(EncodeBodyRef(5).substr(0, 5), &v).IsCorruption());
}

TEST(FormatTest, StreamEntriesAndSegments) {
  MessageData m{"ex", "rk", "props", "body"};
  std::string value;
  EncodeStreamHeader(1234567890, m, &value);
  value += m.body;
  MessageView v;
  ASSERT_TRUE(DecodeIndexValue(value, &v).ok());
  EXPECT_EQ(v.kind, kStreamMessage);
  EXPECT_EQ(v.timestamp, 1234567890);
  EXPECT_EQ(v.exchange, "ex");
  EXPECT_EQ(v.routing_key, "rk");
  EXPECT_EQ(v.properties, "props");
  EXPECT_EQ(v.body, "body");
  EXPECT_FALSE(DecodeIndexValue(value.substr(0, 5), &v).ok());

  StreamSegment s{10, 20, 1000, 5, 7};
  StreamSegment back;
  ASSERT_TRUE(DecodeStreamSegment(EncodeStreamSegment(s), &back).ok());
  back.first = 10;
  EXPECT_EQ(back, s);
  EXPECT_FALSE(DecodeStreamSegment("x", &back).ok());
  uint64_t q = 0, first = 0;
  ASSERT_TRUE(DecodeStreamSegmentKey(StreamSegmentKey(3, 10), &q, &first));
  EXPECT_EQ(q, 3u);
  EXPECT_EQ(first, 10u);
  EXPECT_LT(StreamSegmentKey(3, 9), StreamSegmentKey(3, 10));
  EXPECT_LT(StreamSegmentKey(3, UINT64_MAX), StreamSegmentRangeEnd(3));
  EXPECT_LT(StreamSegmentRangeEnd(3), StreamSegmentKey(4, 0));
  EXPECT_LT(StreamSegmentKey(UINT64_MAX, UINT64_MAX), StreamSegmentRangeEnd(UINT64_MAX));
}

TEST(FormatTest, MessagesWithAnExpiry) {
  MessageData m{"ex", "rk", "props", "body"};
  std::string value;
  EncodeInlineHeader(1700000000123, m, &value);
  value += m.body;
  MessageView v;
  ASSERT_TRUE(DecodeIndexValue(value, &v).ok());
  EXPECT_EQ(v.kind, kInlineMessage);
  EXPECT_EQ(v.expires, 1700000000123);
  EXPECT_EQ(v.exchange, "ex");
  EXPECT_EQ(v.body, "body");
  for (size_t n = 0; n < value.size() - m.body.size(); ++n) {
    EXPECT_TRUE(DecodeIndexValue(value.substr(0, n), &v).IsCorruption()) << n;
  }
  std::string plain;
  EncodeInlineHeader(0, m, &plain);
  ASSERT_TRUE(DecodeIndexValue(plain, &v).ok());
  EXPECT_EQ(v.expires, 0);
  EXPECT_EQ(static_cast<uint8_t>(plain[0]), kInlineMessage);  // version 1's layout when there is no TTL

  ASSERT_TRUE(DecodeIndexValue(EncodeBodyRef(77, 1700000000999), &v).ok());
  EXPECT_EQ(v.kind, kBodyRef);
  EXPECT_EQ(v.body_id, 77u);
  EXPECT_EQ(v.expires, 1700000000999);
  EXPECT_TRUE(DecodeIndexValue(EncodeBodyRef(77, 5).substr(0, 12), &v).IsCorruption());
  // The flag only goes with inline messages and body references, and never with expiry 0.
  std::string stream;
  EncodeStreamHeader(5, m, &stream);
  stream[0] = static_cast<char>(kStreamMessage | kExpiresFlag);
  EXPECT_TRUE(DecodeIndexValue(stream, &v).IsCorruption());
  std::string zero = EncodeBodyRef(77, 1);
  zero[8] = '\0';
  EXPECT_TRUE(DecodeIndexValue(zero, &v).IsCorruption());
}

TEST(FormatTest, BodyRefAndDeliveryState) {
  MessageView v;
  ASSERT_TRUE(DecodeIndexValue(EncodeBodyRef(123456789), &v).ok());
  EXPECT_EQ(v.kind, kBodyRef);
  EXPECT_EQ(v.body_id, 123456789u);
  DeliveryState d;
  ASSERT_TRUE(DecodeDeliveryState(EncodeDeliveryState({300, true}), &d).ok());
  EXPECT_EQ(d.delivery_count, 300u);
  EXPECT_TRUE(d.redelivered);
  EXPECT_TRUE(DecodeDeliveryState("\x01", &d).IsCorruption());
  EXPECT_TRUE(DecodeDeliveryState(std::string("\x02\x01\x00", 3), &d).IsCorruption());
}

}  // namespace
}  // namespace warren::storage
