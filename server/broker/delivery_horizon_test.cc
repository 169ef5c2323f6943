// The delivery horizon (queue.h): a stored message reaches a consumer only below a durable
// horizon, and after a crash everything below it comes back redelivered.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/broker/broker.h"
#include "server/broker/persister.h"
#include "server/broker/queue.h"
#include "server/broker/recovery.h"
#include "server/broker/store_testing.h"
#include "server/broker/vhost.h"
#include "storage/test_util.h"

namespace warren::broker {
namespace {

using testing::Body;
using testing::Loop;
using testing::RecordingConsumer;

// A run with a helper to declare a durable queue.
struct BrokerRun : testing::BrokerRun {
  using testing::BrokerRun::BrokerRun;
  Queue& Durable(const std::string& name) {
    QueueOptions options;
    options.durable = true;
    auto declared = broker.FindVhost("/")->DeclareQueue(name, false, std::move(options), 1);
    EXPECT_TRUE(declared);
    return *declared->queue;
  }
};

TEST(DeliveryHorizonTest, AConsumerWaitsWhenItOutrunsTheDurableHorizon) {
  storage::testing::TempDir dir;
  BrokerRun run(dir.path());
  Queue& q = run.Durable("q");
  run.Settle();  // the declaration and the queue's first horizon
  RecordingConsumer consumer;
  q.AddConsumer(&consumer, false);
  const uint64_t n = 3 * Queue::kHorizonStep;
  for (uint64_t i = 0; i < n; ++i) q.Enqueue(Body(run.broker, 10, 'x', /*persistent=*/true));
  // Nothing written yet: deliveries stop at the horizon declared with the queue.
  EXPECT_EQ(consumer.seqs.size(), Queue::kHorizonStep + 1);
  for (int i = 0; i < 10 && consumer.seqs.size() < n; ++i) run.Settle();
  EXPECT_EQ(consumer.seqs.size(), n);
  for (uint64_t i = 0; i < consumer.seqs.size(); ++i) ASSERT_EQ(consumer.seqs[i], i + 1);
  q.RemoveConsumer(&consumer);
}

TEST(DeliveryHorizonTest, AGetThatOutrunsTheHorizonIsAnsweredEmptyUntilItIsDurable) {
  storage::testing::TempDir dir;
  BrokerRun run(dir.path());
  Queue& q = run.Durable("q");
  q.Enqueue(Body(run.broker, 10, 'x', true));
  EXPECT_FALSE(q.Get(true));  // the queue's first horizon is not in the store yet
  run.Settle();
  EXPECT_TRUE(q.Get(true));
}

TEST(DeliveryHorizonTest, AfterACrashEveryMessageThatMayHaveBeenDeliveredIsFlagged) {
  storage::testing::TempDir dir;
  const uint64_t published = 4 * Queue::kHorizonStep, delivered = 2 * Queue::kHorizonStep + 7;
  {
    BrokerRun run(dir.path());
    Queue& q = run.Durable("q");
    for (uint64_t i = 0; i < published; ++i) q.Enqueue(Body(run.broker, 10, 'x', true));
    run.Settle();
    RecordingConsumer consumer;
    q.AddConsumer(&consumer, false);
    q.RemoveConsumer(&consumer);
    // Deliver exactly `delivered` messages, through basic.get, settling the horizon on the way.
    while (consumer.seqs.size() < delivered) {
      if (std::optional<QueuedMessage> m = q.Get(/*no_ack=*/false)) {
        consumer.seqs.push_back(m->seq);
      } else {
        run.Settle();
      }
    }
    // The crash comes before the delivery states of the last deliveries are written.
    run.persister.Commit();
    for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(q.Get(false));
  }
  BrokerRun run(dir.path());
  Queue& q = run.Durable("q");
  EXPECT_EQ(q.ready_count(), published);
  uint64_t flagged_needlessly = 0;
  for (uint64_t seq = 1; seq <= published; ++seq) {
    std::optional<QueuedMessage> m = q.Get(true);
    if (!m) {  // past the horizon written at the restart
      run.Settle();
      m = q.Get(true);
    }
    ASSERT_TRUE(m) << seq;
    ASSERT_EQ(m->seq, seq);
    if (seq <= delivered + 3) {
      EXPECT_TRUE(m->redelivered) << "delivered before the crash, seq " << seq;
    } else if (m->redelivered) {
      ++flagged_needlessly;
    }
  }
  EXPECT_LE(flagged_needlessly, Queue::kHorizonStep + 1);
  // New messages are not taken for old ones.
  q.Enqueue(Body(run.broker, 10, 'n', true));
  run.Settle();
  std::optional<QueuedMessage> fresh = q.Get(true);
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh->redelivered);
}

TEST(DeliveryHorizonTest, CleanStopsFlagOnlyWhatWasDelivered) {
  storage::testing::TempDir dir;
  {
    BrokerRun run(dir.path());
    Queue& q = run.Durable("q");
    for (int i = 0; i < 12; ++i) q.Enqueue(Body(run.broker, 10, 'x', true));
    run.Settle();
    std::optional<QueuedMessage> first = q.Get(false), second = q.Get(false);
    ASSERT_TRUE(first && second);
    q.Requeue(std::move(*second));
    q.Requeue(std::move(*first));
    run.broker.CloseDeliveryHorizons();
    run.Settle();
  }
  for (int restart = 0; restart < 3; ++restart) {
    BrokerRun run(dir.path());
    EXPECT_EQ(run.Durable("q").ready_count(), 12u);
    run.broker.CloseDeliveryHorizons();
    run.Settle();
  }
  BrokerRun run(dir.path());
  Queue& q = run.Durable("q");
  for (uint64_t seq = 1; seq <= 12; ++seq) {
    std::optional<QueuedMessage> m = q.Get(true);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->seq, seq);
    EXPECT_EQ(m->redelivered, seq <= 2) << seq;
  }
}

