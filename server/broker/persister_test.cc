// Persister: how a failing store shows (failing(), failure()), which failures are fatal, and the
// back-pressure of a store that falls behind.
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

#include "server/broker/store_testing.h"
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

TEST(PersisterTest, FullDiskFailsUntilAWriteSucceedsAndIsNotFatal) {
  testing::Loop posted;  // outlives the store, which may still post completions while closing
  FaultyStore f;
  Persister persister(f.store.get(), posted.post());
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
  Persister persister(f.store.get(), posted.post());
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

class CountingPublisher final : public PublisherFlow {
 public:
  void ResumePublishing() override { ++resumed; }
  int resumed = 0;
};

// A disk that stops answering: what is submitted piles up until the Persister is congested (what
// pauses AMQP publishers and makes HTTP publish answer 503); a paused publisher resumes once
// the writer is down to kDrainedBytes, and every batch is then written.
TEST(PersisterTest, AStalledStoreCongestsAndResumesPausedPublishersWhenDrained) {
  testing::Loop posted;
  FaultyStore f;
  Persister persister(f.store.get(), posted.post());
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
