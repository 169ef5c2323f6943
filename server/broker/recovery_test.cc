// RecoverBroker over a real store holding bad records: each is quarantined, the rest recovers.
#include "server/broker/recovery.h"
#include "server/journal/store_journal.h"

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <vector>

#include "proto/warren.pb.h"
#include "server/amqp/properties.h"
#include "storage/test_util.h"

namespace warren::broker {
namespace {

TEST(RecoveryQuarantineTest, BadDefinitionsAndMessagesDoNotStopTheStart) {
  storage::testing::TempDir dir;
  std::mutex mu;
  std::vector<std::function<void()>> posted;
  auto post = [&](std::function<void()> fn) {
    std::lock_guard lock(mu);
    posted.push_back(std::move(fn));
  };
  {
    auto store = storage::testing::OpenOrDie(dir.path());
    storage::WriteBatch b;
    proto::VhostRecord vhost;
    vhost.set_name("/");
    b.PutVhost(vhost);
    proto::QueueRecord good;
    good.set_vhost("/");
    good.set_name("good");
    good.set_id(1);
    b.PutQueue(good);
    // Arguments the codec refuses (tables nested beyond its limit), as an older build could store:
    // each level is a table whose one entry "k" is an 'F' value holding the level below.
    std::string deep;
    for (int i = 0; i <= amqp::kMaxFieldNesting; ++i) {
      std::string entries;
      if (!deep.empty()) entries = std::string("\x01kF") + deep;
      std::string level;
      amqp::ByteWriter w(level);
      w.WriteU32(static_cast<uint32_t>(entries.size()));
      level += entries;
      deep = std::move(level);
    }
    proto::QueueRecord bad;
    bad.set_vhost("/");
    bad.set_name("too-deep");
    bad.set_id(2);
    bad.set_arguments(deep);
    b.PutQueue(bad);
    // A record that is not a protobuf at all, and a binding to a queue that does not exist.
    b.PutRaw(storage::Family::kDefinitions, storage::ExchangeKey("/", "garbled"), "\xff\xff\xff");
    proto::BindingRecord dangling;
    dangling.set_vhost("/");
    dangling.set_source("amq.direct");
    dangling.set_destination("missing");
    b.PutBinding(dangling);
    // Messages: one fine (persistent: transient ones are dropped at recovery anyway), one whose
    // index value is garbage.
    amqp::BasicProperties persistent;
    persistent.delivery_mode = 2;
    std::string props;
    amqp::ByteWriter pw(props);
    amqp::EncodeProperties(persistent, pw);
    b.PutMessage(1, 1, storage::testing::Msg("kept", "good", "", props));
    b.PutRaw(storage::Family::kIndex, storage::MessageKey(1, 2), "\x09garbage");
    ASSERT_TRUE(store->Write(std::move(b)).ok());

    Broker broker;
    journal::StoreJournal journal(*store);
    Persister persister(&journal, post);
    RecoveryStats stats;
    storage::Status s = RecoverBroker(*store, broker, persister, {"admin", "pw"}, &stats);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(stats.quarantined, 4u);
    EXPECT_EQ(stats.queues, 1u);
    Vhost* v = broker.FindVhost("/");
    ASSERT_NE(v, nullptr);
    ASSERT_TRUE(v->queues().contains("good"));
    EXPECT_FALSE(v->queues().contains("too-deep"));
    EXPECT_EQ(v->queues().at("good")->ready_count(), 1u);
    EXPECT_EQ(stats.users, 0u) << "a store without users still gets the default user";
    EXPECT_NE(broker.FindUser("admin"), nullptr);

    std::vector<storage::QuarantinedRecord> q;
    ASSERT_TRUE(store->ListQuarantined(&q).ok());
    ASSERT_EQ(q.size(), 4u);
    std::vector<std::string> reasons;
    for (const auto& r : q) reasons.push_back(r.reason);
    auto has = [&](std::string_view part) {
      for (const auto& r : reasons) {
        if (r.find(part) != std::string::npos) return true;
      }
      return false;
    };
    EXPECT_TRUE(has("queue record 'too-deep'"));
    EXPECT_TRUE(has("does not parse"));
    EXPECT_TRUE(has("binding from 'amq.direct' to 'missing'"));
    EXPECT_TRUE(has("queue 1 seq 2"));
    store.reset();
  }
  // The next start sees none of them again.
  auto store = storage::testing::OpenOrDie(dir.path());
  Broker broker;
  journal::StoreJournal journal(*store);
  Persister persister(&journal, post);
  RecoveryStats stats;
  ASSERT_TRUE(RecoverBroker(*store, broker, persister, {"admin", "pw"}, &stats).ok());
  EXPECT_EQ(stats.quarantined, 0u);
  EXPECT_EQ(stats.queues, 1u);
  EXPECT_EQ(stats.messages, 1u);
  store.reset();
}

}  // namespace
}  // namespace warren::broker
