#include "server/broker/queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace warren::broker {
namespace {

MessageRef Msg(std::string_view body) {
  MessageRef m = Message::Create("", "q", "", body.size(), nullptr);
  m->FillBody(body);
  return m;
}

// A consumer with a prefetch window that records what it receives.
class FakeConsumer : public Consumer {
 public:
  explicit FakeConsumer(size_t window, bool no_ack = false) : window_(window), no_ack_(no_ack) {}
  bool Ready() const override { return held.size() < window_; }
  bool no_ack() const override { return no_ack_; }
  void Deliver(Queue&, QueuedMessage m) override {
    bodies.emplace_back(m.msg->body());
    if (!no_ack_) held.push_back(std::move(m));
  }
  void OnQueueDeleted(Queue&) override { told_deleted = true; }

  std::vector<std::string> bodies;
  std::vector<QueuedMessage> held;
  bool told_deleted = false;

 private:
  size_t window_;
  bool no_ack_;
};

TEST(QueueTest, DeliversRoundRobin) {
  Queue q(1, "q", {});
  FakeConsumer a(100), b(100);
  q.AddConsumer(&a, false);
  q.AddConsumer(&b, false);
  for (int i = 0; i < 6; ++i) q.Enqueue(Msg(std::to_string(i)));
  EXPECT_EQ(a.bodies, (std::vector<std::string>{"0", "2", "4"}));
  EXPECT_EQ(b.bodies, (std::vector<std::string>{"1", "3", "5"}));
  EXPECT_EQ(q.unacked_count(), 6u);
  EXPECT_EQ(q.ready_count(), 0u);
}

TEST(QueueTest, PrefetchWindowHoldsBackUntilSettled) {
  Queue q(1, "q", {});
  FakeConsumer c(2);
  q.AddConsumer(&c, false);
  for (int i = 0; i < 5; ++i) q.Enqueue(Msg(std::to_string(i)));
  ASSERT_EQ(c.bodies.size(), 2u);
  EXPECT_EQ(q.ready_count(), 3u);
  q.Settle(c.held.front());
  c.held.erase(c.held.begin());
  q.Dispatch();
  EXPECT_EQ(c.bodies.size(), 3u);
  EXPECT_EQ(c.bodies.back(), "2");
  EXPECT_EQ(q.unacked_count(), 2u);
}

TEST(QueueTest, RequeueRestoresOriginalPositionAndMarksRedelivered) {
  Queue q(1, "q", {});
  for (int i = 0; i < 4; ++i) q.Enqueue(Msg(std::to_string(i)));
  auto m0 = q.Get(false);
  auto m1 = q.Get(false);
  ASSERT_TRUE(m0 && m1);
  // Requeue newest first, as channels do; both go back before "2".
  q.Requeue(std::move(*m1));
  q.Requeue(std::move(*m0));
  std::vector<std::string> order;
  std::vector<bool> redelivered;
  while (auto m = q.Get(true)) {
    order.emplace_back(m->msg->body());
    redelivered.push_back(m->redelivered);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(redelivered, (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(q.unacked_count(), 0u);
}

TEST(QueueTest, RequeueOutOfOrderStillSorted) {
  Queue q(1, "q", {});
  for (int i = 0; i < 3; ++i) q.Enqueue(Msg(std::to_string(i)));
  auto m0 = q.Get(false);
  auto m1 = q.Get(false);
  q.Requeue(std::move(*m0));
  q.Requeue(std::move(*m1));
  std::string order;
  while (auto m = q.Get(true)) order += m->msg->body();
  EXPECT_EQ(order, "012");
}

TEST(QueueTest, DeliveryCountGrowsWithEachDelivery) {
  Queue q(1, "q", {});
  q.Enqueue(Msg("x"));
  auto m = q.Get(false);
  EXPECT_EQ(m->delivery_count, 1u);
  q.Requeue(std::move(*m));
  m = q.Get(false);
  EXPECT_EQ(m->delivery_count, 2u);
  EXPECT_TRUE(m->redelivered);
}

TEST(QueueTest, NoAckConsumerDoesNotCountUnacked) {
  Queue q(1, "q", {});
  FakeConsumer c(1000, /*no_ack=*/true);
  q.AddConsumer(&c, false);
  for (int i = 0; i < 10; ++i) q.Enqueue(Msg("m"));
  EXPECT_EQ(c.bodies.size(), 10u);
  EXPECT_EQ(q.unacked_count(), 0u);
}

TEST(QueueTest, SkipsConsumersThatAreNotReady) {
  Queue q(1, "q", {});
  FakeConsumer full(0), open(100);
  q.AddConsumer(&full, false);
  q.AddConsumer(&open, false);
  for (int i = 0; i < 3; ++i) q.Enqueue(Msg("m"));
  EXPECT_TRUE(full.bodies.empty());
  EXPECT_EQ(open.bodies.size(), 3u);
}

TEST(QueueTest, PurgeAndDelete) {
  Queue q(1, "q", {});
  FakeConsumer c(0);
  q.AddConsumer(&c, false);
  for (int i = 0; i < 3; ++i) q.Enqueue(Msg("m"));
  EXPECT_EQ(q.Purge(), 3u);
  EXPECT_EQ(q.ready_count(), 0u);
  q.MarkDeleted();
  EXPECT_TRUE(c.told_deleted);
  EXPECT_EQ(q.consumer_count(), 0u);
  EXPECT_TRUE(q.deleted());
}

TEST(MessageTest, LaysOutFieldsInOneBlock) {
  MessageRef m = Message::Create("ex", "rk", std::string_view("\x10\x00\x02", 3), 5, nullptr);
  m->FillBody("he");
  EXPECT_FALSE(m->complete());
  m->FillBody("llo");
  EXPECT_TRUE(m->complete());
  EXPECT_EQ(m->exchange(), "ex");
  EXPECT_EQ(m->routing_key(), "rk");
  EXPECT_EQ(m->body(), "hello");
  EXPECT_TRUE(m->persistent());  // delivery-mode flag with value 2
  MessageRef copy = m;
  EXPECT_EQ(copy.get(), m.get());
}

}  // namespace
}  // namespace warren::broker
