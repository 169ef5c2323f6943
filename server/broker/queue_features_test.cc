#include "server/broker/queue_features.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/amqp/properties.h"
#include "server/broker/manual_timers.h"
#include "server/broker/vhost.h"

namespace warren::broker {
namespace {

using amqp::BasicProperties;
using amqp::FieldTable;
using amqp::FieldValue;
using namespace std::string_literals;

MessageRef Msg(std::string_view body, std::optional<std::string> expiration = std::nullopt,
               std::optional<uint8_t> priority = std::nullopt) {
  BasicProperties p;
  p.expiration = std::move(expiration);
  p.priority = priority;
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(p, w);
  MessageRef m = Message::Create("", "q", raw, body.size(), nullptr);
  m->FillBody(body);
  return m;
}

class FakeConsumer : public Consumer {
 public:
  explicit FakeConsumer(size_t window, bool no_ack = false, int32_t priority = 0)
      : window_(window), no_ack_(no_ack), priority_(priority) {}
  bool Ready() const override { return held.size() < window_; }
  bool no_ack() const override { return no_ack_; }
  void Deliver(Queue&, QueuedMessage m) override {
    bodies.emplace_back(m.msg->body());
    if (!no_ack_) held.push_back(std::move(m));
  }
  void OnQueueDeleted(Queue&) override { told_deleted = true; }
  int32_t priority() const override { return priority_; }

  std::vector<std::string> bodies;
  std::vector<QueuedMessage> held;
  bool told_deleted = false;

 private:
  size_t window_;
  bool no_ack_;
  int32_t priority_;
};

class QueueFeaturesTest : public ::testing::Test {
 protected:
  QueueFeaturesTest() { vhost.set_timers(&timers); }

  std::shared_ptr<Queue> Declare(std::string name, FieldTable args = {}, bool durable = false) {
    QueueOptions options;
    options.durable = durable;
    options.arguments = std::move(args);
    auto r = vhost.DeclareQueue(name, false, std::move(options), 1);
    EXPECT_TRUE(r) << r.error().text;
    return r ? r->queue : nullptr;
  }

  static std::vector<std::string> Drain(Queue& q) {
    std::vector<std::string> out;
    while (auto m = q.Get(true)) out.emplace_back(m->msg->body());
    return out;
  }

