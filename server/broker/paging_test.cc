// Paging with a real store: the byte window, queues that are not durable, recovery dropping the
// paged messages of queues without a record, and recovery's progress reports.
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "server/broker/broker.h"
#include "server/broker/manual_timers.h"
#include "server/broker/persister.h"
#include "server/broker/queue.h"
#include "server/broker/recovery.h"
#include "server/broker/store_testing.h"
#include "server/broker/vhost.h"
#include "server/journal/store_journal.h"
#include "storage/test_util.h"

namespace warren::broker {
namespace {

using testing::Body;
using testing::Loop;
using testing::RecordingConsumer;

// The loop outlives the store: closing it runs the last completions, which post to the loop.
struct Env {
  storage::testing::TempDir dir;
  Loop loop;
  std::unique_ptr<storage::Store> store = storage::testing::OpenOrDie(dir.path());
  Broker broker;
  journal::StoreJournal journal{*store};
  Persister persister{&journal, loop.post()};
  Env() {
    persister.set_memory_window(1000);
    persister.set_memory_window_bytes(64 * 1024);
    broker.set_persister(&persister);
  }
  // Commits and waits until everything so far is in the store.
  void Settle() { testing::SettleStore(persister, loop); }
};

void ExpectAscendingFromOne(const std::vector<uint64_t>& seqs, size_t n) {
  ASSERT_EQ(seqs.size(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(seqs[i], i + 1) << i;
}

TEST(PagingTest, ByteWindowPagesLargeBodiesOfATransientQueue) {
  Env env;
  auto declared = env.broker.FindVhost("/")->DeclareQueue("q", false, QueueOptions{}, 1);
  ASSERT_TRUE(declared);
  Queue& q = *declared->queue;
  for (int i = 0; i < 40; ++i) q.Enqueue(Body(env.broker, 16 * 1024, static_cast<char>('a' + i % 26)));
  EXPECT_EQ(q.ready_count(), 40u);
  EXPECT_GT(q.paged_count(), 30u);        // 640 KiB queued, a 64 KiB window
  EXPECT_LE(q.memory_bytes(), 64u * 1024);
  // The window, and at most a quarter of it of the newest paged messages (Queue::kRecentPaged).
  EXPECT_LT(env.broker.memory().used(MemoryUse::kMessages), 96u * 1024);
  env.Settle();
  for (int i = 0; i < 40; ++i) {
    std::optional<QueuedMessage> m = q.Get(/*no_ack=*/true);
    if (!m) {  // a page-in waiting for the store
      env.Settle();
      m = q.Get(true);
    }
    ASSERT_TRUE(m) << i;
    EXPECT_EQ(m->msg->body(), std::string(16 * 1024, static_cast<char>('a' + i % 26))) << i;
    EXPECT_LE(q.memory_bytes(), 64u * 1024);
  }
  EXPECT_EQ(q.ready_count(), 0u);
}

// A durable queue with `n` persistent 100-byte messages, all written to the store, under a
// 4-message memory window.
Queue& DurableWithPagedTail(testing::BrokerRun& run, int n) {
  run.persister.set_memory_window(4);
  auto declared = run.broker.FindVhost("/")->DeclareQueue("q", false, QueueOptions{.durable = true}, 1);
  EXPECT_TRUE(declared);
  for (int i = 0; i < n; ++i) declared->queue->Enqueue(Body(run.broker, 100, 'p', /*persistent=*/true));
  run.Settle();
  return *declared->queue;
}

// The broker thread does not read the paged tail itself: the read runs on the store's reader
// thread and its messages reach the consumer through the loop, in order.
TEST(PagingTest, AConsumerGetsThePagedTailThroughBackgroundReads) {
  storage::testing::TempDir dir;
  testing::BrokerRun run(dir.path());
  Queue& q = DurableWithPagedTail(run, 40);
  ASSERT_EQ(q.paged_count(), 36u);
  RecordingConsumer consumer(/*no_ack=*/true);
  q.AddConsumer(&consumer, false);
  q.Dispatch();
  EXPECT_EQ(consumer.seqs.size(), 4u);  // the window; the first page-in is on its way
  EXPECT_EQ(run.persister.background_reads(), 1u);
  run.Settle();
  ASSERT_EQ(consumer.seqs.size(), 40u);
  for (size_t i = 1; i < consumer.seqs.size(); ++i) EXPECT_LT(consumer.seqs[i - 1], consumer.seqs[i]);
  EXPECT_EQ(q.ready_count(), 0u);
  q.RemoveConsumer(&consumer);
}

// Publishes one persistent message whenever a batch is durable, before anyone else hears of it:
// like a publisher in the same event-loop turn, the newest paged message is never yet written when
// the queue learns of a write.
class PublisherOnEveryWrite : public DurabilityListener, public std::enable_shared_from_this<PublisherOnEveryWrite> {
 public:
  PublisherOnEveryWrite(testing::BrokerRun& run, Queue& queue, int publishes)
      : run_(run), queue_(queue), left_(publishes) {}
  void Start() { run_.persister.WaitForDurable(weak_from_this()); }
  void OnDurable(uint64_t, bool) override {
    if (left_-- <= 0) return;
    queue_.Enqueue(Body(run_.broker, 100, 'n', /*persistent=*/true));
    Start();
  }
  bool done() const { return left_ < 0; }

 private:
  testing::BrokerRun& run_;
  Queue& queue_;
  int left_;
};

// Publishers that go on paging out new messages do not hold back the page-in of the older ones:
// it reads what the store has written, not only once the newest is written.
TEST(PagingTest, APageInDoesNotWaitForMessagesPublishedAfterIt) {
  storage::testing::TempDir dir;
  testing::BrokerRun run(dir.path());
  Queue& q = DurableWithPagedTail(run, 40);
  auto publisher = std::make_shared<PublisherOnEveryWrite>(run, q, 100);
  publisher->Start();
  RecordingConsumer consumer(/*no_ack=*/true);
  q.AddConsumer(&consumer, false);
  q.Dispatch();
  run.loop.PumpUntil([&] { return consumer.seqs.size() >= 40 || publisher->done(); });
  ASSERT_GE(consumer.seqs.size(), 40u);
  run.Settle();
  ExpectAscendingFromOne(consumer.seqs, consumer.seqs.size());
  q.RemoveConsumer(&consumer);
}

// A purge while a page-in is out: the page-in's result is stale and dropped, the purge's own
// background scan deletes the tail, and nothing comes back after a restart.
TEST(PagingTest, APurgeDropsAPageInThatWasStillOut) {
  storage::testing::TempDir dir;
  uint64_t id = 0;
  {
    testing::BrokerRun run(dir.path());
    Queue& q = DurableWithPagedTail(run, 40);
    id = q.id();
    RecordingConsumer consumer(/*no_ack=*/true);
    q.AddConsumer(&consumer, false);
    q.Dispatch();
    ASSERT_EQ(run.persister.background_reads(), 1u);
    q.RemoveConsumer(&consumer);
    EXPECT_EQ(q.Purge(), 36u);
    EXPECT_EQ(q.ready_count(), 0u);
    run.Settle();
    EXPECT_EQ(consumer.seqs.size(), 4u);
    EXPECT_EQ(q.ready_count(), 0u);
    EXPECT_TRUE(storage::testing::ScanAll(run.store.get(), id).empty());
  }
  testing::BrokerRun run(dir.path());
  EXPECT_TRUE(storage::testing::ScanAll(run.store.get(), id).empty());
}

// A basic.get is answered from the store when nothing is in memory, rather than empty.
TEST(PagingTest, AGetThatFindsNothingInMemoryReadsThePagedTailItself) {
  storage::testing::TempDir dir;
  testing::BrokerRun run(dir.path());
  Queue& q = DurableWithPagedTail(run, 20);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(q.Get(/*no_ack=*/true)) << i;  // no pumping of the loop
  EXPECT_FALSE(q.Get(true));
  run.Settle();
  EXPECT_EQ(q.ready_count(), 0u);
}

// A transient queue with `n` 16-byte messages under a 1000-message window, all of them settled
// in the store; a consumer that takes everything attached.
struct QueueWithAPagedTail {
  explicit QueueWithAPagedTail(Env& env, int n) {
    auto declared = env.broker.FindVhost("/")->DeclareQueue("q", false, QueueOptions{}, 1);
    EXPECT_TRUE(declared);
    queue = declared->queue;
    for (int i = 0; i < n; ++i) queue->Enqueue(Body(env.broker, 16, 'x'));
    env.Settle();
  }
  // Every message reached the consumer once and in order, and the next one does not page.
  void ExpectCaughtUp(Env& env, size_t n) {
    ExpectAscendingFromOne(consumer.seqs, n);
    EXPECT_EQ(queue->paged_count(), 0u);
    queue->Enqueue(Body(env.broker, 16, 'y'));
    EXPECT_EQ(queue->paged_count(), 0u);
    ExpectAscendingFromOne(consumer.seqs, n + 1);
  }
  std::shared_ptr<Queue> queue;
  RecordingConsumer consumer{/*no_ack=*/true};
};

// The newest paged messages stay in memory too, so a tail that is all among them reaches the
// consumer without a read, and the queue's next message no longer goes through the store.
TEST(PagingTest, ATailOfRecentlyPagedMessagesComesBackWithoutARead) {
  Env env;
  QueueWithAPagedTail setup(env, 1200);  // 1000 in memory, the 200 newest paged
  Queue& q = *setup.queue;
  ASSERT_EQ(q.paged_count(), 200u);
  q.AddConsumer(&setup.consumer, false);
  q.Dispatch();
  EXPECT_EQ(env.persister.background_reads(), 0u);
  setup.ExpectCaughtUp(env, 1200);
  env.Settle();
  EXPECT_TRUE(storage::testing::ScanAll(env.store.get(), q.id()).empty());  // the deliveries deleted them
  q.RemoveConsumer(&setup.consumer);
}

// A tail longer than what stays in memory is read until the rest is all recent, which then comes
// without a read: everything arrives once and in order.
TEST(PagingTest, PageInsHandOverToTheRecentlyPagedMessages) {
  Env env;
  QueueWithAPagedTail setup(env, 2200);  // 1200 paged; the newest 250 (a quarter of the window) recent
  Queue& q = *setup.queue;
  q.AddConsumer(&setup.consumer, false);
  q.Dispatch();
  EXPECT_EQ(env.persister.background_reads(), 1u);  // the first 1000 of the tail
  env.Settle();
  EXPECT_EQ(env.persister.background_reads(), 0u);
  setup.ExpectCaughtUp(env, 2200);
  q.RemoveConsumer(&setup.consumer);
}

TEST(PagingTest, DeletingATransientQueueDeletesWhatItPaged) {
  Env env;
  Vhost& vhost = *env.broker.FindVhost("/");
  auto declared = vhost.DeclareQueue("q", false, QueueOptions{}, 1);
  ASSERT_TRUE(declared);
  const uint64_t id = declared->queue->id();
  for (int i = 0; i < 10; ++i) declared->queue->Enqueue(Body(env.broker, 16 * 1024, 'x'));
  env.Settle();
  EXPECT_FALSE(storage::testing::ScanAll(env.store.get(), id).empty());
  ASSERT_TRUE(vhost.DeleteQueue("q", false, false, 1));
  env.Settle();
  EXPECT_TRUE(storage::testing::ScanAll(env.store.get(), id).empty());
}

TEST(PagingTest, RecoveryDropsThePagedMessagesOfQueuesThatWereNotDurable) {
  storage::testing::TempDir dir;
  uint64_t transient_id = 0;
  {
    testing::BrokerRun run(dir.path());
    run.persister.set_memory_window(2);
    auto declared = run.broker.FindVhost("/")->DeclareQueue("t", false, QueueOptions{}, 1);
    ASSERT_TRUE(declared);
    transient_id = declared->queue->id();
    for (int i = 0; i < 10; ++i) declared->queue->Enqueue(Body(run.broker, 100, 'p', /*persistent=*/true));
    run.Settle();
    EXPECT_EQ(storage::testing::ScanAll(run.store.get(), transient_id).size(), 8u);
  }  // a crash: the queue is gone, its paged messages are not
  testing::BrokerRun run(dir.path());
  EXPECT_EQ(run.stats.transient_queues_discarded, 1u);
  EXPECT_TRUE(storage::testing::ScanAll(run.store.get(), transient_id).empty());
  EXPECT_GT(run.persister.NextQueueId(), transient_id);  // never reused
}

// A broker on the store in `dir` whose clock the test moves, with a 4-message memory window.
struct TtlRun {
  explicit TtlRun(const std::string& dir) : run(dir, &timers) { run.persister.set_memory_window(4); }
  // A durable queue with x-message-ttl 1000 and `n` persistent messages.
  Queue& DeclareWithMessages(int n) {
    QueueOptions options{.durable = true, .arguments = amqp::FieldTable{{{"x-message-ttl", amqp::FieldValue(int32_t{1000})}}}};
    auto declared = run.broker.FindVhost("/")->DeclareQueue("q", false, std::move(options), 1);
    EXPECT_TRUE(declared);
    for (int i = 0; i < n; ++i) declared->queue->Enqueue(Body(run.broker, 100, 'p', /*persistent=*/true));
    return *declared->queue;
  }

  ManualTimers timers;
  testing::BrokerRun run;
};

// The TTL counts from the enqueue: reading a message back from the store does not restart it.
TEST(PagingTest, PagedOutMessagesExpireOnTheirOwnDeadline) {
  storage::testing::TempDir dir;
  TtlRun t(dir.path());
  Queue& q = t.DeclareWithMessages(20);
  t.run.Settle();
  EXPECT_GT(q.paged_count(), 10u);
  t.timers.Advance(999);
  t.run.Settle();
  EXPECT_EQ(q.ready_count(), 20u);
  t.timers.Advance(1);
  t.run.Settle();
  EXPECT_EQ(q.ready_count(), 0u);
  EXPECT_EQ(q.paged_count(), 0u);
  EXPECT_TRUE(storage::testing::ScanAll(t.run.store.get(), q.id()).empty());
}

TEST(PagingTest, ExpiryGoesOnOnceAPageInThatWaitedForTheStoreCan) {
  storage::testing::TempDir dir;
  TtlRun t(dir.path());
  Queue& q = t.DeclareWithMessages(20);
  t.timers.Advance(1000);  // the paged tail is not in the store yet: the page-in waits for it
  EXPECT_GT(q.paged_count(), 10u);
  t.run.Settle();
  EXPECT_EQ(q.ready_count(), 0u);
}

TEST(PagingTest, RecoveredMessagesKeepTheirDeadline) {
  storage::testing::TempDir dir;
  {
    TtlRun t(dir.path());
    t.DeclareWithMessages(10);
    t.run.Settle();
  }
  // Restarted 600 ms later by the wall clock, on a monotonic clock that starts anew.
  ManualTimers timers(5000);
  timers.Advance(600);
  testing::BrokerRun run(dir.path(), &timers);
  auto found = run.broker.FindVhost("/")->FindQueue("q", 0);
  ASSERT_TRUE(found);
  Queue& q = **found;
  EXPECT_EQ(q.ready_count(), 10u);
  timers.Advance(399);
  EXPECT_EQ(q.ready_count(), 10u);
  timers.Advance(1);
  run.Settle();
  EXPECT_EQ(q.ready_count(), 0u);
}

TEST(PagingTest, RecoveryReportsProgressPerQueueAndEveryThousandMessages) {
  storage::testing::TempDir dir;
  {
    testing::BrokerRun run(dir.path());
    auto declared = run.broker.FindVhost("/")->DeclareQueue("d", false, QueueOptions{.durable = true, .arguments = {}}, 1);
    ASSERT_TRUE(declared);
    for (uint64_t i = 0; i < 2 * kRecoveryProgressEvery + 5; ++i) {
      declared->queue->Enqueue(Body(run.broker, 10, 'p', /*persistent=*/true));
    }
    run.Settle();
  }
  Loop loop;
  std::unique_ptr<storage::Store> store = storage::testing::OpenOrDie(dir.path());
  Broker broker;
  journal::StoreJournal journal(*store);
  Persister persister(&journal, loop.post());
  RecoveryStats stats;
  std::vector<std::tuple<std::string, std::string, uint64_t>> reports;
  auto progress = [&](std::string_view vhost, std::string_view queue, uint64_t messages, uint64_t) {
    reports.emplace_back(vhost, queue, messages);
  };
  ASSERT_TRUE(RecoverBroker(*store, broker, persister, {"guest", "guest"}, &stats, progress).ok());
  EXPECT_EQ(stats.messages, 2 * kRecoveryProgressEvery + 5);
  EXPECT_EQ(reports, (std::vector<std::tuple<std::string, std::string, uint64_t>>{
                         {"/", "d", 0}, {"/", "d", kRecoveryProgressEvery}, {"/", "d", 2 * kRecoveryProgressEvery}}));
}

}  // namespace
}  // namespace warren::broker
