// Store::Submit: group commit under concurrent submitters, ordering, completion, errors.
#include <atomic>
#include <future>
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include "storage/fault_injection_fs.h"
#include "storage/store.h"
#include "storage/test_util.h"

namespace warren::storage {
namespace {

using testing::Msg;
using testing::OpenOrDie;
using testing::ScanAll;
using testing::TempDir;

TEST(GroupCommitTest, ConcurrentSubmittersShareSyncs) {
  constexpr int kThreads = 8, kBatches = 400;
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  std::string body(256, 'b');
  auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBatches; ++i) {
        WriteBatch b;
        b.PutMessage(t + 1, i + 1, Msg(body));
        // Overwritten by every batch of this thread: the survivor shows the apply order.
        b.PutDeliveryState(100 + t, 1, static_cast<uint32_t>(i), false);
        store->Submit(std::move(b), [&](const Status& s) { (s.ok() ? ok : failed)++; });
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(store->Write(WriteBatch()).ok());  // a barrier: every earlier batch is done
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ok.load(), kThreads * kBatches);
  EXPECT_EQ(failed.load(), 0);

  Store::Stats st = store->stats();
  EXPECT_EQ(st.batches, static_cast<uint64_t>(kThreads * kBatches + 1));
  EXPECT_LT(st.groups, st.batches);
  EXPECT_GT(st.syncs, 0u);
  EXPECT_LE(st.syncs, st.groups);
  std::printf("[ group    ] %d threads x %d synced batches: %llu groups, %llu fsyncs, "
              "%.1f batches/fsync, max group %llu, mean fsync %.0f us, %.0f batches/s\n",
              kThreads, kBatches, (unsigned long long)st.groups, (unsigned long long)st.syncs,
              double(st.batches) / double(st.syncs), (unsigned long long)st.max_group_batches,
              double(st.sync_micros_total) / double(st.syncs), double(st.batches) / secs);