  ManualTimers timers;
  Vhost vhost{"/"};
};

TEST_F(QueueFeaturesTest, PlainQueueHasNoFeatures) {
  auto q = Declare("q", FieldTable{{{"x-queue-mode", FieldValue("lazy"s)}}});
  for (int i = 0; i < 3; ++i) q->Enqueue(Msg("m"));
  FakeConsumer c(10);
  q->AddConsumer(&c, false);
  q->Dispatch();
  EXPECT_EQ(q->features(), nullptr);
  EXPECT_EQ(c.bodies.size(), 3u);
}

TEST_F(QueueFeaturesTest, QueueTtlExpiresOnTimerWithoutConsumers) {
  auto q = Declare("q", FieldTable{{{"x-message-ttl", FieldValue(int32_t{100})}}});
  ASSERT_NE(q->features(), nullptr);
  q->Enqueue(Msg("a"));
  timers.Advance(50);
  q->Enqueue(Msg("b"));
  timers.Advance(49);
  EXPECT_EQ(q->ready_count(), 2u);
  timers.Advance(1);  // a's deadline
  EXPECT_EQ(q->ready_count(), 1u);
  timers.Advance(50);  // b's deadline: the timer re-armed for the new head
  EXPECT_EQ(q->ready_count(), 0u);
}

TEST_F(QueueFeaturesTest, ExpiredHeadIsDroppedLazilyOnGet) {
  auto q = Declare("q", FieldTable{{{"x-message-ttl", FieldValue(int32_t{100})}}});
  q->Enqueue(Msg("old"));
  timers.Advance(60);
  q->Enqueue(Msg("new"));
  // Move the clock without firing timers (a late event loop): Get still sees the head expired.
  q->features()->OnDeleted();  // cancels the timers
  timers.Advance(61);
  auto m = q->Get(true);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->msg->body(), "new");
}

TEST_F(QueueFeaturesTest, TtlZeroDeliversToReadyConsumerElseExpires) {
  auto q = Declare("q", FieldTable{{{"x-message-ttl", FieldValue(int32_t{0})}}});
  q->Enqueue(Msg("nobody"));
  EXPECT_EQ(q->ready_count(), 0u);
  FakeConsumer c(1);
  q->AddConsumer(&c, false);
  q->Enqueue(Msg("taken"));
  q->Enqueue(Msg("window-full"));
  EXPECT_EQ(c.bodies, (std::vector<std::string>{"taken"}));
  EXPECT_EQ(q->ready_count(), 0u);
}

TEST_F(QueueFeaturesTest, PerMessageTtlOnPlainQueueAndHeadOnlyExpiry) {
  auto q = Declare("q");
  q->Enqueue(Msg("plain"));
  EXPECT_EQ(q->features(), nullptr);
  q->Enqueue(Msg("long", "1000"));
  ASSERT_NE(q->features(), nullptr);  // enabled by the first message with an expiration
  q->Enqueue(Msg("short", "10"));
  timers.Advance(20);
  // "short" expired but waits behind "long", as in RabbitMQ.
  EXPECT_EQ(q->ready_count(), 3u);
  EXPECT_EQ(Drain(*q), (std::vector<std::string>{"plain", "long"}));
}

TEST_F(QueueFeaturesTest, SmallerOfQueueAndMessageTtlWins) {
  auto q = Declare("q", FieldTable{{{"x-message-ttl", FieldValue(int32_t{100})}}});
  q->Enqueue(Msg("m1", "50"));
  q->Enqueue(Msg("m2", "500"));
  timers.Advance(50);
  EXPECT_EQ(q->ready_count(), 1u);
  timers.Advance(50);
  EXPECT_EQ(q->ready_count(), 0u);
}

TEST_F(QueueFeaturesTest, RequeuedMessageKeepsItsDeadline) {
  auto q = Declare("q", FieldTable{{{"x-message-ttl", FieldValue(int32_t{100})}}});
  q->Enqueue(Msg("m"));
  auto m = q->Get(false);
  timers.Advance(150);
  q->Requeue(std::move(*m));  // already past its deadline: dropped by the timer
  timers.Advance(0);
  EXPECT_EQ(q->ready_count(), 0u);
}

TEST_F(QueueFeaturesTest, MaxLengthDropsHead) {
  auto q = Declare("q", FieldTable{{{"x-max-length", FieldValue(int32_t{3})}}});
  for (int i = 0; i < 5; ++i) q->Enqueue(Msg(std::to_string(i)));
  EXPECT_EQ(Drain(*q), (std::vector<std::string>{"2", "3", "4"}));
}

TEST_F(QueueFeaturesTest, MaxLengthBytesCountsReadyBodies) {
  auto q = Declare("q", FieldTable{{{"x-max-length-bytes", FieldValue(int32_t{10})}}});
  q->Enqueue(Msg("aaaa"));
  q->Enqueue(Msg("bbbb"));
  EXPECT_EQ(q->features()->ready_bytes(), 8u);
  auto taken = q->Get(false);  // unacked messages do not count
  EXPECT_EQ(q->features()->ready_bytes(), 4u);
  q->Enqueue(Msg("cccc"));
  q->Enqueue(Msg("dddd"));
  EXPECT_EQ(q->ready_count(), 2u);
  EXPECT_EQ(q->features()->ready_bytes(), 8u);
  // Requeueing goes over the limit: the head goes.
  q->Requeue(std::move(*taken));
  EXPECT_EQ(Drain(*q), (std::vector<std::string>{"cccc", "dddd"}));
  EXPECT_EQ(q->features()->ready_bytes(), 0u);
}

TEST_F(QueueFeaturesTest, RejectPublishRefusesWhenFull) {
  auto q = Declare("q", FieldTable{{{"x-max-length", FieldValue(int32_t{2})},
                                    {"x-overflow", FieldValue("reject-publish"s)}}});
  MessageRef m = Msg("x");
  EXPECT_FALSE(q->RejectsPublish(m));
  q->Enqueue(m);
  q->Enqueue(m);
  EXPECT_TRUE(q->RejectsPublish(m));
  q->Get(true);
  EXPECT_FALSE(q->RejectsPublish(m));
  // A plain queue never refuses.
  EXPECT_FALSE(Declare("plain")->RejectsPublish(m));
}

class DeadLetterQueueTest : public QueueFeaturesTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(vhost.DeclareExchange("dlx", "direct", false, {}));
    dead = Declare("dead");
    ASSERT_TRUE(vhost.BindQueue("dead", "dlx", "dead", {}, 1));
  }
  std::shared_ptr<Queue> Source(std::vector<std::pair<std::string, FieldValue>> extra) {
    FieldTable args{{{"x-dead-letter-exchange", FieldValue("dlx"s)},
                     {"x-dead-letter-routing-key", FieldValue("dead"s)}}};
    for (auto& e : extra) args.entries.push_back(std::move(e));
    return Declare("src", std::move(args));
  }
  std::string DeathReason() {
    auto m = dead->Get(true);
    if (!m) return "<none>";
    BasicProperties p;
    EXPECT_TRUE(amqp::DecodeProperties(m->msg->raw_properties(), &p));
    const amqp::FieldTable& d = *(*p.headers->Find("x-death")->AsArray())[0].AsTable();
    return *d.Find("reason")->AsString() + ":" + std::string(m->msg->body());
  }
  std::shared_ptr<Queue> dead;
};

