// Store::Recover: orphan bodies and delivery states, shared body reference counts.
#include <gtest/gtest.h>

#include "storage/store.h"
#include "storage/test_util.h"

namespace warren::storage {
namespace {

using testing::Msg;
using testing::OpenOrDie;
using testing::ScanAll;
using testing::TempDir;

uint64_t CountKeys(Store* store, Family f) {
  uint64_t n = 0;
  EXPECT_TRUE(store->ForEach(f, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  }).ok());
  return n;
}

TEST(RecoveryTest, RemovesOrphansAndCountsSharedReferences) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutBody(10, Msg("fanned out"));
    for (uint64_t q = 1; q <= 3; ++q) b.PutMessageRef(q, 1, 10);
    b.PutBody(11, Msg("to two"));
    b.PutMessageRef(1, 2, 11);
    b.PutMessageRef(2, 2, 11);
    b.PutBody(12, Msg("orphan: its acks went through, the body delete did not"));
    b.PutBody(40, Msg("another orphan, highest id"));
    b.PutMessage(1, 3, Msg("inline"));
    b.PutDeliveryState(1, 3, 2, true);
    b.PutDeliveryState(2, 9, 1, false);  // orphan: no index entry
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  {
    auto store = OpenOrDie(dir.path());
    RecoveryInfo info;
    Status s = store->Recover(&info);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(info.messages, 6u);
    EXPECT_EQ(info.max_body_id, 40u);
    EXPECT_EQ(info.orphan_bodies_removed, 2u);
    EXPECT_EQ(info.orphan_delivery_states_removed, 1u);
    ASSERT_EQ(info.shared_body_refs.size(), 2u);
    EXPECT_EQ(info.shared_body_refs[10], 3u);
    EXPECT_EQ(info.shared_body_refs[11], 2u);
    EXPECT_EQ(CountKeys(store.get(), Family::kBodies), 2u);
  }
  auto store = OpenOrDie(dir.path());
  RecoveryInfo again;
  ASSERT_TRUE(store->Recover(&again).ok());
  EXPECT_EQ(again.orphan_bodies_removed, 0u);
  EXPECT_EQ(again.orphan_delivery_states_removed, 0u);
  EXPECT_EQ(again.max_body_id, 11u);
  auto q1 = ScanAll(store.get(), 1);
  ASSERT_EQ(q1.size(), 3u);
  EXPECT_EQ(q1[0].body, "fanned out");
  EXPECT_EQ(q1[2].delivery_count, 2u);
}

TEST(RecoveryTest, LastReferenceAckedThenBodyDeleted) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutBody(1, Msg("x"));
  b.PutMessageRef(1, 1, 1);
  b.PutMessageRef(2, 1, 1);
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  WriteBatch ack1;
  ack1.DeleteMessage(1, 1);
  ASSERT_TRUE(store->Write(std::move(ack1)).ok());
  RecoveryInfo info;
  ASSERT_TRUE(store->Recover(&info).ok());
  EXPECT_EQ(info.shared_body_refs[1], 1u);
  WriteBatch ack2;
  ack2.DeleteMessage(2, 1);
  ack2.DeleteBody(1);
  ASSERT_TRUE(store->Write(std::move(ack2)).ok());
  ASSERT_TRUE(store->Recover(&info).ok());
  EXPECT_TRUE(info.shared_body_refs.empty());
  EXPECT_EQ(info.messages, 0u);
  EXPECT_EQ(info.orphan_bodies_removed, 0u);
}

TEST(RecoveryTest, MissingBodyIsCorruption) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutMessageRef(1, 1, 77);
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  RecoveryInfo info;
  Status s = store->Recover(&info);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("77"), std::string::npos) << s.ToString();
  s = store->ScanQueue(1, 0, [](const StoredMessage&) { return true; });
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(RecoveryTest, GarbageIndexEntryIsCorruption) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutRaw(Family::kIndex, MessageKey(3, 4), "\x09garbage");
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  RecoveryInfo info;
  Status s = store->Recover(&info);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("queue 3 seq 4"), std::string::npos) << s.ToString();
}

TEST(RecoveryTest, ReadOnlyRecoverCountsWithoutRemoving) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutBody(5, Msg("orphan"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  StoreOptions o;
  o.dir = dir.path();
  o.read_only = true;
  auto ro = OpenOrDie(o);
  RecoveryInfo info;
  Status s = ro->Recover(&info);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(info.orphan_bodies_removed, 1u);  // would remove
  EXPECT_EQ(CountKeys(ro.get(), Family::kBodies), 1u);
}

}  // namespace
}  // namespace warren::storage
