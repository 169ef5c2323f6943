// Persister: how a failing store shows (failing(), failure()), which failures are fatal, and the
// back-pressure of a store that falls behind; against a fake journal, the order of completions,
// which batches are synced, and background reads.
#include "server/broker/persister.h"

#include <chrono>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include "server/broker/fake_journal.h"
#include "server/broker/publisher_flow_testing.h"
#include "server/broker/store_testing.h"
#include "server/journal/store_journal.h"
#include "storage/fault_injection_fs.h"
#include "storage/test_util.h"

namespace warren::broker {
namespace {

struct FaultyStore {
  FaultyStore() : fs(std::make_shared<storage::FaultInjectionFS>(rocksdb::FileSystem::Default())),
                  env(rocksdb::NewCompositeEnv(fs)) {
    storage::StoreOptions o;
    o.dir = dir.path();
    o.env = env.get();
    store = storage::testing::OpenOrDie(o);
  }
  storage::testing::TempDir dir;
  std::shared_ptr<storage::FaultInjectionFS> fs;
  std::unique_ptr<rocksdb::Env> env;
  std::unique_ptr<storage::Store> store;
};

// Writes one message and waits for its batch to complete.
void WriteOne(Persister& persister, testing::Loop& posted, uint64_t seq) {
  const uint64_t ticket = persister.open_ticket();
  persister.batch().PutMessage(1, seq, storage::MessageData{"", "q", "", "body"});
  ASSERT_TRUE(posted.RunUntil([&] { return persister.durable_ticket() >= ticket; }));
}

class CountingListener : public DurabilityListener {
 public:
  void OnDurable(uint64_t ticket, bool ok) override { heard.emplace_back(ticket, ok); }
  std::vector<std::pair<uint64_t, bool>> heard;
};

TEST(PersisterFakeJournalTest, BatchesCompleteInOrderAndAListenerHearsOnce) {
  testing::FakeJournal journal;
  testing::Loop loop;
  Persister persister(&journal, loop.post());
  auto listener = std::make_shared<CountingListener>();
  persister.batch().PutMessage(1, 1, storage::MessageData{"", "q", "", "a"});
  persister.WaitForDurable(listener);
  persister.Commit();
  persister.batch().PutMessage(1, 2, storage::MessageData{"", "q", "", "b"});
  persister.Commit();
  ASSERT_EQ(journal.pending_writes(), 2u);
  journal.CompleteWrite();
  loop.PumpUntil([&] { return persister.durable_ticket() == 1; });
  EXPECT_EQ(listener->heard, (std::vector<std::pair<uint64_t, bool>>{{1, true}}));
  journal.CompleteWrite(storage::Status::IOError("injected"));
  loop.PumpUntil([&] { return persister.durable_ticket() == 2; });
  EXPECT_TRUE(persister.failing());
  EXPECT_EQ(listener->heard.size(), 1u);  // it asked for the first completion only
  EXPECT_EQ(persister.stats().batches_failed, 1u);
}

TEST(PersisterFakeJournalTest, ABatchOfRemovalsOnlyIsNotSynced) {
  testing::FakeJournal journal;
  testing::Loop loop;
  Persister persister(&journal, loop.post());
  persister.removal_batch().DeleteStatelessMessage(1, 1);
  persister.Commit();
  ASSERT_EQ(journal.pending_writes(), 1u);
  EXPECT_FALSE(journal.front_is_synced());
  journal.CompleteWrite();
  persister.removal_batch().DeleteStatelessMessage(1, 2);
  persister.batch().PutMessage(1, 3, storage::MessageData{"", "q", "", "c"});
  persister.Commit();
  EXPECT_TRUE(journal.front_is_synced());
  journal.CompleteWrite();
  loop.PumpUntil([&] { return persister.durable_ticket() == 2; });
}

// A read after writes starts only once the open batch is written; until its `done` has run on
// the broker thread the persister is not idle (a shutdown waits for it).
TEST(PersisterFakeJournalTest, AReadAfterWritesWaitsForTheBatchAndKeepsThePersisterBusy) {
  testing::FakeJournal journal;
  testing::Loop loop;
  Persister persister(&journal, loop.post());
  bool read = false, done = false;
  persister.batch().PutMessage(1, 1, storage::MessageData{"", "q", "", "a"});
  persister.ReadInBackgroundAfterWrites([&](Journal&) { read = true; }, [&] { done = true; });
  persister.Commit();
  EXPECT_EQ(journal.pending_reads(), 0u);
  EXPECT_FALSE(persister.idle());
  journal.CompleteWrite();
  ASSERT_EQ(journal.pending_reads(), 1u);
  loop.PumpUntil([&] { return persister.durable_ticket() == 1; });
  EXPECT_FALSE(persister.idle());
  journal.RunRead();
  EXPECT_TRUE(read);
  loop.PumpUntil([&] { return done; });
  EXPECT_EQ(persister.background_reads(), 0u);
  while (journal.pending_writes() > 0) journal.CompleteWrite();  // the commit the read scheduled
  loop.PumpUntil([&] { return persister.idle(); });
}

TEST(PersisterTest, FullDiskFailsUntilAWriteSucceedsAndIsNotFatal) {
  testing::Loop posted;  // outlives the store, which may still post completions while closing
  FaultyStore f;
  journal::StoreJournal journal(*f.store);
  Persister persister(&journal, posted.post());
  int fatal = 0;
  persister.set_on_fatal_failure([&](const std::string&) { ++fatal; });
  WriteOne(persister, posted, 1);
  EXPECT_FALSE(persister.failing());
  EXPECT_EQ(persister.failure(), "");

  f.fs->SetNoSpace(true);
  WriteOne(persister, posted, 2);
  EXPECT_TRUE(persister.failing());
  EXPECT_NE(persister.failure().find("space"), std::string::npos) << persister.failure();
  EXPECT_EQ(persister.stats().batches_failed, 1u);
  EXPECT_EQ(fatal, 0) << "a full disk is resumed from, not fatal";

  f.fs->SetNoSpace(false);
  uint64_t seq = 3;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the store retries Resume every 200 ms
    WriteOne(persister, posted, seq++);
  } while (persister.failing() && std::chrono::steady_clock::now() < deadline);
  EXPECT_FALSE(persister.failing());
  EXPECT_EQ(persister.failure(), "");
  EXPECT_EQ(fatal, 0);
}

TEST(PersisterTest, IOErrorIsFatal) {
  testing::Loop posted;  // outlives the store, which may still post completions while closing
  FaultyStore f;
  journal::StoreJournal journal(*f.store);
  Persister persister(&journal, posted.post());
  std::vector<std::string> fatal;
  persister.set_on_fatal_failure([&](const std::string& error) { fatal.push_back(error); });
  f.fs->SetActive(false);
  WriteOne(persister, posted, 1);
  EXPECT_TRUE(persister.failing());
  ASSERT_EQ(fatal.size(), 1u);
  EXPECT_EQ(fatal[0], persister.failure());
  EXPECT_NE(fatal[0].find("IO"), std::string::npos) << fatal[0];
  f.fs->SetActive(true);
}

using testing::CountingPublisher;

// A disk that stops answering: what is submitted piles up until the Persister is congested (what
// pauses AMQP publishers and makes HTTP publish answer 503); a paused publisher resumes once
// the writer is down to kDrainedBytes, and every batch is then written.
TEST(PersisterTest, AStalledStoreCongestsAndResumesPausedPublishersWhenDrained) {
  testing::Loop posted;
  FaultyStore f;
  journal::StoreJournal journal(*f.store);
  Persister persister(&journal, posted.post());
  const std::string body(64 * 1024, 'b');
  std::unique_lock<std::shared_mutex> stall = f.fs->Stall();
  uint64_t seq = 0;
  while (!persister.congested()) {
    persister.batch().PutMessage(1, ++seq, storage::MessageData{"", "q", "", body});
    persister.Commit();
  }
  auto publisher = std::make_shared<CountingPublisher>();
  persister.PausePublisher(publisher);
  const uint64_t last = persister.open_ticket() - 1;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  ASSERT_TRUE(posted.RunUntil([&] { return std::chrono::steady_clock::now() > until; }));
  EXPECT_TRUE(persister.congested()) << "nothing completes while the disk is stalled";
  EXPECT_LT(persister.durable_ticket(), last);
  EXPECT_EQ(publisher->resumed, 0);

  stall.unlock();
  ASSERT_TRUE(posted.RunUntil([&] { return persister.durable_ticket() >= last; }));
  EXPECT_FALSE(persister.congested());
  EXPECT_FALSE(persister.failing());
  EXPECT_EQ(publisher->resumed, 1);
}

}  // namespace
}  // namespace warren::broker
