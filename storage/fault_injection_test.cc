// Crash tests: submitters write while the "machine" stops at a random moment; unsynced data is
// dropped (or torn) as after a power loss; the store is reopened and checked:
//   - every batch whose on_done reported OK for a synced batch is there in full;
//   - every batch is there in full or not at all (also across column families);
//   - what survives is a prefix of each submitter's batches (batches apply in order).
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <shared_mutex>
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
using testing::TempDir;

constexpr int kThreads = 4;
constexpr uint64_t kQueueBase = 1, kRefQueueBase = 100;

// Batch (t, i) writes five records in four column families.
uint64_t BodyId(int t, uint64_t i) { return (static_cast<uint64_t>(t) << 32) | (i + 1); }
std::string DefName(int t, uint64_t i) { return std::to_string(t) + "-" + std::to_string(i); }
std::string Body(int t, uint64_t i, size_t size) {
  std::string b = DefName(t, i) + ":";
  b.resize(size, static_cast<char>('a' + (i % 26)));
  return b;
}

// Per submitter: batches submitted, and per batch whether it asked for a sync and whether its
// on_done reported OK. Written by the submitters and the store thread, read by the test.
struct Written {
  static constexpr size_t kMaxBatches = 50000;
  Written() {
    for (int t = 0; t < kThreads; ++t) {
      acked[t].reset(new std::atomic<uint8_t>[kMaxBatches]());
      synced[t].reset(new std::atomic<uint8_t>[kMaxBatches]());
    }
  }
  std::atomic<uint64_t> submitted[kThreads] = {};
  std::unique_ptr<std::atomic<uint8_t>[]> acked[kThreads];
  std::unique_ptr<std::atomic<uint8_t>[]> synced[kThreads];
};

struct Found {
  std::set<std::pair<int, uint64_t>> index, delivery, bodies, refs, defs;
};

Found ReadBack(Store* store) {
  Found f;
  EXPECT_TRUE(store->ForEach(Family::kIndex, [&](std::string_view k, std::string_view v) {
    uint64_t q = 0, s = 0;
    EXPECT_TRUE(DecodeMessageKey(k, &q, &s));
    MessageView mv;
    EXPECT_TRUE(DecodeIndexValue(v, &mv).ok());
    if (q >= kRefQueueBase) {
      f.refs.insert({static_cast<int>(q - kRefQueueBase), s - 1});
    } else {
      int t = static_cast<int>(q - kQueueBase);
      EXPECT_TRUE(mv.body.starts_with(DefName(t, s - 1) + ":")) << "torn body";
      f.index.insert({t, s - 1});
    }
    return true;
  }).ok());
  EXPECT_TRUE(store->ForEach(Family::kDelivery, [&](std::string_view k, std::string_view) {
    uint64_t q = 0, s = 0;
    EXPECT_TRUE(DecodeMessageKey(k, &q, &s));
    f.delivery.insert({static_cast<int>(q - kQueueBase), s - 1});
    return true;
  }).ok());
  EXPECT_TRUE(store->ForEach(Family::kBodies, [&](std::string_view k, std::string_view v) {
    uint64_t id = 0;
    EXPECT_TRUE(DecodeBodyKey(k, &id));
    MessageView mv;
    EXPECT_TRUE(DecodeBodyValue(v, &mv).ok());
    f.bodies.insert({static_cast<int>(id >> 32), (id & 0xffffffff) - 1});
    return true;
  }).ok());
  std::vector<proto::QueueRecord> queues;
  EXPECT_TRUE(store->ListQueues(&queues).ok());
  for (const auto& q : queues) f.defs.insert({static_cast<int>(q.id() >> 32), (q.id() & 0xffffffff) - 1});
  return f;
}

struct CrashParams {
  uint32_t seed;
  bool torn;              // keep a random part of unsynced data instead of none
  bool sync_writes;       // store option
  size_t write_buffer;    // small: flushes and WAL switches during the run
  bool in_place = false;  // CutPower (as the power-cut server does) instead of CopyDurableState
};

