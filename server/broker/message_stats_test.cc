#include "server/broker/message_stats.h"

#include <gtest/gtest.h>

namespace warren::broker {
namespace {

TEST(MessageStatsTest, CountsDeliveriesAsRabbitMQ) {
  MessageStats s;
  s.AddDelivery(/*by_get=*/false, /*no_ack=*/false, /*redelivered=*/false);
  s.AddDelivery(false, true, false);
  s.AddDelivery(true, false, true);
  s.AddDelivery(true, true, false);
  EXPECT_EQ(s.count(MessageStat::kDeliver), 1u);
  EXPECT_EQ(s.count(MessageStat::kDeliverNoAck), 1u);
  EXPECT_EQ(s.count(MessageStat::kGet), 1u);
  EXPECT_EQ(s.count(MessageStat::kGetNoAck), 1u);
  EXPECT_EQ(s.count(MessageStat::kRedeliver), 1u);
  EXPECT_EQ(s.deliver_get(), 4u);
}

TEST(MessageStatsTest, RateIsTheChangeOverTheLastInterval) {
  MessageStats s;
  s.Add(MessageStat::kPublish, 100);
  s.Sample(1000, 1000);  // the first sample counts from zero one interval before
  EXPECT_DOUBLE_EQ(s.rate(MessageStat::kPublish), 100.0);
  s.Add(MessageStat::kPublish, 50);
  s.Add(MessageStat::kDeliver, 20);
  s.Add(MessageStat::kGet, 5);
  s.Sample(3000, 1000);
  EXPECT_DOUBLE_EQ(s.rate(MessageStat::kPublish), 25.0);
  EXPECT_DOUBLE_EQ(s.deliver_get_rate(), 12.5);
  s.Sample(4000, 1000);  // nothing happened in this interval
  EXPECT_EQ(s.rate(MessageStat::kPublish), 0.0);
  EXPECT_EQ(s.count(MessageStat::kPublish), 150u);
}

TEST(MessageStatsTest, SampleAtTheSameInstantKeepsTheRates) {
  MessageStats s;
  s.Sample(0, 1000);
  s.Add(MessageStat::kAck, 10);
  s.Sample(1000, 1000);
  s.Sample(1000, 1000);
  EXPECT_DOUBLE_EQ(s.rate(MessageStat::kAck), 10.0);
}

TEST(MessageStatsTest, QueueDepthRates) {
  MessageStats s;
  s.Sample(0, 1000, QueueDepth{100, 0});  // a recovered backlog is the baseline, not a rate
  EXPECT_EQ(s.ready_rate(), 0.0);
  s.Sample(2000, 1000, QueueDepth{60, 10});
  EXPECT_DOUBLE_EQ(s.ready_rate(), -20.0);
  EXPECT_DOUBLE_EQ(s.unacked_rate(), 5.0);
}

TEST(MessageStatsTest, NamesAreRabbitMQFieldNames) {
  EXPECT_STREQ(MessageStatName(MessageStat::kDeliverNoAck), "deliver_no_ack");
  EXPECT_STREQ(MessageStatName(MessageStat::kRedeliver), "redeliver");
  EXPECT_STREQ(MessageStatName(MessageStat::kGetEmpty), "get_empty");
  EXPECT_STREQ(MessageStatName(MessageStat::kReturnUnroutable), "return_unroutable");
}

}  // namespace
}  // namespace warren::broker