TEST_F(DeadLetterQueueTest, RejectWithoutRequeue) {
  auto src = Source({});
  src->Enqueue(Msg("bad"));
  auto m = src->Get(false);
  src->Reject(*m);
  EXPECT_EQ(src->unacked_count(), 0u);
  EXPECT_EQ(dead->ready_count(), 0u);  // routed on the next turn
  timers.RunPosted();
  EXPECT_EQ(DeathReason(), "rejected:bad");
}

TEST_F(DeadLetterQueueTest, Expiry) {
  auto src = Source({{"x-message-ttl", FieldValue(int32_t{100})}});
  src->Enqueue(Msg("late"));
  timers.Advance(100);
  EXPECT_EQ(DeathReason(), "expired:late");
}

TEST_F(DeadLetterQueueTest, MaxLength) {
  auto src = Source({{"x-max-length", FieldValue(int32_t{1})}});
  src->Enqueue(Msg("first"));
  src->Enqueue(Msg("second"));
  timers.RunPosted();
  EXPECT_EQ(DeathReason(), "maxlen:first");
  EXPECT_EQ(Drain(*src), (std::vector<std::string>{"second"}));
}

TEST_F(DeadLetterQueueTest, RejectPublishDlx) {
  auto src = Source({{"x-max-length", FieldValue(int32_t{0})}, {"x-overflow", FieldValue("reject-publish-dlx"s)}});
  EXPECT_TRUE(src->RejectsPublish(Msg("refused")));
  timers.RunPosted();
  EXPECT_EQ(DeathReason(), "maxlen:refused");
}

// x-delivery-limit as RabbitMQ 3.10's quorum queues: a message returned after more than `limit`
// deliveries is dead-lettered (reason delivery_limit); limit 0 allows one delivery.
TEST_F(DeadLetterQueueTest, DeliveryLimit) {
  for (int32_t limit : {0, 1, 3}) {
    SCOPED_TRACE(limit);
    auto src = Source({{"x-delivery-limit", FieldValue(limit)}});
    src->Enqueue(Msg("poison"));
    int deliveries = 0;
    while (auto m = src->Get(false)) {
      ++deliveries;
      EXPECT_EQ(m->delivery_count, static_cast<uint32_t>(deliveries));
      src->Requeue(std::move(*m));
    }
    EXPECT_EQ(deliveries, limit + 1);
    EXPECT_EQ(src->ready_count(), 0u);
    EXPECT_EQ(src->unacked_count(), 0u);
    timers.RunPosted();
    EXPECT_EQ(DeathReason(), "delivery_limit:poison");
    ASSERT_TRUE(vhost.DeleteQueue("src", false, false, 1));
  }
}

