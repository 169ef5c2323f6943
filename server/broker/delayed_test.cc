// x-delayed-message exchanges: reading x-delay, the declare rule, due-time order with one timer,
// the bounded window refilled from a real store, recovery and deleting the exchange.
#include "server/broker/delayed.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/amqp/properties.h"
#include "server/broker/broker.h"
#include "server/broker/manual_timers.h"
#include "server/broker/publish.h"
#include "server/broker/store_testing.h"
#include "server/broker/vhost.h"
#include "server/journal/store_journal.h"
#include "storage/test_util.h"

namespace warren::broker {
namespace {

std::string Props(std::optional<amqp::FieldValue> delay) {
  amqp::BasicProperties p;
  if (delay) p.headers = amqp::FieldTable{{{"x-delay", *delay}}};
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(p, w);
  return raw;
}

MessageRef Msg(Broker& broker, std::string_view routing_key, std::string_view body,
               std::optional<amqp::FieldValue> delay) {
  MessageRef m = Message::Create("d", routing_key, Props(std::move(delay)), body.size(), &broker.memory());
  m->FillBody(body);
  return m;
}

TEST(DelayedTest, DelayIsReadAsThePluginReadsIt) {
  auto of = [](std::optional<amqp::FieldValue> v) { return DelayOf(Props(std::move(v))); };
  EXPECT_EQ(of(amqp::FieldValue(int32_t{1500})), 1500);
  EXPECT_EQ(of(amqp::FieldValue(int64_t{kMaxDelayMillis})), kMaxDelayMillis);
  EXPECT_EQ(of(amqp::FieldValue(uint8_t{7})), 7);
  EXPECT_EQ(of(amqp::FieldValue(std::string("2500"))), 2500);
  EXPECT_EQ(of(amqp::FieldValue(1500.9)), 1500);
  EXPECT_EQ(of(amqp::FieldValue(12.5f)), 12);
  EXPECT_FALSE(of(std::nullopt));
  EXPECT_FALSE(of(amqp::FieldValue(int32_t{0})));
  EXPECT_FALSE(of(amqp::FieldValue(int32_t{-5})));
  EXPECT_FALSE(of(amqp::FieldValue(int64_t{kMaxDelayMillis + 1})));
  EXPECT_FALSE(of(amqp::FieldValue(std::string("soon"))));
  EXPECT_FALSE(of(amqp::FieldValue(std::string(""))));
  EXPECT_FALSE(of(amqp::FieldValue(true)));
}

TEST(DelayedTest, DeclareNeedsAnExistingDelayedType) {
  amqp::FieldTable none;
  auto missing = ResolveExchangeType("x-delayed-message", none);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, 406);
  EXPECT_EQ(missing.error().text, "Invalid argument, 'x-delayed-type' must be an existing exchange type");
  auto not_string = ResolveExchangeType("x-delayed-message", amqp::FieldTable{{{"x-delayed-type", int32_t{1}}}});
  ASSERT_FALSE(not_string);
  EXPECT_EQ(not_string.error().code, 406);
  auto itself = ResolveExchangeType("x-delayed-message",
                                    amqp::FieldTable{{{"x-delayed-type", std::string("x-delayed-message")}}});
  ASSERT_FALSE(itself);
  EXPECT_EQ(itself.error().text, "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'");
  auto unknown = ResolveExchangeType("x-delayed-message", amqp::FieldTable{{{"x-delayed-type", std::string("x")}}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, 503);
  EXPECT_EQ(unknown.error().text, "unknown exchange type 'x'");
  auto topic = ResolveExchangeType("x-delayed-message", amqp::FieldTable{{{"x-delayed-type", std::string("topic")}}});
  ASSERT_TRUE(topic);
  EXPECT_TRUE(topic->delayed);
  EXPECT_EQ(topic->routing, ExchangeType::kTopic);
  auto plain = ResolveExchangeType("fanout", none);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->delayed);
}

ExchangeOptions DelayedOptions(std::string_view type, bool durable = false) {
  ExchangeOptions o;
  o.durable = durable;
  o.arguments.entries.emplace_back("x-delayed-type", std::string(type));
  return o;
}

// A vhost with a delayed direct exchange "d" bound to queue "q" with key "k".
struct Rig {
  explicit Rig(Broker& b, bool durable = false) : broker(b) {
    Vhost& v = *broker.FindVhost("/");
    auto ex = v.DeclareExchange("d", "x-delayed-message", false, DelayedOptions("direct", durable));
    EXPECT_TRUE(ex);
    exchange = *ex;
    QueueOptions qo;
    qo.durable = durable;
    auto q = v.DeclareQueue("q", false, qo, 1);
    EXPECT_TRUE(q);
    queue = q->queue.get();
    EXPECT_TRUE(v.BindQueue("q", "d", "k", {}, 1));
  }
  PublishOutcome Publish(std::string_view body, std::optional<amqp::FieldValue> delay, std::string_view key = "k") {
    return warren::broker::Publish(broker, *broker.FindVhost("/"), *exchange,
                                   Msg(broker, key, body, std::move(delay)), false, scratch);
  }
  std::vector<std::string> Drain() {
    std::vector<std::string> out;
    while (auto m = queue->Get(true)) out.emplace_back(m->msg->body());
    return out;
  }
  Broker& broker;
  Exchange* exchange = nullptr;
  Queue* queue = nullptr;
  std::vector<Queue*> scratch;
};

TEST(DelayedTest, FiresInDueOrderWithTiesInPublishOrder) {
  ManualTimers timers;
  Broker broker;
  broker.set_timers(&timers);
  Rig s(broker);
  EXPECT_FALSE(s.Publish("c", amqp::FieldValue(int32_t{300})).routed);
  s.Publish("a1", amqp::FieldValue(int32_t{100}));
  s.Publish("b", amqp::FieldValue(std::string("200")));
  s.Publish("a2", amqp::FieldValue(int32_t{100}));
  EXPECT_TRUE(s.Publish("now", amqp::FieldValue(int32_t{0})).routed);
  EXPECT_EQ(s.Drain(), std::vector<std::string>{"now"});
  EXPECT_EQ(s.exchange->delayed()->pending(), 4u);
  // The clock reads whole milliseconds: the publish happened somewhere in its first one, so a
  // message is due one millisecond after its delay counted from that reading, never early.
  timers.Advance(100);
  EXPECT_TRUE(s.Drain().empty());
  timers.Advance(1);
  EXPECT_EQ(s.Drain(), (std::vector<std::string>{"a1", "a2"}));
  timers.Advance(99);
  EXPECT_TRUE(s.Drain().empty());
  timers.Advance(1);
  EXPECT_EQ(s.Drain(), std::vector<std::string>{"b"});
  timers.Advance(100);
  EXPECT_EQ(s.Drain(), std::vector<std::string>{"c"});
  EXPECT_EQ(s.exchange->delayed()->pending(), 0u);
}

TEST(DelayedTest, RoutesWithTheBindingsAtDueTimeAndSwapsTheHeader) {
  ManualTimers timers;
  Broker broker;
  broker.set_timers(&timers);
  Rig s(broker);
  Vhost& v = *broker.FindVhost("/");
  s.Publish("later", amqp::FieldValue(int32_t{50}), "k2");
  ASSERT_TRUE(v.BindQueue("q", "d", "k2", {}, 1));  // bound after the publish, before it is due
  timers.Advance(51);
  auto m = s.queue->Get(true);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->msg->body(), "later");
  std::optional<amqp::FieldTable> headers;
  ASSERT_TRUE(amqp::PeekHeaders(m->msg->raw_properties(), &headers) && headers);
  const amqp::FieldValue* delay = headers->Find("x-delay");
  ASSERT_NE(delay, nullptr);
  EXPECT_EQ(delay->TypeCode(), 'I');
  EXPECT_EQ(delay->AsInt(), -50);
}

