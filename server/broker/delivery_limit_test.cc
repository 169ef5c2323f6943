// x-delivery-limit against a real store: the delivery counts survive a crash, and a message the
// crash returned past its limit is dead-lettered when it reaches the head.
#include <string>

#include <gtest/gtest.h>

#include "server/broker/broker.h"
#include "server/broker/manual_timers.h"
#include "server/broker/queue.h"
#include "server/broker/store_testing.h"
#include "server/broker/vhost.h"
#include "storage/test_util.h"

namespace warren::broker {
namespace {

using testing::Body;
using namespace std::string_literals;

// The timers outlive the broker, whose queues hold timers of theirs.
struct WithTimers {
  ManualTimers timers;
};

struct LimitRun : WithTimers, testing::BrokerRun {
  explicit LimitRun(const std::string& dir) : testing::BrokerRun(dir) { vhost().set_timers(&timers); }
  Vhost& vhost() { return *broker.FindVhost("/"); }
  Queue& Limited(uint32_t limit) {
    if (auto q = vhost().FindQueue("q", 1)) return **q;
    ExchangeOptions durable;
    durable.durable = true;
    EXPECT_TRUE(vhost().DeclareExchange("dlx", "fanout", false, durable));
    QueueOptions dead;
    dead.durable = true;
    EXPECT_TRUE(vhost().DeclareQueue("dead", false, std::move(dead), 1));
    EXPECT_TRUE(vhost().BindQueue("dead", "dlx", "", {}, 1));
    QueueOptions options;
    options.durable = true;
    options.arguments.entries = {{"x-queue-type", amqp::FieldValue("quorum"s)},
                                 {"x-delivery-limit", amqp::FieldValue(static_cast<int64_t>(limit))},
                                 {"x-dead-letter-exchange", amqp::FieldValue("dlx"s)}};
    auto declared = vhost().DeclareQueue("q", false, std::move(options), 1);
    EXPECT_TRUE(declared) << declared.error().text;
    return *declared->queue;
  }
};

TEST(DeliveryLimitTest, CountsSurviveACrash) {
  storage::testing::TempDir dir;
  {
    LimitRun run(dir.path());
    Queue& q = run.Limited(2);
    q.Enqueue(Body(run.broker, 10, 'p', /*persistent=*/true));
    run.Settle();
    auto m = q.Get(false);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->delivery_count, 1u);
    run.Settle();  // the delivery state is stored; then the crash
  }
  {
    LimitRun run(dir.path());
    Queue& q = run.Limited(2);
    EXPECT_EQ(q.type(), QueueType::kQuorum);
    auto m = q.Get(false);
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->redelivered);
    EXPECT_EQ(m->delivery_count, 2u);
    EXPECT_EQ(q.DeliveryCountHeader(*m, /*by_get=*/false), 1);
    q.Requeue(std::move(*m));
    m = q.Get(false);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->delivery_count, 3u);
    run.Settle();
  }
  {
    // The crash returned the third delivery: past the limit of 2, dead-lettered at the head.
    LimitRun run(dir.path());
    Queue& q = run.Limited(2);
    EXPECT_EQ(q.ready_count(), 1u);
    EXPECT_FALSE(q.Get(false));
    EXPECT_EQ(q.ready_count(), 0u);
    run.timers.RunPosted();
    auto dead = run.vhost().FindQueue("dead", 1);
    ASSERT_TRUE(dead);
    EXPECT_EQ((*dead)->ready_count(), 1u);
    run.Settle();
  }
  {
    LimitRun run(dir.path());
    EXPECT_EQ(run.Limited(2).ready_count(), 0u);  // the drop was stored
    EXPECT_EQ((*run.vhost().FindQueue("dead", 1))->ready_count(), 1u);
  }
}

}  // namespace
}  // namespace warren::broker
