#include "server/broker/dead_letter.h"

#include <gtest/gtest.h>

#include <string>

#include "server/amqp/properties.h"
#include "server/broker/manual_timers.h"
#include "server/broker/vhost.h"

namespace warren::broker {
namespace {

using amqp::BasicProperties;
using amqp::FieldArray;
using amqp::FieldTable;
using amqp::FieldValue;
using namespace std::string_literals;

MessageRef Msg(std::string_view exchange, std::string_view key, const BasicProperties& props, std::string_view body) {
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(props, w);
  MessageRef m = Message::Create(exchange, key, raw, body.size(), nullptr);
  m->FillBody(body);
  return m;
}

BasicProperties Props(const Message& m) {
  BasicProperties p;
  EXPECT_TRUE(amqp::DecodeProperties(m.raw_properties(), &p));
  return p;
}

const FieldTable& Death(const BasicProperties& p, size_t i) {
  const FieldArray* deaths = p.headers->Find("x-death")->AsArray();
  return *(*deaths)[i].AsTable();
}

std::string Str(const FieldTable& t, std::string_view key) {
  const FieldValue* v = t.Find(key);
  return v != nullptr && v->AsString() != nullptr ? *v->AsString() : "<none>";
}

std::vector<std::string> Keys(const FieldTable& t) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : t.entries) keys.push_back(k);
  return keys;
}

TEST(DeadLetterTest, FirstDeathBuildsXDeathAndFirstDeathHeaders) {
  BasicProperties in;
  in.headers = FieldTable{{{"orig", FieldValue(int32_t{1})}}};
  in.expiration = "5000";
  in.delivery_mode = 2;
  in.correlation_id = "c";
  MessageRef original = Msg("ex", "rk", in, "body");
  MessageRef dead = MakeDeadLetter(*original, DeathReason::kExpired, "src", "dlx", nullptr, 1700000000);
  ASSERT_TRUE(dead);
  EXPECT_EQ(dead->exchange(), "dlx");
  EXPECT_EQ(dead->routing_key(), "rk");  // no override: the message's own
  EXPECT_EQ(dead->body(), "body");
  EXPECT_TRUE(dead->persistent());
  EXPECT_FALSE(dead->has_ttl());
  BasicProperties out = Props(*dead);
  EXPECT_FALSE(out.expiration);  // removed, so it cannot expire again
  EXPECT_EQ(out.correlation_id, "c");
  ASSERT_TRUE(out.headers);
  // Sorted by key, as RabbitMQ's set_table_value leaves it.
  EXPECT_EQ(Keys(*out.headers), (std::vector<std::string>{"orig", "x-death", "x-first-death-exchange",
                                                          "x-first-death-queue", "x-first-death-reason"}));
  EXPECT_EQ(Str(*out.headers, "x-first-death-reason"), "expired");
  EXPECT_EQ(Str(*out.headers, "x-first-death-queue"), "src");
  EXPECT_EQ(Str(*out.headers, "x-first-death-exchange"), "ex");
  const FieldTable& d = Death(out, 0);
  EXPECT_EQ(Keys(d), (std::vector<std::string>{"count", "reason", "queue", "time", "exchange", "routing-keys",
                                               "original-expiration"}));
  EXPECT_EQ(d.Find("count")->TypeCode(), 'l');
  EXPECT_EQ(d.Find("count")->AsInt(), 1);
  EXPECT_EQ(Str(d, "reason"), "expired");
  EXPECT_EQ(Str(d, "queue"), "src");
  EXPECT_EQ(Str(d, "exchange"), "ex");
  EXPECT_EQ(Str(d, "original-expiration"), "5000");
  EXPECT_EQ(*d.Find("time"), FieldValue(amqp::Timestamp{1700000000}));
  EXPECT_EQ(*d.Find("routing-keys"), FieldValue::Array({FieldValue("rk"s)}));
}

TEST(DeadLetterTest, RoutingKeyOverrideDropsCC) {
  BasicProperties in;
  in.headers = FieldTable{{{"CC", FieldValue::Array({FieldValue("k2"s)})}}};
  MessageRef original = Msg("", "q", in, "");
  const std::string rk = "dead";
  MessageRef dead = MakeDeadLetter(*original, DeathReason::kRejected, "q", "dlx", &rk, 1);
  EXPECT_EQ(dead->routing_key(), "dead");
  BasicProperties out = Props(*dead);
  EXPECT_EQ(out.headers->Find("CC"), nullptr);
  // The death records every key it was published with, CC included.
  EXPECT_EQ(*Death(out, 0).Find("routing-keys"), FieldValue::Array({FieldValue("q"s), FieldValue("k2"s)}));
}