void RunCrash(const CrashParams& p) {
  SCOPED_TRACE("seed " + std::to_string(p.seed) + (p.torn ? " torn" : " drop") +
               (p.sync_writes ? " sync" : " nosync"));
  std::mt19937 rng(p.seed);
  TempDir dir;
  auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  StoreOptions o;
  o.dir = dir.Sub("store");
  o.env = env.get();
  o.sync_writes = p.sync_writes;
  o.write_buffer_size = p.write_buffer;
  auto store = OpenOrDie(o);
  ASSERT_NE(store, nullptr);

  Written w;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acks{0};
  // Submitters keep at most kWindow batches in flight, as publishers with a confirm window do,
  // so the crash lands mid-stream rather than after a huge queue.
  constexpr uint64_t kWindow = 256;
  std::vector<std::atomic<uint64_t>> completed(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t, seed = rng()] {
      std::mt19937 r(seed);
      for (uint64_t i = 0; !stop && i < Written::kMaxBatches; ++i) {
        WriteBatch b;
        bool sync = r() % 4 != 0;  // a quarter of the batches do not ask for a sync
        b.set_sync(sync);
        size_t size = 10 + r() % (r() % 8 == 0 ? 70000 : 2000);
        std::string body = Body(t, i, size);
        b.PutMessage(kQueueBase + t, i + 1, Msg(body));
        b.PutDeliveryState(kQueueBase + t, i + 1, 1, false);
        b.PutBody(BodyId(t, i), Msg(body));
        b.PutMessageRef(kRefQueueBase + t, i + 1, BodyId(t, i));
        proto::QueueRecord q;
        q.set_vhost("/");
        q.set_name(DefName(t, i));
        q.set_id(BodyId(t, i));  // queue ids start at 1
        b.PutQueue(q);
        w.synced[t][i] = sync && p.sync_writes;
        w.submitted[t] = i + 1;
        store->Submit(std::move(b), [&w, &acks, &completed, t, i](const Status& s) {
          if (s.ok()) {
            w.acked[t][i] = 1;
            acks++;
          }
          completed[t]++;
        });
        while (!stop && i + 1 - completed[t] >= kWindow) std::this_thread::yield();
      }
    });
  }
  // Crash after a random amount of acknowledged work: note what was acknowledged, then take
  // the disk image a power loss would leave now. (Acknowledged before the image means synced
  // before it.)
  uint64_t crash_after = 200 + rng() % 3000;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (acks < crash_after && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::vector<std::vector<char>> acked_at_crash(kThreads, std::vector<char>(Written::kMaxBatches));
  for (int t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < Written::kMaxBatches; ++i) acked_at_crash[t][i] = w.acked[t][i];
  }
  std::string image = dir.Sub("crash-image");
  if (p.in_place) {
    FaultInjectionFS::CutStats cut;
    std::unique_lock<std::shared_mutex> stopped;
    ASSERT_TRUE(fs->CutPower(o.dir, p.torn ? &rng : nullptr, &cut, &stopped).ok());
    // What the disk holds after the cut is the image. Releasing the lock lets the store go on
    // writing to the cut files, which nobody opens again.
    std::filesystem::copy(o.dir, image);
  } else {
    ASSERT_TRUE(fs->CopyDurableState(o.dir, image, p.torn ? &rng : nullptr).ok());
  }
  stop = true;
  for (auto& th : threads) th.join();
  store.reset();

  StoreOptions reopen;  // as the server restarts: with the same --sync-writes
  reopen.dir = image;
  reopen.sync_writes = p.sync_writes;
  auto reopened = OpenOrDie(reopen);
  ASSERT_NE(reopened, nullptr);
  Found f = ReadBack(reopened.get());
  uint64_t must = 0, present = 0, total = 0;
  for (int t = 0; t < kThreads; ++t) {
    bool gap = false;
    for (uint64_t i = 0; i < w.submitted[t]; ++i) {
      std::pair<int, uint64_t> k{t, i};
      int parts = f.index.count(k) + f.delivery.count(k) + f.bodies.count(k) + f.refs.count(k) +
                  f.defs.count({t, i});
      ++total;
      ASSERT_TRUE(parts == 0 || parts == 5) << "batch " << t << "/" << i << " half applied: "
                                            << parts << " of 5 records";
      if (acked_at_crash[t][i] && w.synced[t][i]) {
        ++must;
        ASSERT_EQ(parts, 5) << "acknowledged synced batch " << t << "/" << i << " lost";
      }
      if (parts == 5) {
        ++present;
        // A completed sync makes everything written before it durable, older WAL files included.
        // Writes not yet synced at the cut (unsynced batches, or synced ones still in flight) in
        // two WAL files (a memtable switch between them) have no order on the disk: the later
        // file's may survive the earlier file's torn tail, as on a real power cut.
        const bool durable_before_cut = acked_at_crash[t][i] && w.synced[t][i];
        ASSERT_FALSE(gap && durable_before_cut)
            << "batch " << t << "/" << i << " was synced before the cut, but an earlier one was lost";
      } else {
        gap = true;
      }
    }
  }
  // Nothing unexpected: every record belongs to a submitted batch.
  for (const auto& k : f.index) ASSERT_LT(k.second, w.submitted[k.first]);
  std::printf("[ crash    ] seed %u %s %s: %llu batches submitted, %llu acked+synced, %llu "
              "survived\n", p.seed, p.torn ? "torn" : "drop", p.sync_writes ? "sync" : "nosync",
              (unsigned long long)total, (unsigned long long)must, (unsigned long long)present);
  RecoveryInfo info;
  Status s = reopened->Recover(&info);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(info.orphan_bodies_removed, 0u);
  EXPECT_EQ(info.messages, 2 * present);
}

