#include "server/net/frame_writer.h"

#include <gtest/gtest.h>

#include <string>

#include "server/net/output_buffer_testing.h"

#include "server/amqp/frame_parser.h"

namespace warren::net {
namespace {

namespace m = amqp::method;

// Splits `bytes` into frames (views into it); every frame must parse whole.
std::vector<amqp::Frame> Frames(const std::string& bytes, uint32_t frame_max) {
  std::vector<amqp::Frame> frames;
  std::string_view rest(bytes);
  while (!rest.empty()) {
    amqp::Frame f;
    size_t size = 0;
    EXPECT_EQ(amqp::ParseFrame(rest, frame_max, &f, &size), amqp::FrameParse::kFrame);
    if (size == 0) break;
    EXPECT_LE(size, frame_max);
    frames.push_back(f);
    rest.remove_prefix(size);
  }
  return frames;
}

TEST(FrameWriterTest, MethodFrameHasTypeChannelSizeAndEnd) {
  OutputBuffer out;
  WriteMethodFrame(out, 7, m::ChannelOpenOk{});
  const std::string bytes = testing::GatheredBytes(out);
  auto frames = Frames(bytes, 4096);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, amqp::kFrameMethod);
  EXPECT_EQ(frames[0].channel, 7);
  auto method = amqp::DecodeMethod(frames[0].payload);
  ASSERT_TRUE(method.has_value());
  EXPECT_TRUE(std::holds_alternative<m::ChannelOpenOk>(*method));
  EXPECT_EQ(static_cast<uint8_t>(bytes.back()), amqp::kFrameEnd);
}

TEST(FrameWriterTest, ContentIsSplitSoNoFrameExceedsFrameMax) {
  const uint32_t frame_max = 4096;
  const std::string body(3 * (frame_max - amqp::kFrameOverhead) + 5, 'b');
  broker::MessageRef msg = broker::Message::Create("x", "rk", std::string(2, '\0'), body.size(), nullptr);
  msg->FillBody(body);
  OutputBuffer out;
  WriteContentFrames(out, 3, frame_max, msg);
  const std::string bytes = testing::GatheredBytes(out);
  auto frames = Frames(bytes, frame_max);
  ASSERT_EQ(frames.size(), 1u + 4u);  // header + 3 full bodies + 5 octets
  EXPECT_EQ(frames[0].type, amqp::kFrameHeader);
  std::string received;
  for (size_t i = 1; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].type, amqp::kFrameBody);
    EXPECT_EQ(frames[i].channel, 3);
    received += frames[i].payload;
  }
  EXPECT_EQ(received, body);
  EXPECT_EQ(frames.back().payload.size(), 5u);
}

TEST(FrameWriterTest, EmptyBodyHasOnlyTheHeaderFrame) {
  broker::MessageRef msg = broker::Message::Create("x", "rk", std::string(2, '\0'), 0, nullptr);
  OutputBuffer out;
  WriteContentFrames(out, 1, 4096, msg);
  EXPECT_EQ(Frames(testing::GatheredBytes(out), 4096).size(), 1u);
}

TEST(FrameWriterTest, HeartbeatIsAnEmptyFrameOnChannelZero) {
  OutputBuffer out;
  WriteHeartbeatFrame(out);
  EXPECT_EQ(out.bytes(), std::string("\x08\x00\x00\x00\x00\x00\x00\xce", 8));
}

}  // namespace
}  // namespace warren::net
