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

TEST(RecoveryTest, KeepsDeliveryHorizonsAndQuarantinesAMalformedOne) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutMessage(1, 5, Msg("m"));
    b.PutDeliveryHorizon(1, 1029);
    b.PutDeliveryHorizon(2, 7);  // a queue with no message left
    b.PutRaw(Family::kDelivery, MessageKey(3, kHorizonSeq), "garbled");
    b.PutDeliveryHorizon(4, 9);
    ASSERT_TRUE(store->Write(std::move(b)).ok());
    WriteBatch drop;
    drop.DeleteQueueMessages(4);  // a deleted queue takes its horizon along
    ASSERT_TRUE(store->Write(std::move(drop)).ok());
  }
  auto store = OpenOrDie(dir.path());
  RecoveryInfo info;
  ASSERT_TRUE(store->Recover(&info).ok());
  EXPECT_EQ(info.orphan_delivery_states_removed, 0u);
  ASSERT_EQ(info.delivery_horizons.size(), 2u);
  EXPECT_EQ(info.delivery_horizons[1], 1029u);
  EXPECT_EQ(info.delivery_horizons[2], 7u);
  ASSERT_EQ(info.quarantined.size(), 1u);
  EXPECT_EQ(info.quarantined[0].family, Family::kDelivery);
  ASSERT_EQ(ScanAll(store.get(), 1).size(), 1u);  // a horizon is not a message
  EXPECT_FALSE(ScanAll(store.get(), 1)[0].redelivered);
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

TEST(RecoveryTest, EntryReferencingMissingBodyIsQuarantined) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutMessageRef(1, 1, 77);
  b.PutMessage(1, 2, Msg("fine"));
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  RecoveryInfo info;
  Status s = store->Recover(&info);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(info.quarantined.size(), 1u);
  EXPECT_NE(info.quarantined[0].reason.find("body 77"), std::string::npos) << info.quarantined[0].reason;
  EXPECT_EQ(info.messages, 1u);
  EXPECT_TRUE(info.shared_body_refs.empty());
  auto left = ScanAll(store.get(), 1);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].body, "fine");
  std::vector<QuarantinedRecord> q;
  ASSERT_TRUE(store->ListQuarantined(&q).ok());
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].family, Family::kIndex);
  EXPECT_EQ(q[0].key, MessageKey(1, 1));
  EXPECT_EQ(q[0].value, EncodeBodyRef(77));
}

TEST(RecoveryTest, GarbageRecordsAreQuarantinedNotFatal) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutRaw(Family::kIndex, MessageKey(3, 4), "\x09garbage");
    b.PutMessage(3, 5, Msg("kept"));
    b.PutRaw(Family::kDelivery, MessageKey(3, 5), "\x07");
    b.PutBody(9, Msg("shared"));
    b.PutRaw(Family::kBodies, BodyKey(10), "\x01" "bad");
    b.PutMessageRef(3, 6, 9);
    b.PutMessageRef(3, 7, 10);
    ASSERT_TRUE(store->Write(std::move(b)).ok());
    RecoveryInfo info;
    Status s = store->Recover(&info);
    ASSERT_TRUE(s.ok()) << s.ToString();
    // The index entry, the delivery state, the body and the entry pointing at that body.
    ASSERT_EQ(info.quarantined.size(), 4u);
    EXPECT_NE(info.quarantined[0].reason.find("queue 3 seq 4"), std::string::npos) << info.quarantined[0].reason;
  }
  auto store = OpenOrDie(dir.path());
  RecoveryInfo again;
  ASSERT_TRUE(store->Recover(&again).ok());
  EXPECT_TRUE(again.quarantined.empty()) << "a quarantined record is not read again";
  auto left = ScanAll(store.get(), 3);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].body, "kept");
  EXPECT_EQ(left[1].body, "shared");
  std::vector<QuarantinedRecord> q;
  ASSERT_TRUE(store->ListQuarantined(&q).ok());
  EXPECT_EQ(q.size(), 4u);
}

TEST(RecoveryTest, QuarantineMovesADefinition) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutRaw(Family::kDefinitions, QueueKey("/", "q"), "\xff\xff not a record");
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  std::vector<proto::QueueRecord> queues;
  EXPECT_TRUE(store->ListQueues(&queues).IsCorruption());
  std::vector<QuarantinedRecord> bad;
  ASSERT_TRUE(store->ListQueues(&queues, &bad).ok());
  EXPECT_TRUE(queues.empty());
  ASSERT_EQ(bad.size(), 1u);
  ASSERT_TRUE(store->Quarantine(Family::kDefinitions, bad[0].key, bad[0].reason).ok());
  ASSERT_TRUE(store->ListQueues(&queues).ok());
  std::vector<QuarantinedRecord> q;
  ASSERT_TRUE(store->ListQuarantined(&q).ok());
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].family, Family::kDefinitions);
  EXPECT_EQ(q[0].key, QueueKey("/", "q"));
  EXPECT_NE(q[0].reason.find("does not parse"), std::string::npos);
  EXPECT_TRUE(store->Quarantine(Family::kDefinitions, "nothing", "x").IsNotFound());
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