// Everything below runs against a real store.
struct StoreEnv {
  storage::testing::TempDir dir;
  testing::Loop loop;
  std::unique_ptr<storage::Store> store = storage::testing::OpenOrDie(dir.path());
  ManualTimers timers;
  Broker broker;
  journal::StoreJournal journal{*store};
  Persister persister{&journal, loop.post()};
  StoreEnv() {
    broker.set_timers(&timers);
    broker.set_persister(&persister);
  }
  void Settle() { testing::SettleStore(persister, loop); }
};

TEST(DelayedTest, KeepsABoundedWindowAndRefillsItFromTheStore) {
  StoreEnv env;
  Rig s(env.broker);
  constexpr int kMessages = 10000;
  std::mt19937 rng(7);
  std::vector<std::pair<int, int>> expected;  // (delay, publish index)
  for (int i = 0; i < kMessages; ++i) {
    const int delay = 1 + static_cast<int>(rng() % 5000);
    EXPECT_TRUE(s.Publish(std::to_string(i), amqp::FieldValue(int32_t{delay})).stored);
    expected.emplace_back(delay, i);
    if (i % 1000 == 0) env.Settle();
  }
  env.Settle();
  DelayedSchedule& d = *s.exchange->delayed();
  EXPECT_EQ(d.pending(), static_cast<uint64_t>(kMessages));
  EXPECT_LE(d.window_size(), DelayedSchedule::kWindowMessages);
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> got;
  for (int t = 0; t < 6000 && got.size() < static_cast<size_t>(kMessages); t += 10) {
    env.timers.Advance(10);
    env.Settle();
    EXPECT_LE(d.window_size(), DelayedSchedule::kWindowMessages);
    for (std::string& b : s.Drain()) got.push_back(std::move(b));
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  // Due-time order (each 10 ms step may deliver a few due together, so compare the delays).
  std::vector<int> delay_of(kMessages);
  for (auto [delay, i] : expected) delay_of[i] = delay;
  for (size_t i = 1; i < got.size(); ++i) {
    ASSERT_LE(delay_of[std::stoi(got[i - 1])], delay_of[std::stoi(got[i])]) << i;
  }
  EXPECT_EQ(d.pending(), 0u);
  env.Settle();
  size_t left = 0;
  ASSERT_TRUE(env.store
                  ->ScanDelayed(storage::kDelayedPrefix, storage::DelayedRangeEnd(storage::kDelayedPrefix),
                                [&](std::string_view, const storage::MessageView&) { return ++left, true; })
                  .ok());
  EXPECT_EQ(left, 0u);
}

TEST(DelayedTest, PublishesDuringARefillAreNotLost) {
  StoreEnv env;
  Rig s(env.broker);
  // Fill past the window with late messages, then keep publishing early and late ones while the
  // window drains and refills.
  int published = 0;
  for (; published < 6000; ++published) s.Publish("x", amqp::FieldValue(int32_t{1000 + published % 500}));
  env.Settle();
  size_t got = 0;
  for (int step = 0; step < 400; ++step) {
    s.Publish("y", amqp::FieldValue(int32_t{1 + step % 7 * 300}));
    ++published;
    env.timers.Advance(10);
    if (step % 3 == 0) env.Settle();
    got += s.Drain().size();
  }
  for (int step = 0; step < 300; ++step) {
    env.timers.Advance(10);
    env.Settle();
    got += s.Drain().size();
  }
  EXPECT_EQ(got, static_cast<size_t>(published));
  EXPECT_EQ(s.exchange->delayed()->pending(), 0u);
}

TEST(DelayedTest, RecoveryLoadsTheFirstWindowAndCountsTheRest) {
  storage::testing::TempDir dir;
  {
    testing::BrokerRun run(dir.path());
    ManualTimers timers;
    run.broker.set_timers(&timers);
    Rig s(run.broker, /*durable=*/true);
    for (int i = 0; i < 5000; ++i) s.Publish(std::to_string(i), amqp::FieldValue(int32_t{1000 + i}));
    // A non-durable delayed exchange's messages do not outlive the server.
    Vhost& v = *run.broker.FindVhost("/");
    auto t = v.DeclareExchange("t", "x-delayed-message", false, DelayedOptions("fanout"));
    ASSERT_TRUE(t);
    std::vector<Queue*> scratch;
    Publish(run.broker, v, **t, Msg(run.broker, "", "gone", amqp::FieldValue(int32_t{10})), false, scratch);
    run.Settle();
  }
  testing::BrokerRun run(dir.path());
  EXPECT_EQ(run.stats.delayed, 5000u);
  Vhost& v = *run.broker.FindVhost("/");
  Exchange& d = *v.exchanges().at("d");
  ASSERT_NE(d.delayed(), nullptr);
  EXPECT_EQ(d.type_name(), "x-delayed-message");
  EXPECT_EQ(d.delayed()->pending(), 5000u);
  EXPECT_LE(d.delayed()->window_size(), DelayedSchedule::kWindowMessages);
  EXPECT_FALSE(v.exchanges().contains("t"));
  run.Settle();
  size_t stored = 0;
  ASSERT_TRUE(run.store
                  ->ScanDelayed(storage::kDelayedPrefix, storage::DelayedRangeEnd(storage::kDelayedPrefix),
                                [&](std::string_view, const storage::MessageView&) { return ++stored, true; })
                  .ok());
  EXPECT_EQ(stored, 5000u);  // the transient exchange's one is gone
}

// A broker recovered from `dir` with manual timers in place before recovery arms them.
struct TimedRun {
  explicit TimedRun(const std::string& dir) : store(storage::testing::OpenOrDie(dir)) {
    broker.set_timers(&timers);
    EXPECT_TRUE(RecoverBroker(*store, broker, persister, {"guest", "guest"}, &stats).ok());
  }
  void Settle() { testing::SettleStore(persister, loop); }
  testing::Loop loop;
  std::unique_ptr<storage::Store> store;
  ManualTimers timers;
  Broker broker;
  journal::StoreJournal journal{*store};
  Persister persister{&journal, loop.post()};
  RecoveryStats stats;
};

TEST(DelayedTest, AfterARestartOverdueMessagesFireInOrderAndTheRestRefills) {
  storage::testing::TempDir dir;
  constexpr int kMessages = 6000;
  {
    TimedRun run(dir.path());
    Rig s(run.broker, /*durable=*/true);
    for (int i = 0; i < kMessages; ++i) s.Publish(std::to_string(i), amqp::FieldValue(int32_t{100 + i / 10}));
    run.Settle();
  }
  TimedRun run(dir.path());
  EXPECT_EQ(run.stats.delayed, static_cast<uint64_t>(kMessages));
  Vhost& v = *run.broker.FindVhost("/");
  Queue& q = *v.queues().at("q");
  DelayedSchedule& d = *v.exchanges().at("d")->delayed();
  std::vector<std::string> got;
  // The restarted clock starts where the first one did: the first 100 ms make the first ones due.
  for (int step = 0; step < 200 && got.size() < static_cast<size_t>(kMessages); ++step) {
    run.timers.Advance(10);
    run.Settle();
    EXPECT_LE(d.window_size(), DelayedSchedule::kWindowMessages);
    while (auto m = q.Get(true)) got.emplace_back(m->msg->body());
  }
  ASSERT_EQ(got.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(got[i], std::to_string(i)) << i;
  EXPECT_EQ(d.pending(), 0u);
}

TEST(DelayedTest, DeletingTheExchangeDropsItsPendingMessages) {
  StoreEnv env;
  Rig s(env.broker);
  for (int i = 0; i < 5000; ++i) s.Publish("x", amqp::FieldValue(int32_t{100}));
  env.Settle();
  ASSERT_TRUE(env.broker.FindVhost("/")->DeleteExchange("d", false));
  env.Settle();
  size_t left = 0;
  ASSERT_TRUE(env.store
                  ->ScanDelayed(storage::kDelayedPrefix, storage::DelayedRangeEnd(storage::kDelayedPrefix),
                                [&](std::string_view, const storage::MessageView&) { return ++left, true; })
                  .ok());
  EXPECT_EQ(left, 0u);
  env.timers.Advance(200);
  env.Settle();
  EXPECT_EQ(s.queue->ready_count(), 0u);
}

}  // namespace
}  // namespace warren::broker
