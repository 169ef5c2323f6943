// Publisher flow control (Queue::ShouldPausePublishers): a pause lasts while the consumers drain
// the backlog, and a consumer that stopped or is slow ends it within one check, for a while.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "server/broker/manual_timers.h"
#include "server/broker/publisher_flow_testing.h"
#include "server/broker/queue.h"
#include "server/broker/vhost.h"

namespace warren::broker {
namespace {

MessageRef Msg() {
  MessageRef m = Message::Create("", "q", "", 1, nullptr);
  m->FillBody("m");
  return m;
}

// Takes as many messages as it was given credit for (a prefetch window the test opens by hand).
class CreditConsumer : public Consumer {
 public:
  bool Ready() const override { return credit > 0; }
  bool no_ack() const override { return true; }
  void Deliver(Queue&, QueuedMessage) override {
    --credit;
    ++taken;
  }
  void OnQueueDeleted(Queue&) override {}

  size_t credit = 0;
  size_t taken = 0;
};

using testing::CountingPublisher;

class QueueFlowTest : public ::testing::Test {
 protected:
  QueueFlowTest() {
    vhost.set_timers(&timers);
    auto r = vhost.DeclareQueue("q", false, QueueOptions{}, 1);
    EXPECT_TRUE(r) << r.error().text;
    queue = r->queue;
    queue->AddConsumer(&consumer, false);
  }
  ~QueueFlowTest() override { queue->RemoveConsumer(&consumer); }

  void Publish(size_t n) {
    for (size_t i = 0; i < n; ++i) queue->Enqueue(Msg());
  }
  // What the publish path does when ShouldPausePublishers says so.
  void Pause() {
    ASSERT_TRUE(queue->ShouldPausePublishers());
    queue->PausePublisher(publisher);
  }
  void Take(size_t n) {
    consumer.credit += n;
    queue->Dispatch();
  }

  ManualTimers timers;
  Vhost vhost{"/"};
  std::shared_ptr<Queue> queue;
  CreditConsumer consumer;
  std::shared_ptr<CountingPublisher> publisher = std::make_shared<CountingPublisher>();
};

TEST_F(QueueFlowTest, ABacklogOfConsumersWhoTakeMessagesPausesItsPublishersUntilItDrains) {
  Publish(Queue::kFlowHighWatermark - 1);
  EXPECT_FALSE(queue->ShouldPausePublishers());
  Publish(1);
  Pause();
  // Each check finds the consumers took enough: the pause goes on.
  for (int check = 0; check < 3; ++check) {
    Take(Queue::kFlowTakenPerCheck / 2);
    timers.Advance(Queue::kFlowCheckMillis / 2);
    Publish(Queue::kFlowTakenPerCheck / 2);  // from publishers not yet paused
    Take(Queue::kFlowTakenPerCheck / 2);
    timers.Advance(Queue::kFlowCheckMillis / 2);
    Publish(Queue::kFlowTakenPerCheck / 2);
    EXPECT_EQ(publisher->resumed, 0) << check;
  }
  Take(queue->ready_count() - Queue::kFlowLowWatermark - 1);
  EXPECT_EQ(publisher->resumed, 0);
  Take(1);
  EXPECT_EQ(publisher->resumed, 1);
  timers.Advance(10 * Queue::kFlowCheckMillis);
  EXPECT_EQ(publisher->resumed, 1);
}

TEST_F(QueueFlowTest, ConsumersThatStoppedHoldAPublisherForOneCheckAndThenTheQueueBuffersForAWhile) {
  Publish(Queue::kFlowHighWatermark);
  Pause();
  timers.Advance(Queue::kFlowCheckMillis - 1);
  EXPECT_EQ(publisher->resumed, 0);
  timers.Advance(1);
  EXPECT_EQ(publisher->resumed, 1);
  Publish(10 * Queue::kFlowHighWatermark);
  EXPECT_FALSE(queue->ShouldPausePublishers());
  timers.Advance(Queue::kFlowUnpacedMillis - 1);
  EXPECT_FALSE(queue->ShouldPausePublishers());
  // Then the queue tries pacing again: the next publisher waits one more check.
  timers.Advance(1);
  Pause();
  timers.Advance(Queue::kFlowCheckMillis);
  EXPECT_EQ(publisher->resumed, 2);
  EXPECT_FALSE(queue->ShouldPausePublishers());
}

TEST_F(QueueFlowTest, SlowConsumersEndThePauseAtTheFirstCheckThatFindsTooFewTaken) {
  Publish(Queue::kFlowHighWatermark);
  Pause();
  Take(Queue::kFlowTakenPerCheck);
  timers.Advance(Queue::kFlowCheckMillis);
  EXPECT_EQ(publisher->resumed, 0);
  Take(Queue::kFlowTakenPerCheck - 1);
  timers.Advance(Queue::kFlowCheckMillis);
  EXPECT_EQ(publisher->resumed, 1);
  EXPECT_FALSE(queue->ShouldPausePublishers());
}

TEST_F(QueueFlowTest, APublisherGoneWhilePausedIsSkipped) {
  Publish(Queue::kFlowHighWatermark);
  Pause();
  publisher.reset();
  timers.Advance(Queue::kFlowCheckMillis);  // resumes nobody, and does not crash
  EXPECT_FALSE(queue->ShouldPausePublishers());
}

}  // namespace
}  // namespace warren::broker
