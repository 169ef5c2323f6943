#include "server/broker/queue_arguments.h"

#include <gtest/gtest.h>

#include <string>

#include "server/broker/message.h"

namespace warren::broker {
namespace {

using amqp::FieldTable;
using amqp::FieldValue;
using namespace std::string_literals;

constexpr std::string_view kLabel = "queue 'q' in vhost '/'";

FieldTable Args(std::vector<std::pair<std::string, FieldValue>> entries) { return FieldTable{std::move(entries)}; }

std::string ErrorText(const FieldTable& args) {
  auto parsed = ParseQueueArguments(args, kLabel);
  if (parsed) return "ok";
  EXPECT_EQ(parsed.error().code, amqp::reply::kPreconditionFailed);
  return parsed.error().text;
}

TEST(QueueArgumentsTest, EmptyMeansPlainQueue) {
  auto parsed = ParseQueueArguments({}, kLabel);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->any());
  // Unknown and purely informational arguments do not make a queue special.
  parsed = ParseQueueArguments(Args({{"x-custom", FieldValue("v"s)}, {"x-queue-mode", FieldValue("lazy"s)}}), kLabel);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->any());
}

TEST(QueueArgumentsTest, ParsesEveryKnownArgument) {
  auto parsed = ParseQueueArguments(Args({{"x-message-ttl", FieldValue(int32_t{1500})},
                                          {"x-expires", FieldValue(int64_t{60000})},
                                          {"x-max-length", FieldValue(uint16_t{10})},
                                          {"x-max-length-bytes", FieldValue(int8_t{100})},
                                          {"x-overflow", FieldValue("reject-publish-dlx"s)},
                                          {"x-dead-letter-exchange", FieldValue("dlx"s)},
                                          {"x-dead-letter-routing-key", FieldValue("rk"s)},
                                          {"x-max-priority", FieldValue(uint8_t{9})},
                                          {"x-single-active-consumer", FieldValue(true)}}),
                                    kLabel);
  ASSERT_TRUE(parsed) << parsed.error().text;
  EXPECT_TRUE(parsed->any());
  EXPECT_EQ(parsed->message_ttl, 1500u);
  EXPECT_EQ(parsed->expires, 60000u);
  EXPECT_EQ(parsed->max_length, 10u);
  EXPECT_EQ(parsed->max_length_bytes, 100u);
  EXPECT_EQ(parsed->overflow, Overflow::kRejectPublishDlx);
  EXPECT_EQ(parsed->dead_letter_exchange, "dlx");
  EXPECT_EQ(parsed->dead_letter_routing_key, "rk");
  EXPECT_EQ(parsed->max_priority, 9);
  EXPECT_TRUE(parsed->single_active_consumer);
}

TEST(QueueArgumentsTest, QueueType) {
  EXPECT_EQ(ParseValidQueueArguments({}).type, QueueType::kClassic);
  EXPECT_EQ(ParseValidQueueArguments(Args({{"x-queue-type", FieldValue("quorum"s)}})).type, QueueType::kQuorum);
  EXPECT_EQ(ParseValidQueueArguments(Args({{"x-queue-type", FieldValue("stream"s)}})).type, QueueType::kStream);
  EXPECT_EQ(QueueTypeName(QueueType::kQuorum), "quorum");
  EXPECT_EQ(QueueTypeName(QueueType::kClassic), "classic");
}