TEST(DeadLetterTest, RepeatedDeathsCountAndMoveToFront) {
  MessageRef m = Msg("", "a", BasicProperties{}, "x");
  m = MakeDeadLetter(*m, DeathReason::kRejected, "a", "dlx", nullptr, 1);
  m = MakeDeadLetter(*m, DeathReason::kExpired, "b", "dlx", nullptr, 2);
  BasicProperties p = Props(*m);
  ASSERT_EQ(p.headers->Find("x-death")->AsArray()->size(), 2u);
  EXPECT_EQ(Str(Death(p, 0), "queue"), "b");
  EXPECT_EQ(Str(Death(p, 0), "exchange"), "dlx");  // republished to the DLX the first time
  EXPECT_EQ(Str(Death(p, 1), "queue"), "a");
  // Same queue and reason again: count 2, moved to the front, its table sorted.
  m = MakeDeadLetter(*m, DeathReason::kRejected, "a", "dlx", nullptr, 3);
  p = Props(*m);
  ASSERT_EQ(p.headers->Find("x-death")->AsArray()->size(), 2u);
  const FieldTable& front = Death(p, 0);
  EXPECT_EQ(Str(front, "queue"), "a");
  EXPECT_EQ(front.Find("count")->AsInt(), 2);
  EXPECT_EQ(*front.Find("time"), FieldValue(amqp::Timestamp{1}));  // the original event's
  EXPECT_EQ(Keys(front), (std::vector<std::string>{"count", "exchange", "queue", "reason", "routing-keys", "time"}));
  EXPECT_EQ(Str(Death(p, 1), "queue"), "b");
  // The first-death headers never change.
  EXPECT_EQ(Str(*p.headers, "x-first-death-queue"), "a");
  EXPECT_EQ(Str(*p.headers, "x-first-death-reason"), "rejected");
}

TEST(DeadLetterTest, MalformedPropertiesGiveNoDeadLetter) {
  MessageRef m = Message::Create("", "q", std::string_view("\x80\x00", 2), 0, nullptr);  // content-type missing
  EXPECT_FALSE(MakeDeadLetter(*m, DeathReason::kRejected, "q", "dlx", nullptr, 1));
}

FieldTable DeathsHeaders(std::vector<std::pair<std::string, std::string>> queue_reason) {
  FieldArray deaths;
  for (auto& [q, r] : queue_reason) {
    deaths.push_back(FieldValue::Table(FieldTable{{{"queue", FieldValue(q)}, {"reason", FieldValue(r)}}}));
  }
  return FieldTable{{{"x-death", FieldValue::Array(std::move(deaths))}}};
}

TEST(DeadLetterTest, CycleDetection) {
  EXPECT_FALSE(IsDeadLetterCycle(FieldTable{}, "q"));
  EXPECT_TRUE(IsDeadLetterCycle(DeathsHeaders({{"q", "expired"}}), "q"));
  EXPECT_FALSE(IsDeadLetterCycle(DeathsHeaders({{"q", "expired"}}), "other"));
  EXPECT_TRUE(IsDeadLetterCycle(DeathsHeaders({{"b", "maxlen"}, {"q", "expired"}}), "q"));
  // A rejection anywhere up to the earlier visit: not automatic, delivered.
  EXPECT_FALSE(IsDeadLetterCycle(DeathsHeaders({{"b", "rejected"}, {"q", "expired"}}), "q"));
  EXPECT_FALSE(IsDeadLetterCycle(DeathsHeaders({{"q", "rejected"}}), "q"));
  // Entries after the earlier visit do not matter.
  EXPECT_TRUE(IsDeadLetterCycle(DeathsHeaders({{"q", "expired"}, {"z", "rejected"}}), "q"));
  // Something a client put there: not automatic.
  FieldTable odd{{{"x-death", FieldValue::Array({FieldValue(int32_t{1}),
                                                 FieldValue::Table(FieldTable{{{"queue", FieldValue("q"s)},
                                                                               {"reason", FieldValue("expired"s)}}})})}}};
  EXPECT_FALSE(IsDeadLetterCycle(odd, "q"));
}

TEST(DeadLetterRouterTest, DefersRoutingToThePostedFlush) {
  ManualTimers timers;
  Vhost v("/");
  v.set_timers(&timers);
  ASSERT_TRUE(v.DeclareExchange("dlx", "fanout", false, {}));
  auto dead = v.DeclareQueue("dead", false, {}, 1);
  ASSERT_TRUE(dead);
  ASSERT_TRUE(v.BindQueue("dead", "dlx", "", {}, 1));
  MessageRef m = Msg("", "src", BasicProperties{}, "x");
  v.dead_letters().Publish(*m, DeathReason::kRejected, "src", "dlx", nullptr);
  v.dead_letters().Publish(*m, DeathReason::kRejected, "src", "missing", nullptr);
  EXPECT_EQ(dead->queue->ready_count(), 0u);
  EXPECT_EQ(timers.pending_posts(), 1u);  // one flush for the batch
  timers.RunPosted();
  EXPECT_EQ(v.dead_letters().pending(), 0u);
  ASSERT_EQ(dead->queue->ready_count(), 1u);  // the one to the missing exchange was dropped
  auto got = dead->queue->Get(true);
  EXPECT_EQ(got->msg->exchange(), "dlx");
  EXPECT_EQ(got->msg->routing_key(), "src");
}

TEST(DeadLetterRouterTest, AutomaticCycleIsDropped) {
  ManualTimers timers;
  Vhost v("/");
  v.set_timers(&timers);
  auto q = v.DeclareQueue("q", false, {}, 1);
  ASSERT_TRUE(q);
  MessageRef m = Msg("", "q", BasicProperties{}, "x");
  // Expired from q, dead-lettered through the default exchange back to q: dropped.
  v.dead_letters().Publish(*m, DeathReason::kExpired, "q", "", nullptr);
  timers.RunPosted();
  EXPECT_EQ(q->queue->ready_count(), 0u);
  // Rejected: delivered again.
  v.dead_letters().Publish(*m, DeathReason::kRejected, "q", "", nullptr);
  timers.RunPosted();
  EXPECT_EQ(q->queue->ready_count(), 1u);
}

}  // namespace
}  // namespace warren::broker
