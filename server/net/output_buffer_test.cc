#include "server/net/output_buffer.h"

#include <gtest/gtest.h>

#include <string>

#include "server/net/output_buffer_testing.h"

namespace warren::net {
namespace {

broker::MessageRef MessageWithBody(const std::string& body) {
  broker::MessageRef m = broker::Message::Create("x", "rk", std::string(2, '\0'), body.size(), nullptr);
  m->FillBody(body);
  return m;
}

TEST(OutputBufferTest, SmallBodiesAreCopiedLargeOnesReferencedInOrder) {
  const std::string large(OutputBuffer::kReferenceThreshold, 'L');
  broker::MessageRef big = MessageWithBody(large);
  broker::MessageRef small = MessageWithBody("tiny");
  OutputBuffer out;
  out.bytes() += "A";
  out.AppendBody(small->body(), small);
  out.bytes() += "B";
  out.AppendBody(big->body(), big);
  out.bytes() += "C";
  EXPECT_EQ(out.size(), 3 + 4 + large.size());
  std::vector<asio::const_buffer> buffers;
  out.Buffers(buffers);
  ASSERT_EQ(buffers.size(), 3u);  // "AtinyB", the referenced body, "C"
  EXPECT_EQ(buffers[1].data(), big->body().data());  // not copied
  EXPECT_EQ(testing::GatheredBytes(out), "AtinyB" + large + "C");
}

TEST(OutputBufferTest, ReferenceKeepsTheMessageAliveUntilClear) {
  OutputBuffer out;
  {
    broker::MessageRef big = MessageWithBody(std::string(10000, 'z'));
    out.AppendBody(big->body(), big);
  }  // the buffer's pin is the only reference left
  EXPECT_EQ(testing::GatheredBytes(out), std::string(10000, 'z'));
  out.Clear();
  EXPECT_TRUE(out.empty());
  std::vector<asio::const_buffer> buffers;
  out.Buffers(buffers);
  EXPECT_TRUE(buffers.empty());
}

TEST(OutputBufferTest, ClearGivesBackAHugeBurst) {
  OutputBuffer out;
  out.bytes().assign(8u << 20, 'x');
  out.Clear();
  EXPECT_LE(out.bytes().capacity(), 4u << 20);
}

TEST(OutputBufferTest, ReleaseIdleCapacityKeepsOnlyASmallBuffer) {
  OutputBuffer out;
  out.bytes().assign(64u << 10, 'x');
  broker::MessageRef big = MessageWithBody(std::string(OutputBuffer::kReferenceThreshold, 'b'));
  for (int i = 0; i < 1000; ++i) out.AppendBody(big->body(), big);
  out.Clear();
  out.ReleaseIdleCapacity();
  EXPECT_LE(out.bytes().capacity(), OutputBuffer::kIdleCapacity);
  out.bytes() += "after";
  out.AppendBody(big->body(), big);
  EXPECT_EQ(testing::GatheredBytes(out), "after" + std::string(big->body()));
}

}  // namespace
}  // namespace warren::net