  for (int t = 0; t < kThreads; ++t) {
    auto msgs = ScanAll(store.get(), t + 1);
    ASSERT_EQ(msgs.size(), static_cast<size_t>(kBatches));
    auto state = ScanAll(store.get(), 100 + t);
    EXPECT_TRUE(state.empty());  // delivery state alone is not a message
  }
  uint64_t last_counts = 0;
  ASSERT_TRUE(store->ForEach(Family::kDelivery, [&](std::string_view, std::string_view v) {
    DeliveryState d;
    EXPECT_TRUE(DecodeDeliveryState(v, &d).ok());
    EXPECT_EQ(d.delivery_count, static_cast<uint32_t>(kBatches - 1));
    ++last_counts;
    return true;
  }).ok());
  EXPECT_EQ(last_counts, static_cast<uint64_t>(kThreads));
}

// Publishers that wait for each confirm before publishing again (one batch in flight each):
// the group size then approaches the number of publishers.
TEST(GroupCommitTest, ConfirmWaitingSubmittersShareSyncs) {
  constexpr int kThreads = 8, kBatches = 150;
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  std::vector<std::thread> threads;
  auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBatches; ++i) {
        WriteBatch b;
        b.PutMessage(t + 1, i + 1, Msg(std::string(512, 'c')));
        std::promise<Status> done;
        store->Submit(std::move(b), [&done](const Status& s) { done.set_value(s); });
        EXPECT_TRUE(done.get_future().get().ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Store::Stats st = store->stats();
  EXPECT_EQ(st.batches, static_cast<uint64_t>(kThreads * kBatches));
  EXPECT_LT(st.groups, st.batches);
  std::printf("[ group    ] %d confirm-waiting publishers x %d batches: %llu fsyncs, %.1f "
              "batches/fsync, mean fsync %.0f us, %.0f batches/s\n",
              kThreads, kBatches, (unsigned long long)st.syncs,
              double(st.batches) / double(st.syncs),
              double(st.sync_micros_total) / double(st.syncs), double(st.batches) / secs);
}

TEST(GroupCommitTest, LargeBatchesKeepTheirPlaceInAGroup) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  // Hold the writer in a callback so the following submissions form one group mixing small
  // (merged) and large (written directly) batches.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  WriteBatch first;
  first.PutMessage(1, 1, Msg("first"));
  store->Submit(std::move(first), [released](const Status&) { released.wait(); });
  std::string big(200000, 'B');
  for (int i = 0; i < 6; ++i) {
    WriteBatch b;
    // The same key rewritten: the last batch must win.
    b.PutDeliveryState(9, 9, static_cast<uint32_t>(i), false);
    b.PutMessage(1, 10 + i, Msg(i % 2 ? big : "small"));
    store->Submit(std::move(b), nullptr);
  }
  release.set_value();
  ASSERT_TRUE(store->Write(WriteBatch()).ok());
  auto msgs = ScanAll(store.get(), 1);
  ASSERT_EQ(msgs.size(), 7u);
  EXPECT_EQ(msgs[2].body.size(), big.size());
  uint32_t last = 0;
  ASSERT_TRUE(store->ForEach(Family::kDelivery, [&](std::string_view, std::string_view v) {
    DeliveryState d;
    EXPECT_TRUE(DecodeDeliveryState(v, &d).ok());
    last = d.delivery_count;
    return true;
  }).ok());
  EXPECT_EQ(last, 5u);
  EXPECT_LT(store->stats().groups, store->stats().batches);
}

TEST(GroupCommitTest, UnsyncedStoreNeverSyncs) {
  TempDir dir;
  StoreOptions o;
  o.dir = dir.path();
  o.sync_writes = false;
  auto store = OpenOrDie(o);
  for (int i = 0; i < 10; ++i) {
    WriteBatch b;
    b.PutMessage(1, i + 1, Msg("x"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  EXPECT_EQ(store->stats().syncs, 0u);
  EXPECT_EQ(ScanAll(store.get(), 1).size(), 10u);
}

TEST(GroupCommitTest, UnsyncedBatchesDoNotSync) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.set_sync(false);
  b.PutMessage(1, 1, Msg("x"));
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  EXPECT_EQ(store->stats().syncs, 0u);
  WriteBatch c;
  c.PutMessage(1, 2, Msg("y"));
  ASSERT_TRUE(store->Write(std::move(c)).ok());
  EXPECT_EQ(store->stats().syncs, 1u);
}

TEST(GroupCommitTest, WriteFromCallbackIsRefused) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  std::promise<Status> inner;
  store->Submit(WriteBatch(), [&](const Status&) { inner.set_value(store->Write(WriteBatch())); });
  EXPECT_TRUE(inner.get_future().get().IsInvalidArgument());
}

TEST(GroupCommitTest, DestructorDrainsPendingBatches) {
  TempDir dir;
  std::atomic<int> done{0};
  {
    auto store = OpenOrDie(dir.path());
    for (int i = 0; i < 200; ++i) {
      WriteBatch b;
      b.PutMessage(1, i + 1, Msg("x"));
      store->Submit(std::move(b), [&](const Status& s) {
        EXPECT_TRUE(s.ok());
        done++;
      });
    }
  }
  EXPECT_EQ(done.load(), 200);
  auto store = OpenOrDie(dir.path());
  EXPECT_EQ(ScanAll(store.get(), 1).size(), 200u);
}

TEST(GroupCommitTest, DiskFullFailsTheGroupThenResumes) {
  TempDir dir;
  auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  StoreOptions o;
  o.dir = dir.path();
  o.env = env.get();
  auto store = OpenOrDie(o);
  WriteBatch before;
  before.PutMessage(1, 1, Msg("before"));
  ASSERT_TRUE(store->Write(std::move(before)).ok());

  fs->SetNoSpace(true);
  std::atomic<int> failed{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  // Hold the writer so the next three batches form one group.
  store->Submit(WriteBatch(), [released](const Status&) { released.wait(); });
  for (uint64_t seq = 2; seq <= 4; ++seq) {
    WriteBatch b;
    b.PutMessage(1, seq, Msg("during"));
    store->Submit(std::move(b), [&](const Status& s) {
      EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
      failed++;
    });
  }
  release.set_value();
  WriteBatch during;
  during.PutMessage(1, 5, Msg("during"));
  Status s = store->Write(std::move(during));
  EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
  EXPECT_EQ(failed.load(), 3);
  EXPECT_GE(store->stats().failed_groups, 1u);

  fs->SetNoSpace(false);  // space was freed
  // The writer resumes before the next group.
  auto t0 = std::chrono::steady_clock::now();
  int attempts = 0;
  do {
    WriteBatch after;
    after.PutMessage(1, 6, Msg("after"));
    s = store->Write(std::move(after));
    ++attempts;
    if (!s.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (!s.ok() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::printf("[ error    ] writes resumed %.1f s after the disk had space again (%d attempts)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              attempts);
  auto msgs = ScanAll(store.get(), 1);
  ASSERT_GE(msgs.size(), 2u);
  EXPECT_EQ(msgs.front().body, "before");
  EXPECT_EQ(msgs.back().body, "after");
}

// Any other write error leaves RocksDB read-only until reopened: every later batch fails too,
// with the error named, and the data written before stays readable.
TEST(GroupCommitTest, IOErrorFailsLaterBatches) {
  TempDir dir;
  auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  StoreOptions o;
  o.dir = dir.path();
  o.env = env.get();
  auto store = OpenOrDie(o);
  WriteBatch before;
  before.PutMessage(1, 1, Msg("before"));
  ASSERT_TRUE(store->Write(std::move(before)).ok());
  fs->SetActive(false);
  WriteBatch during;
  during.PutMessage(1, 2, Msg("during"));
  EXPECT_TRUE(store->Write(std::move(during)).IsIOError());
  fs->SetActive(true);
  WriteBatch after;
  after.PutMessage(1, 3, Msg("after"));
  Status s = store->Write(std::move(after));
  std::printf("[ error    ] write after a non-space I/O error: %s\n", s.ToString().c_str());
  EXPECT_EQ(ScanAll(store.get(), 1).front().body, "before");
}

}  // namespace
}  // namespace warren::storage