TEST(QueueArgumentsTest, ArgumentsOfAnotherQueueType) {
  auto quorum = [](std::string key, FieldValue v) {
    return ErrorText(Args({{"x-queue-type", FieldValue("quorum"s)}, {std::move(key), std::move(v)}}));
  };
  // RabbitMQ 3.10.8's texts; the first argument the type does not take is named.
  EXPECT_EQ(quorum("x-max-priority", FieldValue(int32_t{5})),
            "invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_quorum_queue");
  EXPECT_EQ(quorum("x-queue-mode", FieldValue("lazy"s)),
            "invalid arg 'x-queue-mode' for queue 'q' in vhost '/' of queue type rabbit_quorum_queue");
  EXPECT_EQ(ErrorText(Args({{"x-queue-type", FieldValue("quorum"s)},
                            {"x-max-priority", FieldValue(int32_t{-1})}})),
            "invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_quorum_queue");
  for (const char* key : {"x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-delivery-limit",
                          "x-max-in-memory-length", "x-quorum-initial-group-size"}) {
    EXPECT_EQ(quorum(key, FieldValue(int32_t{3})), "ok") << key;
  }
  EXPECT_EQ(quorum("x-single-active-consumer", FieldValue(true)), "ok");
  EXPECT_EQ(quorum("x-custom", FieldValue("any"s)), "ok");  // no type knows it: ignored
  EXPECT_EQ(ErrorText(Args({{"x-dead-letter-strategy", FieldValue("at-most-once"s)}})),
            "invalid arg 'x-dead-letter-strategy' for queue 'q' in vhost '/' of queue type rabbit_classic_queue");
  // Warren's extension: classic queues take a delivery limit.
  EXPECT_EQ(ErrorText(Args({{"x-delivery-limit", FieldValue(int32_t{2})}})), "ok");
  EXPECT_EQ(ErrorText(Args({{"x-queue-type", FieldValue("bogus"s)}})),
            "invalid arg 'x-queue-type' for queue 'q' in vhost '/': \"unsupported queue type 'bogus'\"");
  EXPECT_EQ(ErrorText(Args({{"x-queue-type", FieldValue(int32_t{5})}})),
            "invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,signedint}");
}

TEST(QueueArgumentsTest, QuorumValueChecks) {
  auto quorum = [](std::string key, FieldValue v) {
    return ErrorText(Args({{"x-queue-type", FieldValue("quorum"s)}, {std::move(key), std::move(v)}}));
  };
  EXPECT_EQ(quorum("x-dead-letter-strategy", FieldValue("bogus"s)),
            "invalid arg 'x-dead-letter-strategy' for queue 'q' in vhost '/': invalid_dlx_strategy");
  EXPECT_EQ(quorum("x-dead-letter-strategy", FieldValue(int32_t{5})),
            "invalid arg 'x-dead-letter-strategy' for queue 'q' in vhost '/': {unacceptable_type,signedint}");
  EXPECT_EQ(quorum("x-quorum-initial-group-size", FieldValue(int32_t{0})),
            "invalid arg 'x-quorum-initial-group-size' for queue 'q' in vhost '/': {value_zero,0}");
  EXPECT_EQ(quorum("x-quorum-initial-group-size", FieldValue("a"s)),
            "invalid arg 'x-quorum-initial-group-size' for queue 'q' in vhost '/': \"expected integer, got longstr\"");
  EXPECT_EQ(quorum("x-queue-leader-locator", FieldValue("bogus"s)),
            "invalid arg 'x-queue-leader-locator' for queue 'q' in vhost '/': invalid_queue_locator_arg");
}

TEST(QueueArgumentsTest, DeliveryLimitAndQuorumFallbacks) {
  auto parse = [](std::vector<std::pair<std::string, FieldValue>> entries) {
    return ParseValidQueueArguments(Args(std::move(entries)));
  };
  EXPECT_EQ(parse({{"x-delivery-limit", FieldValue(int32_t{3})}}).delivery_limit, 3u);
  EXPECT_TRUE(parse({{"x-delivery-limit", FieldValue(int32_t{3})}}).any());
  // Not validated by RabbitMQ: negative acts as 0, a non-integer as no limit.
  EXPECT_EQ(parse({{"x-delivery-limit", FieldValue(int32_t{-1})}}).delivery_limit, 0u);
  EXPECT_EQ(parse({{"x-delivery-limit", FieldValue("a"s)}}).delivery_limit, std::nullopt);
  // Quorum queues turn reject-publish-dlx into drop-head, as RabbitMQ 3.10 does.
  EXPECT_EQ(parse({{"x-queue-type", FieldValue("quorum"s)}, {"x-overflow", FieldValue("reject-publish-dlx"s)}}).overflow,
            Overflow::kDropHead);
  EXPECT_EQ(parse({{"x-overflow", FieldValue("reject-publish-dlx"s)}}).overflow, Overflow::kRejectPublishDlx);
  EXPECT_EQ(parse({{"x-dead-letter-strategy", FieldValue("at-least-once"s)}}).dead_letter_strategy,
            DeadLetterStrategy::kAtLeastOnce);
}

