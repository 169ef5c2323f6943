#include "tools/perf/frames.h"

#include <gtest/gtest.h>

#include <vector>

#include "server/amqp/constants.h"
#include "server/amqp/frame_parser.h"
#include "server/amqp/properties.h"

namespace warren::perf {
namespace {

std::vector<amqp::Frame> SplitFrames(std::string_view data) {
  std::vector<amqp::Frame> frames;
  while (!data.empty()) {
    amqp::Frame frame;
    size_t size = 0;
    EXPECT_EQ(amqp::ParseFrame(data, 1 << 20, &frame, &size), amqp::FrameParse::kFrame);
    if (size == 0) break;
    frames.push_back(frame);
    data.remove_prefix(size);
  }
  return frames;
}

TEST(PublishTemplateTest, DecodesAsAPublishWithTheSendTime) {
  PublishTemplate publish(3, "ex", "key", /*mandatory=*/true, /*persistent=*/true, 16, 131072);
  std::string out = "prefix";
  publish.AppendTo(out, 0x0102030405060708);
  publish.AppendTo(out, 42);
  EXPECT_EQ(out.size(), 6 + 2 * publish.size());

  auto frames = SplitFrames(std::string_view(out).substr(6));
  ASSERT_EQ(frames.size(), 6u);
  EXPECT_EQ(frames[0].type, amqp::kFrameMethod);
  EXPECT_EQ(frames[0].channel, 3);
  auto method = amqp::DecodeMethod(frames[0].payload);
  ASSERT_TRUE(method.has_value());
  const auto& p = std::get<amqp::method::BasicPublish>(*method);
  EXPECT_EQ(p.exchange, "ex");
  EXPECT_EQ(p.routing_key, "key");
  EXPECT_TRUE(p.mandatory);

  amqp::ContentHeader header;
  ASSERT_TRUE(amqp::DecodeContentHeader(frames[1].payload, &header));
  EXPECT_EQ(header.body_size, 16u);
  EXPECT_EQ(amqp::PeekDeliveryMode(header.raw_properties), 2);
  uint64_t body_size = 0;
  ASSERT_TRUE(ParseBodySize(frames[1].payload, &body_size));
  EXPECT_EQ(body_size, 16u);

  ASSERT_EQ(frames[2].payload.size(), 16u);
  uint64_t sent = 0;
  ASSERT_TRUE(ParseSendTime(frames[2].payload, &sent));
  EXPECT_EQ(sent, 0x0102030405060708u);
  ASSERT_TRUE(ParseSendTime(frames[5].payload, &sent));
  EXPECT_EQ(sent, 42u);
}

TEST(PublishTemplateTest, TransientAndSplitAtFrameMax) {
  PublishTemplate publish(1, "", "q", false, false, 10000, 4096);
  std::string out;
  publish.AppendTo(out, 7);
  auto frames = SplitFrames(out);
  ASSERT_EQ(frames.size(), 5u);  // method, header, 4088 + 4088 + 1824
  amqp::ContentHeader header;
  ASSERT_TRUE(amqp::DecodeContentHeader(frames[1].payload, &header));
  EXPECT_FALSE(amqp::PeekDeliveryMode(header.raw_properties).has_value());
  EXPECT_EQ(frames[2].payload.size(), 4088u);
  EXPECT_EQ(frames[4].payload.size(), 1824u);
  uint64_t sent = 0;
  ASSERT_TRUE(ParseSendTime(frames[2].payload, &sent));
  EXPECT_EQ(sent, 7u);
}

TEST(AckTemplateTest, DecodesAsBasicAck) {
  AckTemplate ack(5);
  std::string out;
  ack.AppendTo(out, 123456789012, true);
  ack.AppendTo(out, 9, false);
  auto frames = SplitFrames(out);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].channel, 5);
  auto first = amqp::DecodeMethod(frames[0].payload);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(std::get<amqp::method::BasicAck>(*first).delivery_tag, 123456789012u);
  EXPECT_TRUE(std::get<amqp::method::BasicAck>(*first).multiple);
  auto second = amqp::DecodeMethod(frames[1].payload);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(std::get<amqp::method::BasicAck>(*second).delivery_tag, 9u);
  EXPECT_FALSE(std::get<amqp::method::BasicAck>(*second).multiple);
}

std::string Payload(const amqp::Method& m) {
  std::string payload;
  amqp::ByteWriter w(payload);
  amqp::EncodeMethod(m, w);
  return payload;
}

TEST(ParseHotMethodTest, ReadsWhatTheBrokerSendsPerMessage) {
  amqp::method::BasicDeliver deliver;
  deliver.consumer_tag = "ctag-1";
  deliver.delivery_tag = 77;
  deliver.exchange = "x";
  deliver.routing_key = "rk";
  HotMethod hot = ParseHotMethod(Payload(deliver));
  EXPECT_EQ(hot.kind, HotMethod::kDeliver);
  EXPECT_EQ(hot.delivery_tag, 77u);

  amqp::method::BasicAck ack;
  ack.delivery_tag = 5;
  ack.multiple = true;
  hot = ParseHotMethod(Payload(ack));
  EXPECT_EQ(hot.kind, HotMethod::kAck);
  EXPECT_EQ(hot.delivery_tag, 5u);
  EXPECT_TRUE(hot.multiple);

  amqp::method::BasicNack nack;
  nack.delivery_tag = 6;
  nack.requeue = true;
  hot = ParseHotMethod(Payload(nack));
  EXPECT_EQ(hot.kind, HotMethod::kNack);
  EXPECT_EQ(hot.delivery_tag, 6u);
  EXPECT_FALSE(hot.multiple);

  amqp::method::BasicReturn ret;
  ret.reply_code = 312;
  EXPECT_EQ(ParseHotMethod(Payload(ret)).kind, HotMethod::kReturn);
  EXPECT_EQ(ParseHotMethod(Payload(amqp::method::ChannelClose{})).kind, HotMethod::kOther);
}

TEST(ParseHotMethodTest, TruncatedPayloadsAreLeftToTheCodec) {
  amqp::method::BasicDeliver deliver;
  deliver.consumer_tag = "ctag";
  std::string payload = Payload(deliver);
  for (size_t n = 0; n < 4 + 1 + 4 + 8; ++n)
    EXPECT_EQ(ParseHotMethod(std::string_view(payload).substr(0, n)).kind, HotMethod::kOther) << n;
  std::string ack = Payload(amqp::method::BasicAck{});
  EXPECT_EQ(ParseHotMethod(std::string_view(ack).substr(0, 12)).kind, HotMethod::kOther);
  uint64_t v = 0;
  EXPECT_FALSE(ParseBodySize("short", &v));
  EXPECT_FALSE(ParseSendTime("1234567", &v));
}

}  // namespace
}  // namespace warren::perf
