#include "server/amqp/frame_parser.h"

#include <string>

#include <gtest/gtest.h>

#include "server/amqp/constants.h"

namespace warren::amqp {
namespace {

std::string MakeFrame(uint8_t type, uint16_t channel, std::string_view payload, uint8_t end = kFrameEnd) {
  std::string f;
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(channel >> 8));
  f.push_back(static_cast<char>(channel & 0xff));
  const uint32_t n = payload.size();
  for (int shift : {24, 16, 8, 0}) f.push_back(static_cast<char>((n >> shift) & 0xff));
  f.append(payload);
  f.push_back(static_cast<char>(end));
  return f;
}

TEST(FrameParserTest, ParsesOneFrameAndReportsItsSize) {
  std::string data = MakeFrame(kFrameMethod, 7, "hello") + "trailing";
  Frame frame;
  size_t size = 0;
  ASSERT_EQ(ParseFrame(data, 4096, &frame, &size), FrameParse::kFrame);
  EXPECT_EQ(frame.type, kFrameMethod);
  EXPECT_EQ(frame.channel, 7);
  EXPECT_EQ(frame.payload, "hello");
  EXPECT_EQ(size, 5 + kFrameOverhead);
}

TEST(FrameParserTest, EveryPrefixNeedsMore) {
  std::string data = MakeFrame(kFrameBody, 1, "abcdef");
  for (size_t n = 0; n < data.size(); ++n) {
    Frame frame;
    size_t size = 0;
    EXPECT_EQ(ParseFrame(std::string_view(data).substr(0, n), 4096, &frame, &size), FrameParse::kNeedMore) << n;
    EXPECT_EQ(size, n < kFrameHeaderSize ? 0 : data.size()) << n;
  }
}

TEST(FrameParserTest, PayloadOfExactlyTheLimitIsAcceptedOneMoreIsTooLarge) {
  Frame frame;
  size_t size = 0;
  EXPECT_EQ(ParseFrame(MakeFrame(kFrameBody, 1, std::string(100, 'x')), 100, &frame, &size), FrameParse::kFrame);
  // Refused from the header alone, before the payload arrives.
  std::string header = MakeFrame(kFrameBody, 1, std::string(101, 'x')).substr(0, kFrameHeaderSize);
  EXPECT_EQ(ParseFrame(header, 100, &frame, &size), FrameParse::kTooLarge);
  EXPECT_EQ(size, 101 + kFrameOverhead);
}

TEST(FrameParserTest, WrongFrameEndIsRefused) {
  Frame frame;
  size_t size = 0;
  EXPECT_EQ(ParseFrame(MakeFrame(kFrameMethod, 0, "x", 0x00), 4096, &frame, &size), FrameParse::kBadFrameEnd);
  EXPECT_EQ(frame.type, kFrameMethod);
}

TEST(FrameParserTest, MaximumDeclaredSizeDoesNotOverflow) {
  std::string header = MakeFrame(kFrameBody, 1, "").substr(0, 3) + std::string("\xff\xff\xff\xff", 4);
  Frame frame;
  size_t size = 0;
  EXPECT_EQ(ParseFrame(header, 0xffffffffu, &frame, &size), FrameParse::kNeedMore);
  EXPECT_EQ(size, size_t{0xffffffffu} + kFrameOverhead);
}

}  // namespace
}  // namespace warren::amqp