TEST(QueueArgumentsTest, ConsumerTimeout) {
  auto parse = [](std::vector<std::pair<std::string, FieldValue>> entries) {
    return ParseValidQueueArguments(Args(std::move(entries)));
  };
  EXPECT_EQ(parse({}).consumer_timeout, std::nullopt);
  EXPECT_EQ(parse({{"x-consumer-timeout", FieldValue(int32_t{5000})}}).consumer_timeout, 5000u);
  EXPECT_EQ(parse({{"x-consumer-timeout", FieldValue(int64_t{31'536'000'000})}}).consumer_timeout, 31'536'000'000u);
  EXPECT_EQ(parse({{"x-consumer-timeout", FieldValue(int32_t{0})}}).consumer_timeout, 0u);
  // The channels apply it: the queue itself stays plain.
  EXPECT_FALSE(parse({{"x-consumer-timeout", FieldValue(int32_t{5000})}}).any());
  EXPECT_EQ(ErrorText(Args({{"x-consumer-timeout", FieldValue(int32_t{-1})}})),
            "invalid arg 'x-consumer-timeout' for queue 'q' in vhost '/': {value_negative,-1}");
  EXPECT_EQ(ErrorText(Args({{"x-consumer-timeout", FieldValue("60000"s)}})),
            "invalid arg 'x-consumer-timeout' for queue 'q' in vhost '/': {unacceptable_type,longstr}");
  EXPECT_EQ(ErrorText(Args({{"x-consumer-timeout", FieldValue(true)}})),
            "invalid arg 'x-consumer-timeout' for queue 'q' in vhost '/': {unacceptable_type,bool}");
  EXPECT_EQ(ErrorText(Args({{"x-queue-type", FieldValue("quorum"s)}, {"x-consumer-timeout", FieldValue(int32_t{1})}})),
            "ok");
  EXPECT_EQ(ErrorText(Args({{"x-queue-type", FieldValue("stream"s)}, {"x-consumer-timeout", FieldValue(int32_t{1})}})),
            "invalid arg 'x-consumer-timeout' for queue 'q' in vhost '/' of queue type rabbit_stream_queue");
}

TEST(QueueArgumentsTest, QuorumQueueProperties) {
  auto check = [](bool durable, bool exclusive, bool auto_delete, bool server_named) {
    auto ok = CheckQueueTypeProperties(QueueType::kQuorum, durable, exclusive, auto_delete, server_named, kLabel);
    return ok ? std::string("ok") : ok.error().text;
  };
  EXPECT_EQ(check(true, false, false, false), "ok");
  EXPECT_EQ(check(false, false, false, false), "invalid property 'non-durable' for queue 'q' in vhost '/'");
  EXPECT_EQ(check(false, true, false, false), "invalid property 'exclusive-owner' for queue 'q' in vhost '/'");
  EXPECT_EQ(check(true, true, true, false), "invalid property 'auto-delete' for queue 'q' in vhost '/'");
  EXPECT_EQ(check(false, false, false, true), "Cannot declare a server-named queue for type rabbit_quorum_queue");
  EXPECT_TRUE(CheckQueueTypeProperties(QueueType::kClassic, false, true, true, true, kLabel));
}

TEST(QueueArgumentsTest, RabbitMQErrorTexts) {
  EXPECT_EQ(ErrorText(Args({{"x-message-ttl", FieldValue(int32_t{-1})}})),
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}");
  EXPECT_EQ(ErrorText(Args({{"x-message-ttl", FieldValue(int64_t{4294967296})}})),
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_too_large,4294967296}");
  EXPECT_EQ(ErrorText(Args({{"x-message-ttl", FieldValue(int64_t{4294967295})}})), "ok");
  EXPECT_EQ(ErrorText(Args({{"x-max-length", FieldValue(int32_t{-1})}})),
            "invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}");
  EXPECT_EQ(ErrorText(Args({{"x-max-length", FieldValue("ten"s)}})),
            "invalid arg 'x-max-length' for queue 'q' in vhost '/': {unacceptable_type,longstr}");
  EXPECT_EQ(ErrorText(Args({{"x-max-length-bytes", FieldValue(1.5)}})),
            "invalid arg 'x-max-length-bytes' for queue 'q' in vhost '/': {unacceptable_type,double}");
  EXPECT_EQ(ErrorText(Args({{"x-expires", FieldValue(int32_t{0})}})),
            "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}");
  EXPECT_EQ(ErrorText(Args({{"x-expires", FieldValue(amqp::Timestamp{5})}})),
            "invalid arg 'x-expires' for queue 'q' in vhost '/': {unacceptable_type,timestamp}");
  EXPECT_EQ(ErrorText(Args({{"x-overflow", FieldValue("drop-everything"s)}})),
            "invalid arg 'x-overflow' for queue 'q' in vhost '/': invalid_overflow");
  EXPECT_EQ(ErrorText(Args({{"x-overflow", FieldValue(true)}})),
            "invalid arg 'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,bool}");
  EXPECT_EQ(ErrorText(Args({{"x-dead-letter-routing-key", FieldValue("rk"s)}})),
            "invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined");
  EXPECT_EQ(ErrorText(Args({{"x-dead-letter-exchange", FieldValue(int32_t{1})}})),
            "invalid arg 'x-dead-letter-exchange' for queue 'q' in vhost '/': {unacceptable_type,signedint}");
  EXPECT_EQ(ErrorText(Args({{"x-max-priority", FieldValue(int32_t{256})}})),
            "invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}");
  EXPECT_EQ(ErrorText(Args({{"x-single-active-consumer", FieldValue("yes"s)}})),
            "invalid arg 'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,longstr}");
  EXPECT_EQ(ErrorText(Args({{"x-queue-mode", FieldValue("fast"s)}})),
            "invalid arg 'x-queue-mode' for queue 'q' in vhost '/': invalid_queue_mode");
  EXPECT_EQ(ErrorText(Args({{"x-queue-type", FieldValue("magic"s)}})),
            "invalid arg 'x-queue-type' for queue 'q' in vhost '/': \"unsupported queue type 'magic'\"");
}

TEST(QueueArgumentsTest, ChecksInRabbitMQOrder) {
  // x-expires is checked before x-message-ttl whatever the order in the table.
  EXPECT_EQ(ErrorText(Args({{"x-message-ttl", FieldValue(int32_t{-1})}, {"x-expires", FieldValue(int32_t{0})}})),
            "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}");
}

TEST(QueueArgumentsTest, ParseValidIgnoresWhatIsInvalid) {
  QueueArguments a = ParseValidQueueArguments(
      Args({{"x-message-ttl", FieldValue("soon"s)}, {"x-max-length", FieldValue(int32_t{-3})},
            {"x-dead-letter-routing-key", FieldValue("rk"s)}, {"x-max-priority", FieldValue(int32_t{0})}}));
  EXPECT_FALSE(a.any());
  EXPECT_FALSE(a.dead_letter_routing_key);  // only with an exchange
}

TEST(QueueArgumentsTest, ConsumerPriority) {
  EXPECT_EQ(ParseConsumerPriority({}, kLabel), 0);
  EXPECT_EQ(ParseConsumerPriority(Args({{"x-priority", FieldValue(int32_t{10})}}), kLabel), 10);
  EXPECT_EQ(ParseConsumerPriority(Args({{"x-priority", FieldValue(int16_t{-5})}}), kLabel), -5);
  EXPECT_EQ(ParseConsumerPriority(Args({{"x-priority", FieldValue(int64_t{1} << 40)}}), kLabel), INT32_MAX);
  auto bad = ParseConsumerPriority(Args({{"x-priority", FieldValue("high"s)}}), kLabel);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, amqp::reply::kPreconditionFailed);
  EXPECT_EQ(bad.error().text, "invalid arg 'x-priority' for queue 'q' in vhost '/': {unacceptable_type,longstr}");
}

TEST(QueueArgumentsTest, Expiration) {
  EXPECT_EQ(ParseExpiration("0"), 0u);
  EXPECT_EQ(ParseExpiration("60000"), 60000u);
  EXPECT_EQ(ParseExpiration("+5"), 5u);
  EXPECT_EQ(ParseExpiration("007"), 7u);
  EXPECT_EQ(ParseExpiration("4294967295"), 4294967295u);
  auto text = [](std::string_view e) {
    auto r = ParseExpiration(e);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().text;
  };
  EXPECT_EQ(text("soon"), "invalid expiration 'soon': no_integer");
  EXPECT_EQ(text(""), "invalid expiration '': no_integer");
  EXPECT_EQ(text("-"), "invalid expiration '-': no_integer");
  EXPECT_EQ(text("10s"), "invalid expiration '10s': {leftover_string,\"s\"}");
  EXPECT_EQ(text("-5"), "invalid expiration '-5': {value_negative,-5}");
  EXPECT_EQ(text("4294967296"), "invalid expiration '4294967296': {value_too_large,4294967296}");
  EXPECT_EQ(text("99999999999999999999999"),
            "invalid expiration '99999999999999999999999': {value_too_large,99999999999999999999999}");
}

TEST(QueueArgumentsTest, MessageReadsItsExpiration) {
  // flags: expiration (bit 8); shortstr "250"
  MessageRef valid = Message::Create("", "q", std::string_view("\x01\x00\x03" "250", 6), 0, nullptr);
  EXPECT_TRUE(valid->has_ttl());
  EXPECT_EQ(valid->ttl(), 250u);
  MessageRef invalid = Message::Create("", "q", std::string_view("\x01\x00\x02" "no", 5), 0, nullptr);
  EXPECT_EQ(invalid->expiration(), Message::Expiration::kInvalid);
  EXPECT_FALSE(invalid->has_ttl());
  MessageRef none = Message::Create("", "q", std::string_view("\x00\x00", 2), 0, nullptr);
  EXPECT_EQ(none->expiration(), Message::Expiration::kNone);
}

TEST(QueueArgumentsTest, FieldTypeNames) {
  EXPECT_EQ(FieldTypeName(FieldValue(true)), "bool");
  EXPECT_EQ(FieldTypeName(FieldValue(int32_t{1})), "signedint");
  EXPECT_EQ(FieldTypeName(FieldValue(uint32_t{1})), "unsignedint");
  EXPECT_EQ(FieldTypeName(FieldValue(int64_t{1})), "long");
  EXPECT_EQ(FieldTypeName(FieldValue("s"s)), "longstr");
  EXPECT_EQ(FieldTypeName(FieldValue::Table({})), "table");
  EXPECT_EQ(FieldTypeName(FieldValue::Array({})), "array");
  EXPECT_EQ(FieldTypeName(FieldValue(amqp::Void{})), "void");
}

}  // namespace
}  // namespace warren::broker