TEST(DeliveryHorizonTest, WhatACrashMayHaveDeliveredStaysFlaggedAcrossCleanStops) {
  storage::testing::TempDir dir;
  {
    BrokerRun run(dir.path());
    Queue& q = run.Durable("q");
    for (int i = 0; i < 5; ++i) q.Enqueue(Body(run.broker, 10, 'x', true));
    run.Settle();
    ASSERT_TRUE(q.Get(/*no_ack=*/false));  // then a crash: the delivery left no record of its own
  }
  for (int restart = 0; restart < 2; ++restart) {
    BrokerRun run(dir.path());
    EXPECT_EQ(run.Durable("q").ready_count(), 5u);
    run.broker.CloseDeliveryHorizons();
    run.Settle();
  }
  BrokerRun run(dir.path());
  std::optional<QueuedMessage> m = run.Durable("q").Get(true);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->redelivered);
}

TEST(DeliveryHorizonTest, DeliveriesWriteNothingAndTheirAcksNeedNoFsync) {
  storage::testing::TempDir dir;
  {
    BrokerRun run(dir.path());
    Queue& q = run.Durable("q");
    for (int i = 0; i < 10; ++i) q.Enqueue(Body(run.broker, 10, 'x', true));
    run.Settle();
    const uint64_t syncs = run.store->stats().syncs;
    std::vector<QueuedMessage> delivered;
    for (int i = 0; i < 10; ++i) {
      std::optional<QueuedMessage> m = q.Get(/*no_ack=*/false);
      ASSERT_TRUE(m);
      delivered.push_back(std::move(*m));
    }
    EXPECT_TRUE(run.persister.idle()) << "a delivery under the horizon writes nothing";
    for (QueuedMessage& m : delivered) q.Ack(m);
    run.Settle();
    EXPECT_EQ(run.store->stats().syncs, syncs) << "a batch of acks only is not fsynced";
    q.Enqueue(Body(run.broker, 10, 'y', true));
    run.Settle();
    EXPECT_EQ(run.store->stats().syncs, syncs + 1) << "a publish is";
  }
  BrokerRun run(dir.path());
  EXPECT_EQ(run.Durable("q").ready_count(), 1u);
}

TEST(DeliveryHorizonTest, AGetAcrossTheSeqGapOfACrashRestartDoesNotWait) {
  storage::testing::TempDir dir;
  {
    BrokerRun run(dir.path());
    Queue& q = run.Durable("q");
    q.Enqueue(Body(run.broker, 10, 'a', true));
    run.Settle();
  }  // a crash: the horizon stays where it was
  {
    BrokerRun run(dir.path());
    Queue& q = run.Durable("q");
    q.Enqueue(Body(run.broker, 10, 'b', true));  // its seq jumps past the old horizon
    run.Settle();
    run.broker.CloseDeliveryHorizons();
    run.Settle();
  }
  BrokerRun run(dir.path());
  Queue& q = run.Durable("q");
  std::optional<QueuedMessage> a = q.Get(true), b = q.Get(true);
  ASSERT_TRUE(a && b);
  EXPECT_GT(b->seq, a->seq + Queue::kHorizonStep);
  EXPECT_EQ(b->msg->body(), std::string(10, 'b'));
}

}  // namespace
}  // namespace warren::broker
