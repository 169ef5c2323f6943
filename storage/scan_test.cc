// Store::ScanQueue: order, bounds, early stop, delivery state merge, and the cost of a head of
// deleted entries (numbers printed, not asserted: timing assertions flake on shared machines).
#include <chrono>
#include <cstdio>

#include <gtest/gtest.h>

#include "storage/store.h"
#include "storage/test_util.h"

namespace warren::storage {
namespace {

using testing::Msg;
using testing::OpenOrDie;
using testing::ScanAll;
using testing::TempDir;

TEST(ScanTest, OrderFromSeqAndEarlyStop) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  // Seqs out of order and across byte boundaries; neighbours on both sides.
  for (uint64_t seq : {300, 1, 256, 255, 2, 1000}) b.PutMessage(5, seq, Msg(std::to_string(seq)));
  b.PutMessage(4, 7, Msg("queue 4"));
  b.PutMessage(6, 0, Msg("queue 6"));
  ASSERT_TRUE(store->Write(std::move(b)).ok());

  auto all = ScanAll(store.get(), 5);
  std::vector<uint64_t> seqs;
  for (const auto& m : all) seqs.push_back(m.seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 255, 256, 300, 1000}));
  EXPECT_EQ(all[3].body, "256");

  auto from = ScanAll(store.get(), 5, 256);
  ASSERT_EQ(from.size(), 3u);
  EXPECT_EQ(from[0].seq, 256u);
  EXPECT_TRUE(ScanAll(store.get(), 5, 1001).empty());
  EXPECT_TRUE(ScanAll(store.get(), 7).empty());

  int visited = 0;
  ASSERT_TRUE(store->ScanQueue(5, 0, [&](const StoredMessage& m) {
    ++visited;
    return m.seq < 255;
  }).ok());
  EXPECT_EQ(visited, 3);
}

TEST(ScanTest, DeliveryStateIsMergedPerMessage) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  for (uint64_t seq = 1; seq <= 6; ++seq) b.PutMessage(1, seq, Msg("m"));
  b.PutDeliveryState(1, 2, 1, false);  // delivered once, unacked
  b.PutDeliveryState(1, 5, 1, false);
  b.PutDeliveryState(0, 5, 9, true);   // another queue's state, same seq
  b.PutDeliveryState(2, 1, 9, true);
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  WriteBatch requeue;
  requeue.PutDeliveryState(1, 5, 2, true);  // requeued and delivered again
  ASSERT_TRUE(store->Write(std::move(requeue)).ok());

  auto msgs = ScanAll(store.get(), 1);
  ASSERT_EQ(msgs.size(), 6u);
  for (const auto& m : msgs) {
    SCOPED_TRACE(m.seq);
    EXPECT_EQ(m.has_delivery_state, m.seq == 2 || m.seq == 5);
    if (m.seq == 2) {
      EXPECT_EQ(m.delivery_count, 1u);
      EXPECT_FALSE(m.redelivered);
    } else if (m.seq == 5) {
      EXPECT_EQ(m.delivery_count, 2u);
      EXPECT_TRUE(m.redelivered);
    } else {
      EXPECT_EQ(m.delivery_count, 0u);
      EXPECT_FALSE(m.redelivered);
    }
  }
  // from_seq inside the delivery states.
  auto tail = ScanAll(store.get(), 1, 5);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].delivery_count, 2u);

  // An ack of an entry without a state leaves the states of its neighbours alone.
  WriteBatch acks;
  acks.DeleteStatelessMessage(1, 1);
  acks.DeleteMessage(1, 2);
  ASSERT_TRUE(store->Write(std::move(acks)).ok());
  auto rest = ScanAll(store.get(), 1);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest[0].seq, 3u);
  EXPECT_EQ(rest[2].seq, 5u);
  EXPECT_EQ(rest[2].delivery_count, 2u);
}

double Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Times a scan from seq 0 to the first live message and through the rest.
void TimeScan(Store* store, const char* label, uint64_t from, size_t expect) {
  auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point first;
  size_t n = 0;
  ASSERT_TRUE(store->ScanQueue(1, from, [&](const StoredMessage&) {
    if (n++ == 0) first = std::chrono::steady_clock::now();
    return true;
  }).ok());
  auto end = std::chrono::steady_clock::now();
  EXPECT_EQ(n, expect);
  std::printf("[ scan     ] %-46s first message %8.3f ms, all %zu %8.3f ms\n", label,
              Millis(first - t0), n, Millis(end - t0));
}

TEST(ScanTest, HeadOfHundredThousandDeletedEntries) {
  constexpr uint64_t kDeleted = 100000, kLive = 1000;
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  for (uint64_t seq = 1; seq <= kDeleted + kLive; seq += 1000) {
    WriteBatch b;
    for (uint64_t s = seq; s < seq + 1000; ++s) {
      b.PutMessage(1, s, Msg("body of a small message"));
      if (s % 2) b.PutDeliveryState(1, s, 1, false);
    }
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  for (uint64_t seq = 1; seq <= kDeleted; seq += 1000) {
    WriteBatch b;
    for (uint64_t s = seq; s < seq + 1000; ++s) b.DeleteMessage(1, s);
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  TimeScan(store.get(), "100k deleted, all in the memtable", 0, kLive);
  TimeScan(store.get(), "same, from_seq past the deleted head", kDeleted + 1, kLive);
  ASSERT_TRUE(store->FlushForTesting().ok());
  TimeScan(store.get(), "after flush (puts and single-deletes cancel)", 0, kLive);
  // A restart: recovery replays the WAL and flushes, so the same holds after a crash.
  store.reset();
  store = OpenOrDie(dir.path());
  TimeScan(store.get(), "after reopen", 0, kLive);

  // Worst case: the puts reached a table before their deletes (a backlog that was flushed,
  // then consumed).
  for (uint64_t seq = kDeleted + kLive + 1; seq <= 2 * kDeleted + kLive; seq += 1000) {
    WriteBatch b;
    for (uint64_t s = seq; s < seq + 1000; ++s) b.PutMessage(2, s, Msg("body of a small message"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  ASSERT_TRUE(store->FlushForTesting().ok());
  for (uint64_t seq = kDeleted + kLive + 1; seq <= 2 * kDeleted + kLive; seq += 1000) {
    WriteBatch b;
    for (uint64_t s = seq; s < seq + 1000; ++s) b.DeleteMessage(2, s);
    for (uint64_t s = seq; s < seq + 10; ++s) b.PutMessage(1, s, Msg("live"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  auto time_q2 = [&](const char* label) {
    auto t0 = std::chrono::steady_clock::now();
    size_t n = 0;
    ASSERT_TRUE(store->ScanQueue(2, 0, [&](const StoredMessage&) { return ++n, true; }).ok());
    EXPECT_EQ(n, 0u);
    std::printf("[ scan     ] %-46s empty scan %8.3f ms\n", label,
                Millis(std::chrono::steady_clock::now() - t0));
  };
  time_q2("100k puts in a table, deletes in memtable");
  ASSERT_TRUE(store->FlushForTesting().ok());
  time_q2("100k puts and deletes in separate tables");
  ASSERT_TRUE(store->CompactForTesting(Family::kIndex).ok());
  time_q2("after compaction");
}

}  // namespace
}  // namespace warren::storage