TEST(FaultInjectionTest, DropAllUnsyncedData) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    RunCrash({seed, /*torn=*/false, /*sync_writes=*/true, /*write_buffer=*/256 << 10});
    if (HasFatalFailure()) return;
  }
}

TEST(FaultInjectionTest, TornUnsyncedData) {
  for (uint32_t seed = 11; seed <= 14; ++seed) {
    RunCrash({seed, /*torn=*/true, /*sync_writes=*/true, /*write_buffer=*/256 << 10});
    if (HasFatalFailure()) return;
  }
}

TEST(FaultInjectionTest, LargeMemtablesNoFlush) {
  RunCrash({21, /*torn=*/true, /*sync_writes=*/true, /*write_buffer=*/0});
}

// sync_writes=false: nothing is promised durable, but batches stay whole and in order.
TEST(FaultInjectionTest, UnsyncedStoreStaysConsistent) {
  for (uint32_t seed = 31; seed <= 32; ++seed) {
    RunCrash({seed, /*torn=*/true, /*sync_writes=*/false, /*write_buffer=*/256 << 10});
    if (HasFatalFailure()) return;
  }
}

TEST(FaultInjectionTest, PowerCutInPlace) {
  for (uint32_t seed = 41; seed <= 42; ++seed) {
    RunCrash({seed, /*torn=*/seed % 2 == 0, /*sync_writes=*/true, /*write_buffer=*/256 << 10, /*in_place=*/true});
    if (HasFatalFailure()) return;
  }
}

TEST(FaultInjectionTest, CrashRightAfterCreation) {
  TempDir dir;
  auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  StoreOptions o;
  o.dir = dir.Sub("store");
  o.env = env.get();
  auto store = OpenOrDie(o);
  ASSERT_TRUE(fs->CopyDurableState(o.dir, dir.Sub("image"), nullptr).ok());
  store.reset();
  auto reopened = OpenOrDie(dir.Sub("image"));
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->format_version(), kFormatVersion);
}

// The model itself: unsynced bytes and unsynced directory entries do not reach the image.
TEST(FaultInjectionTest, ImageKeepsOnlySyncedData) {
  TempDir dir;
  auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  rocksdb::FileOptions fo;
  rocksdb::IOOptions io;
  std::unique_ptr<rocksdb::FSDirectory> d;
  ASSERT_TRUE(fs->NewDirectory(dir.path(), io, &d, nullptr).ok());
  std::unique_ptr<rocksdb::FSWritableFile> a, b;
  ASSERT_TRUE(fs->NewWritableFile(dir.Sub("a"), fo, &a, nullptr).ok());
  ASSERT_TRUE(a->Append("synced", io, nullptr).ok());
  ASSERT_TRUE(a->Sync(io, nullptr).ok());
  ASSERT_TRUE(d->Fsync(io, nullptr).ok());  // a's entry is durable
  ASSERT_TRUE(a->Append("+lost", io, nullptr).ok());
  ASSERT_TRUE(fs->NewWritableFile(dir.Sub("b"), fo, &b, nullptr).ok());
  ASSERT_TRUE(b->Append("data", io, nullptr).ok());
  ASSERT_TRUE(b->Sync(io, nullptr).ok());  // synced, but its directory entry is not
  ASSERT_TRUE(a->Close(io, nullptr).ok());
  ASSERT_TRUE(b->Close(io, nullptr).ok());
  ASSERT_TRUE(fs->CopyDurableState(dir.path(), dir.Sub("image"), nullptr).ok());
  std::ifstream in(dir.Sub("image/a"));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "synced");
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("image/b")));
}

