// MessageBuilder: a body assembled piece by piece, grown as it arrives.
#include "server/broker/message.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::broker {
namespace {

TEST(MessageBuilderTest, AllocatesOnlyWhatArrivedAndEndsContiguous) {
  const uint64_t declared = 128ull << 20;
  MessageBuilder b("x", "rk", "", declared, nullptr);
  const uint64_t empty = b.allocated();
  EXPECT_LT(empty, 1024u) << "a header declaring 128 MiB allocates no body";
  std::string piece(131064, 'a');
  b.Append(piece);
  EXPECT_LT(b.allocated(), empty + 2 * piece.size());
  uint64_t grows = 0, last = b.allocated();
  std::string expected = piece;
  for (int i = 0; i < 100; ++i) {
    piece.assign(131064, static_cast<char>('b' + i % 20));
    b.Append(piece);
    expected += piece;
    if (b.allocated() != last) ++grows;
    last = b.allocated();
  }
  EXPECT_LT(grows, 10u) << "doubling: a logarithmic number of copies";
  EXPECT_LT(b.allocated(), empty + 2 * expected.size());
  EXPECT_FALSE(b.complete());
}

TEST(MessageBuilderTest, ExactSizeWhenTheLastPieceArrives) {
  const uint64_t declared = MessageBuilder::kUpfrontBodyBytes + 10;
  MessageBuilder b("x", "rk", "props", declared, nullptr);
  const uint64_t empty = b.allocated();
  const std::string head(declared - 10, 'h');
  b.Append(head);
  EXPECT_EQ(b.AllocatedAfter(10) - empty, declared);
  b.Append("01234");
  EXPECT_EQ(b.remaining(), 5u);
  b.Append("56789");
  ASSERT_TRUE(b.complete());
  EXPECT_EQ(b.allocated() - empty, declared);
  MessageRef m = b.Finish();
  EXPECT_EQ(m->body(), head + "0123456789");
  EXPECT_EQ(m->raw_properties(), "props");
  EXPECT_EQ(m->exchange(), "x");
  EXPECT_EQ(m->routing_key(), "rk");
}

TEST(MessageBuilderTest, ASmallBodyGetsItsRoomWithTheHeader) {
  MessageBuilder b("x", "rk", "props", 10, nullptr);
  const uint64_t at_header = b.allocated();
  EXPECT_EQ(b.AllocatedAfter(5), at_header) << "no growth: one allocation per message";
  b.Append("01234");
  b.Append("56789");
  ASSERT_TRUE(b.complete());
  EXPECT_EQ(b.allocated(), at_header);
  MessageRef m = b.Finish();
  EXPECT_EQ(m->body(), "0123456789");
}

}  // namespace
}  // namespace warren::broker