TEST_F(DeadLetterQueueTest, DeliveryLimitWithoutDeadLetterExchangeDrops) {
  auto q = Declare("limited", FieldTable{{{"x-delivery-limit", FieldValue(int32_t{1})}}});
  FakeConsumer c(10);
  q->Enqueue(Msg("a"));
  q->AddConsumer(&c, false);
  q->Dispatch();
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(c.held.size(), 1u);
    QueuedMessage m = std::move(c.held.back());
    c.held.clear();
    q->Requeue(std::move(m));  // as a channel closing with it unacked
    q->Dispatch();
  }
  EXPECT_EQ(c.bodies, (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(q->ready_count(), 0u);
  timers.RunPosted();
  EXPECT_EQ(dead->ready_count(), 0u);
}

// The x-delivery-count header: quorum queues on every get and on redeliveries to consumers
// (RabbitMQ 3.10); classic queues only with a delivery limit (Warren's extension), plain ones never.
TEST_F(QueueFeaturesTest, DeliveryCountHeader) {
  auto quorum = Declare("quorum", FieldTable{{{"x-queue-type", FieldValue("quorum"s)}}}, /*durable=*/true);
  auto limited = Declare("limited", FieldTable{{{"x-delivery-limit", FieldValue(int32_t{5})}}});
  auto plain = Declare("plain");
  QueuedMessage first{Msg("m"), 1, 1};
  QueuedMessage third{Msg("m"), 1, 3};
  for (auto* q : {quorum.get(), limited.get()}) {
    EXPECT_EQ(q->DeliveryCountHeader(first, /*by_get=*/true), 0);
    EXPECT_EQ(q->DeliveryCountHeader(first, /*by_get=*/false), std::nullopt);
    EXPECT_EQ(q->DeliveryCountHeader(third, /*by_get=*/false), 2);
    EXPECT_EQ(q->DeliveryCountHeader(third, /*by_get=*/true), 2);
  }
  EXPECT_EQ(quorum->type(), QueueType::kQuorum);
  EXPECT_EQ(quorum->features(), nullptr);  // a quorum queue without other arguments stays plain
  EXPECT_EQ(plain->DeliveryCountHeader(third, true), std::nullopt);
}

TEST_F(QueueFeaturesTest, QuorumDeclareRules) {
  auto declare = [&](std::string name, FieldTable args, bool durable, bool server_named = false) {
    QueueOptions options;
    options.durable = durable;
    options.arguments = std::move(args);
    auto r = vhost.DeclareQueue(name, false, std::move(options), 1, server_named);
    return r ? std::string("ok") : r.error().text;
  };
  const FieldTable quorum{{{"x-queue-type", FieldValue("quorum"s)}}};
  EXPECT_EQ(declare("q", quorum, false), "invalid property 'non-durable' for queue 'q' in vhost '/'");
  EXPECT_EQ(declare("amq.gen-x", quorum, true, /*server_named=*/true),
            "Cannot declare a server-named queue for type rabbit_quorum_queue");
  EXPECT_EQ(declare("q", quorum, true), "ok");
  EXPECT_EQ(declare("q", quorum, true), "ok");
  EXPECT_EQ(declare("q", {}, true),
            "inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received none but current is the value "
            "'quorum' of type 'longstr'");
  EXPECT_EQ(declare("q", FieldTable{{{"x-queue-type", FieldValue("classic"s)}}}, true),
            "inequivalent arg 'x-queue-type' for queue 'q' in vhost '/': received 'classic' but current is 'quorum'");
  EXPECT_EQ(declare("c", {}, true), "ok");
  EXPECT_EQ(declare("c", FieldTable{{{"x-queue-type", FieldValue("classic"s)}}}, true), "ok");
  EXPECT_EQ(declare("c", FieldTable{{{"x-message-ttl", FieldValue(int32_t{5})}}}, true),
            "inequivalent arg 'x-message-ttl' for queue 'c' in vhost '/': received the value '5' of type "
            "'signedint' but current is none");
}

TEST_F(QueueFeaturesTest, QueueExpiresWhenUnused) {
  auto q = Declare("q", FieldTable{{{"x-expires", FieldValue(int32_t{300})}}});
  timers.Advance(200);
  q->Touch();  // a declare renews the lease
  timers.Advance(200);
  EXPECT_TRUE(vhost.queues().contains("q"));
  q->Get(true);  // so does basic.get
  timers.Advance(299);
  EXPECT_TRUE(vhost.queues().contains("q"));
  timers.Advance(1);
  EXPECT_FALSE(vhost.queues().contains("q"));
  EXPECT_TRUE(q->deleted());
}

TEST_F(QueueFeaturesTest, QueueWithConsumerDoesNotExpire) {
  auto q = Declare("q", FieldTable{{{"x-expires", FieldValue(int32_t{300})}}});
  FakeConsumer c(10);
  q->AddConsumer(&c, false);
  timers.Advance(1000);
  EXPECT_TRUE(vhost.queues().contains("q"));
  q->RemoveConsumer(&c);  // the lease starts again
  timers.Advance(299);
  EXPECT_TRUE(vhost.queues().contains("q"));
  timers.Advance(1);
  EXPECT_FALSE(vhost.queues().contains("q"));
}

TEST_F(QueueFeaturesTest, PriorityQueueOrdersByPriorityThenArrival) {
  auto q = Declare("q", FieldTable{{{"x-max-priority", FieldValue(int32_t{10})}}});
  ASSERT_TRUE(q->features()->priority_queue());
  EXPECT_FALSE(q->features()->can_page());
  q->Enqueue(Msg("1", std::nullopt, 1));
  q->Enqueue(Msg("9", std::nullopt, 9));
  q->Enqueue(Msg("5", std::nullopt, 5));
  q->Enqueue(Msg("none"));
  q->Enqueue(Msg("10", std::nullopt, 10));
  q->Enqueue(Msg("20", std::nullopt, 20));  // above the maximum: counts as 10
  auto top = q->Get(false);
  auto next = q->Get(false);
  EXPECT_EQ(top->msg->body(), "10");
  EXPECT_EQ(next->msg->body(), "20");
  q->Requeue(std::move(*next));  // back to its place among its priority
  q->Requeue(std::move(*top));
  EXPECT_EQ(Drain(*q), (std::vector<std::string>{"10", "20", "9", "5", "1", "none"}));
}

TEST_F(QueueFeaturesTest, SingleActiveConsumerAndFailover) {
  auto q = Declare("q", FieldTable{{{"x-single-active-consumer", FieldValue(true)}}});
  FakeConsumer first(2), second(100);
  q->AddConsumer(&first, false);
  q->AddConsumer(&second, false);
  for (int i = 0; i < 4; ++i) q->Enqueue(Msg(std::to_string(i)));
  // The active consumer's window is full: the others still get nothing.
  EXPECT_EQ(first.bodies, (std::vector<std::string>{"0", "1"}));
  EXPECT_TRUE(second.bodies.empty());
  q->RemoveConsumer(&first);
  for (auto& m : first.held) q->Requeue(std::move(m));
  q->Dispatch();
  EXPECT_EQ(second.bodies, (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST_F(QueueFeaturesTest, ConsumerPriorities) {
  auto q = Declare("q");
  FakeConsumer low(100, true);
  FakeConsumer high1(2, false, 10), high2(2, false, 10);
  q->AddConsumer(&low, false);
  EXPECT_EQ(q->features(), nullptr);
  q->AddConsumer(&high1, false);
  ASSERT_NE(q->features(), nullptr);  // enabled by the first consumer with a priority
  q->AddConsumer(&high2, false);
  for (int i = 0; i < 6; ++i) q->Enqueue(Msg(std::to_string(i)));
  // Round-robin among the highest level while it has room, then the lower one.
  EXPECT_EQ(high1.bodies, (std::vector<std::string>{"0", "2"}));
  EXPECT_EQ(high2.bodies, (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(low.bodies, (std::vector<std::string>{"4", "5"}));
  q->RemoveConsumer(&high1);
  q->RemoveConsumer(&high2);
  q->Enqueue(Msg("6"));
  EXPECT_EQ(low.bodies.back(), "6");
}

}  // namespace
}  // namespace warren::broker