// CutPower leaves in place what CopyDurableState copies, stops writes while its lock is held,
// and afterwards tracks the cut files as durable.
TEST(FaultInjectionTest, CutPowerInPlace) {
  TempDir dir;
  auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  rocksdb::FileOptions fo;
  rocksdb::IOOptions io;
  std::filesystem::create_directories(dir.Sub("d"));
  { std::ofstream(dir.Sub("d/old")) << "before"; }  // not written through fs: durable
  std::unique_ptr<rocksdb::FSDirectory> d;
  ASSERT_TRUE(fs->NewDirectory(dir.Sub("d"), io, &d, nullptr).ok());
  std::unique_ptr<rocksdb::FSWritableFile> a, b, c;
  ASSERT_TRUE(fs->NewWritableFile(dir.Sub("d/a"), fo, &a, nullptr).ok());
  ASSERT_TRUE(a->Append("synced", io, nullptr).ok());
  ASSERT_TRUE(a->Sync(io, nullptr).ok());
  ASSERT_TRUE(d->Fsync(io, nullptr).ok());
  ASSERT_TRUE(a->Append("+lost", io, nullptr).ok());
  ASSERT_TRUE(fs->NewWritableFile(dir.Sub("d/b"), fo, &b, nullptr).ok());
  ASSERT_TRUE(b->Append("data", io, nullptr).ok());
  ASSERT_TRUE(b->Sync(io, nullptr).ok());  // its directory entry is not durable
  ASSERT_TRUE(fs->NewWritableFile(dir.Sub("d/c.tmp"), fo, &c, nullptr).ok());
  ASSERT_TRUE(c->Append("after", io, nullptr).ok());
  ASSERT_TRUE(c->Sync(io, nullptr).ok());
  ASSERT_TRUE(c->Close(io, nullptr).ok());
  ASSERT_TRUE(fs->RenameFile(dir.Sub("d/c.tmp"), dir.Sub("d/old"), io, nullptr).ok());  // not synced
  ASSERT_TRUE(fs->CopyDurableState(dir.Sub("d"), dir.Sub("image"), nullptr).ok());

  FaultInjectionFS::CutStats cut;
  std::unique_lock<std::shared_mutex> stopped;
  ASSERT_TRUE(fs->CutPower(dir.Sub("d"), nullptr, &cut, &stopped).ok());
  EXPECT_TRUE(stopped.owns_lock());
  EXPECT_EQ(cut.files_cut, 1u);
  EXPECT_EQ(cut.bytes_dropped, 5u);
  EXPECT_EQ(cut.files_removed, 1u);
  EXPECT_EQ(cut.files_restored, 1u);
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(read(dir.Sub("d/a")), "synced");
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("d/b")));
  EXPECT_EQ(read(dir.Sub("d/old")), "before");
  for (const char* name : {"a", "b", "old"}) {
    EXPECT_EQ(std::filesystem::exists(dir.Sub(std::string("d/") + name)),
              std::filesystem::exists(dir.Sub(std::string("image/") + name))) << name;
  }

  std::atomic<bool> appended{false};
  std::thread writer([&] {
    EXPECT_TRUE(a->Append("+later", io, nullptr).ok());
    appended = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(appended) << "a write went through after the cut";
  stopped.unlock();
  writer.join();
  EXPECT_TRUE(appended);
  ASSERT_TRUE(a->Close(io, nullptr).ok());
  ASSERT_TRUE(b->Close(io, nullptr).ok());
  // The cut sizes are now the durable ones: a second cut drops only what came after.
  ASSERT_TRUE(fs->CutPower(dir.Sub("d"), nullptr, &cut, &stopped).ok());
  EXPECT_EQ(read(dir.Sub("d/a")), "synced");
  EXPECT_EQ(cut.files_cut, 1u);
  EXPECT_EQ(cut.files_removed, 0u);
  EXPECT_EQ(cut.files_restored, 0u);
}

// Stall: a write from another thread waits until the lock is released, then goes through.
TEST(FaultInjectionTest, StallHoldsWritesUntilReleased) {
  TempDir dir;
  auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  rocksdb::IOOptions io;
  std::unique_ptr<rocksdb::FSWritableFile> f;
  ASSERT_TRUE(fs->NewWritableFile(dir.Sub("f"), rocksdb::FileOptions(), &f, nullptr).ok());
  std::unique_lock<std::shared_mutex> stall = fs->Stall();
  std::atomic<bool> written{false};
  std::thread writer([&] {
    EXPECT_TRUE(f->Append("data", io, nullptr).ok());
    written = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(written.load());
  stall.unlock();
  writer.join();
  EXPECT_TRUE(written.load());
  EXPECT_EQ(std::filesystem::file_size(dir.Sub("f")), 4u);
}

}  // namespace
}  // namespace warren::storage
