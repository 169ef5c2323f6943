#include "server/broker/memory.h"

#include <gtest/gtest.h>

#include "server/broker/direct_reply.h"
#include "server/broker/message.h"
#include "server/broker/queue.h"

namespace warren::broker {
namespace {

TEST(MemoryAccountTest, CountsByUseAndInTotal) {
  MemoryAccount account;
  account.Add(MemoryUse::kMessages, 100);
  account.Add(MemoryUse::kAssembly, 30);
  account.Add(MemoryUse::kConnectionBuffers, 7);
  EXPECT_EQ(account.total(), 137u);
  EXPECT_EQ(account.used(MemoryUse::kAssembly), 30u);
  account.Sub(MemoryUse::kAssembly, 30);
  account.Sub(MemoryUse::kMessages, 40);
  EXPECT_EQ(account.total(), 67u);
  EXPECT_EQ(account.used(MemoryUse::kMessages), 60u);
  EXPECT_EQ(account.used(MemoryUse::kAssembly), 0u);
}

TEST(MemoryAccountTest, ReportsReachingTheLimitOnceUntilRearmed) {
  MemoryAccount account;
  int reports = 0;
  account.set_on_limit_reached([&] { ++reports; });
  account.Add(MemoryUse::kMessages, 1000);
  EXPECT_EQ(reports, 0);  // no limit set
  account.set_limit(1500);
  EXPECT_FALSE(account.over_limit());
  account.Add(MemoryUse::kMessages, 499);
  EXPECT_EQ(reports, 0);
  account.Add(MemoryUse::kMessages, 1);
  EXPECT_TRUE(account.over_limit());
  EXPECT_EQ(reports, 1);
  account.Add(MemoryUse::kMessages, 10);
  account.Sub(MemoryUse::kMessages, 600);
  account.Add(MemoryUse::kMessages, 600);
  EXPECT_EQ(reports, 1);
  account.RearmLimitHook();
  account.Add(MemoryUse::kMessages, 1);
  EXPECT_EQ(reports, 2);
}

TEST(MemoryAccountTest, ZeroLimitIsAlwaysReached) {
  MemoryAccount account;
  account.set_limit(0);
  EXPECT_TRUE(account.over_limit());
}

TEST(MemoryAccountTest, MessageBlockCountedOnceWhileAnyReferenceLives) {
  MemoryAccount account;
  MessageRef m = Message::Create("ex", "key", std::string_view("\x00\x00", 2), 1000, &account);
  const uint64_t block = account.used(MemoryUse::kMessages);
  EXPECT_GE(block, 1000u + 5u);
  EXPECT_LE(block, 1000u + 5u + 64u);  // the header
  {
    MessageRef a = m, b = m;  // two queues, an output buffer...
    Queue q(1, "q", {});
    q.Enqueue(a);
    EXPECT_EQ(account.used(MemoryUse::kMessages), block);
  }
  MessageRef copy = WithReplyTo(*m, "amq.rabbitmq.reply-to.x");  // copies count where the original does
  ASSERT_TRUE(copy);
  EXPECT_GT(account.used(MemoryUse::kMessages), 2 * block);
  copy = MessageRef();
  m = MessageRef();
  EXPECT_EQ(account.total(), 0u);
}

TEST(MemoryWatermarkTest, FractionsAreRelative) {
  for (auto [text, fraction] : {std::pair{"0.4", 0.4}, {"1", 1.0}, {"0", 0.0}, {"0.05", 0.05}, {"1.0", 1.0}}) {
    auto w = ParseMemoryWatermark(text);
    ASSERT_TRUE(w) << text << ": " << w.error();
    EXPECT_TRUE(w->relative) << text;
    EXPECT_DOUBLE_EQ(w->fraction, fraction) << text;
  }
  EXPECT_EQ(MemoryLimit(*ParseMemoryWatermark("0.4"), 1000), 400u);
  EXPECT_EQ(MemoryLimit(*ParseMemoryWatermark("0"), 1000), 0u);
}

TEST(MemoryWatermarkTest, AmountsAreAbsoluteWithRabbitMqUnits) {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  for (const Case& c : {Case{"2", 2}, Case{"1073741824", 1073741824}, Case{"512MiB", 512ull << 20},
                        Case{"512M", 512ull << 20}, Case{"1GB", 1000000000}, Case{"1G", 1ull << 30},
                        Case{"2GiB", 2ull << 30}, Case{"100kB", 100000}, Case{"100k", 102400},
                        Case{"64MB", 64000000}}) {
    auto w = ParseMemoryWatermark(c.text);
    ASSERT_TRUE(w) << c.text << ": " << w.error();
    EXPECT_FALSE(w->relative) << c.text;
    EXPECT_EQ(w->bytes, c.bytes) << c.text;
    EXPECT_EQ(MemoryLimit(*w, 1), c.bytes) << c.text;
  }
}

TEST(MemoryWatermarkTest, RejectsWhatIsNeitherWithAReason) {
  for (const char* text : {"", "abc", "1.5", "-0.4", "0.4GB", "12XB", "1 GB", "99999999999999999999",
                           "99999999999GB", ".4"}) {
    auto w = ParseMemoryWatermark(text);
    ASSERT_FALSE(w) << text;
    EXPECT_NE(w.error().find("invalid memory high watermark"), std::string::npos);
  }
}

TEST(ByteAmountTest, IntegersWithOptionalRabbitMqUnits) {
  EXPECT_EQ(ParseByteAmount("50000000"), 50000000u);
  EXPECT_EQ(ParseByteAmount("50MB"), 50000000u);
  EXPECT_EQ(ParseByteAmount("64MiB"), 64ull << 20);
  EXPECT_EQ(ParseByteAmount("1024MiB"), 1ull << 30);
  for (const char* text : {"", "0.5", "1TB", "1 GB", "GB", "-1", "99999999999999999999", "99999999999GB"}) {
    EXPECT_FALSE(ParseByteAmount(text)) << text;
  }
}

}  // namespace
}  // namespace warren::broker
