#include "server/broker/exchange.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "server/broker/indexed_set.h"
#include "server/broker/queue.h"
#include "server/broker/vhost.h"

namespace warren::broker {
namespace {

MessageRef Msg(std::string_view exchange, std::string_view key) {
  return Message::Create(exchange, key, std::string_view("\x00\x00", 2), 0, nullptr);
}

std::vector<std::string> RoutedNames(Vhost& v, std::string_view exchange, std::string_view key) {
  std::vector<Queue*> queues;
  auto ex = v.FindExchange(exchange);
  EXPECT_TRUE(ex.has_value());
  v.Route(**ex, *Msg(exchange, key), queues);
  std::vector<std::string> names;
  for (Queue* q : queues) names.push_back(q->name());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(VhostTest, HasStandardExchanges) {
  Vhost v("/");
  for (const char* name : {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"}) {
    EXPECT_TRUE(v.FindExchange(name).has_value()) << name;
  }
}

TEST(VhostTest, DefaultExchangeRoutesByQueueName) {
  Vhost v("/");
  ASSERT_TRUE(v.DeclareQueue("a", false, {}, 1));
  EXPECT_EQ(RoutedNames(v, "", "a"), std::vector<std::string>{"a"});
  EXPECT_TRUE(RoutedNames(v, "", "b").empty());
  EXPECT_EQ(v.BindQueue("a", "", "x", {}, 1).error().code, amqp::reply::kAccessRefused);
  EXPECT_EQ(v.DeleteExchange("", false).error().code, amqp::reply::kAccessRefused);
}

TEST(VhostTest, DirectFanoutTopicRouting) {
  Vhost v("/");
  for (const char* q : {"q1", "q2", "q3"}) ASSERT_TRUE(v.DeclareQueue(q, false, {}, 1));
  ASSERT_TRUE(v.BindQueue("q1", "amq.direct", "k", {}, 1));
  ASSERT_TRUE(v.BindQueue("q2", "amq.direct", "k", {}, 1));
  ASSERT_TRUE(v.BindQueue("q3", "amq.topic", "a.*.c", {}, 1));
  ASSERT_TRUE(v.BindQueue("q1", "amq.fanout", "", {}, 1));
  EXPECT_EQ(RoutedNames(v, "amq.direct", "k"), (std::vector<std::string>{"q1", "q2"}));
  EXPECT_TRUE(RoutedNames(v, "amq.direct", "other").empty());
  EXPECT_EQ(RoutedNames(v, "amq.topic", "a.b.c"), std::vector<std::string>{"q3"});
  EXPECT_EQ(RoutedNames(v, "amq.fanout", "whatever"), std::vector<std::string>{"q1"});
}

TEST(VhostTest, QueueReachedOnceThroughSeveralBindings) {
  Vhost v("/");
  ASSERT_TRUE(v.DeclareQueue("q", false, {}, 1));
  ASSERT_TRUE(v.BindQueue("q", "amq.topic", "a.*", {}, 1));
  ASSERT_TRUE(v.BindQueue("q", "amq.topic", "#", {}, 1));
  EXPECT_EQ(RoutedNames(v, "amq.topic", "a.b"), std::vector<std::string>{"q"});
}

TEST(VhostTest, ExchangeToExchangeBindingsWithCycle) {
  Vhost v("/");
  ASSERT_TRUE(v.DeclareExchange("x1", "fanout", false, {}));
  ASSERT_TRUE(v.DeclareExchange("x2", "fanout", false, {}));
  ASSERT_TRUE(v.DeclareQueue("q", false, {}, 1));
  ASSERT_TRUE(v.BindExchange("x2", "x1", "", {}));
  ASSERT_TRUE(v.BindExchange("x1", "x2", "", {}));  // a cycle must not loop
  ASSERT_TRUE(v.BindQueue("q", "x2", "", {}, 1));
  EXPECT_EQ(RoutedNames(v, "x1", "k"), std::vector<std::string>{"q"});
}

TEST(VhostTest, EachRouteCountsItsOwnVisits) {
  // Diamond x1 -> {x2, x3} -> q, plus x1 -> q directly and an x3 -> x1 cycle: q gets one copy per
  // publish, and every publish reaches it again (the visit marks of one pass do not leak into the
  // next).
  Vhost v("/");
  for (const char* x : {"x1", "x2", "x3"}) ASSERT_TRUE(v.DeclareExchange(x, "fanout", false, {}));
  ASSERT_TRUE(v.DeclareQueue("q", false, {}, 1));
  ASSERT_TRUE(v.DeclareQueue("r", false, {}, 1));
  ASSERT_TRUE(v.BindExchange("x2", "x1", "", {}));
  ASSERT_TRUE(v.BindExchange("x3", "x1", "", {}));
  ASSERT_TRUE(v.BindExchange("x1", "x3", "", {}));
  ASSERT_TRUE(v.BindQueue("q", "x2", "", {}, 1));
  ASSERT_TRUE(v.BindQueue("q", "x3", "", {}, 1));
  ASSERT_TRUE(v.BindQueue("q", "x1", "", {}, 1));
  ASSERT_TRUE(v.BindQueue("r", "x3", "", {}, 1));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(RoutedNames(v, "x1", "k"), (std::vector<std::string>{"q", "r"}));
    EXPECT_EQ(RoutedNames(v, "x3", "k"), (std::vector<std::string>{"q", "r"}));
  }
}

TEST(VhostTest, AlternateExchangeAlsoBoundIsVisitedOnce) {
  Vhost v("/");
  ExchangeOptions with_ae;
  with_ae.arguments.entries.emplace_back("alternate-exchange", amqp::FieldValue(std::string("ae")));
  ASSERT_TRUE(v.DeclareExchange("ae", "fanout", false, {}));
  ASSERT_TRUE(v.DeclareExchange("x", "direct", false, with_ae));
  ASSERT_TRUE(v.DeclareQueue("q", false, {}, 1));
  ASSERT_TRUE(v.BindQueue("q", "ae", "", {}, 1));
  ASSERT_TRUE(v.BindExchange("ae", "x", "k", {}));
  EXPECT_EQ(RoutedNames(v, "x", "k"), std::vector<std::string>{"q"});      // by the binding
  EXPECT_EQ(RoutedNames(v, "x", "other"), std::vector<std::string>{"q"});  // by the alternate
}

TEST(VhostTest, ManyQueuesOnOneFanout) {
  Vhost v("/");
  constexpr int kQueues = 50000;
  for (int i = 0; i < kQueues; ++i) {
    const std::string name = "q" + std::to_string(i);
    ASSERT_TRUE(v.DeclareQueue(name, false, {}, 1));
    ASSERT_TRUE(v.BindQueue(name, "amq.fanout", "", {}, 1));
    if (i % 2 == 0) {
      ASSERT_TRUE(v.BindQueue(name, "amq.fanout", "again", {}, 1));  // reached twice
    }
  }
  auto ex = v.FindExchange("amq.fanout");
  ASSERT_TRUE(ex);
  std::vector<Queue*> queues;
  for (int round = 0; round < 3; ++round) {
    v.Route(**ex, *Msg("amq.fanout", ""), queues);
    ASSERT_EQ(queues.size(), size_t{kQueues});
    std::sort(queues.begin(), queues.end());
    EXPECT_EQ(std::adjacent_find(queues.begin(), queues.end()), queues.end());
  }
  for (int i = 0; i < kQueues; i += 2) ASSERT_TRUE(v.DeleteQueue("q" + std::to_string(i), false, false, 1));
  EXPECT_EQ((*ex)->bindings().size(), size_t{kQueues / 2});
  v.Route(**ex, *Msg("amq.fanout", ""), queues);
  EXPECT_EQ(queues.size(), size_t{kQueues / 2});
}

TEST(ExchangeTest, ManyKeysOnOneQueue) {
  Queue q(1, "q", {});
  Exchange direct("d", ExchangeType::kDirect, {});
  Exchange topic("t", ExchangeType::kTopic, {});
  const Destination to_q{.queue = &q};
  constexpr int kKeys = 50000;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(direct.Bind(Binding{to_q, "k" + std::to_string(i), {}}));
    ASSERT_TRUE(topic.Bind(Binding{to_q, "k" + std::to_string(i) + ".#", {}}));
  }
  EXPECT_FALSE(direct.Bind(Binding{to_q, "k7", {}}));
  std::vector<Destination> out;
  direct.Route(*Msg("d", "k49999"), out);
  topic.Route(*Msg("t", "k123.x"), out);
  EXPECT_EQ(out.size(), 2u);
  for (int i = 0; i < kKeys; i += 2) {
    ASSERT_TRUE(direct.Unbind(to_q, "k" + std::to_string(i), {}));
    ASSERT_TRUE(topic.Unbind(to_q, "k" + std::to_string(i) + ".#", {}));
  }
  EXPECT_FALSE(direct.Unbind(to_q, "k0", {}));
  out.clear();
  direct.Route(*Msg("d", "k0"), out);
  direct.Route(*Msg("d", "k1"), out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(direct.UnbindAll(to_q).size(), size_t{kKeys / 2});
  EXPECT_EQ(topic.UnbindAll(to_q).size(), size_t{kKeys / 2});
  EXPECT_TRUE(direct.bindings().empty());
  out.clear();
  topic.Route(*Msg("t", "k1.x"), out);
  EXPECT_TRUE(out.empty());
}

TEST(ExchangeTest, BindingsDifferingInArgumentsShareTheIndex) {
  Queue q(1, "q", {});
  Exchange direct("d", ExchangeType::kDirect, {});
  const Destination to_q{.queue = &q};
  amqp::FieldTable a, b;
  a.entries.emplace_back("x", amqp::FieldValue(int32_t{1}));
  b.entries.emplace_back("x", amqp::FieldValue(int32_t{2}));
  ASSERT_TRUE(direct.Bind(Binding{to_q, "k", a}));
  ASSERT_TRUE(direct.Bind(Binding{to_q, "k", b}));
  ASSERT_FALSE(direct.Bind(Binding{to_q, "k", b}));
  ASSERT_TRUE(direct.Bind(Binding{to_q, "j", {}}));
  std::vector<std::string> keys;
  for (const Binding& binding : direct.bindings()) keys.push_back(binding.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"k", "k", "j"}));  // in the order made
  std::vector<Destination> out;
  direct.Route(*Msg("d", "k"), out);
  EXPECT_EQ(out.size(), 1u);
  ASSERT_TRUE(direct.Unbind(to_q, "k", a));
  out.clear();
  direct.Route(*Msg("d", "k"), out);
  EXPECT_EQ(out.size(), 1u);  // the binding with `b` still routes
  ASSERT_TRUE(direct.Unbind(to_q, "k", b));
  out.clear();
  direct.Route(*Msg("d", "k"), out);
  EXPECT_TRUE(out.empty());
}

TEST(IndexedSetTest, InsertEraseAcrossTheIndexThreshold) {
  IndexedSet<int> set;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(set.Insert(i));
  EXPECT_FALSE(set.Insert(42));
  for (int i = 0; i < 100; i += 3) EXPECT_TRUE(set.Erase(i));
  EXPECT_FALSE(set.Erase(0));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(set.Contains(i), i % 3 != 0) << i;
  std::vector<int> items(set.begin(), set.end());
  std::sort(items.begin(), items.end());
  EXPECT_EQ(items.size(), set.size());
  EXPECT_EQ(std::adjacent_find(items.begin(), items.end()), items.end());
  IndexedSet<int> small;
  EXPECT_TRUE(small.Insert(1));
  EXPECT_TRUE(small.Insert(2));
  EXPECT_TRUE(small.Erase(1));
  EXPECT_EQ(std::vector<int>(small.begin(), small.end()), std::vector<int>{2});
}

TEST(VhostTest, NamesAndKeysAreShortStrings) {
  Vhost v("/");
  const std::string fits(255, 'n'), too_long(256, 'n');
  ASSERT_TRUE(v.DeclareQueue(fits, false, {}, 1));
  ASSERT_TRUE(v.DeclareExchange(fits, "direct", false, {}));
  ASSERT_TRUE(v.BindQueue(fits, fits, fits, {}, 1));
  auto q = v.DeclareQueue(too_long, false, {}, 1);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, amqp::reply::kPreconditionFailed);
  EXPECT_EQ(q.error().text, "queue should be less than 255 bytes, actually was 256");
  auto e = v.DeclareExchange(std::string(100 * 1024, 'e'), "direct", false, {});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().text, "exchange should be less than 255 bytes, actually was 102400");
  auto b = v.BindQueue(fits, fits, too_long, {}, 1);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().text, "routing_key should be less than 255 bytes, actually was 256");
  EXPECT_FALSE(v.BindExchange(fits, "amq.direct", too_long, {}));
  EXPECT_FALSE(v.queues().contains(too_long));
}

TEST(VhostTest, ExchangeDeclareChecks) {
  Vhost v("/");
  EXPECT_EQ(v.DeclareExchange("amq.foo", "direct", false, {}).error().code, amqp::reply::kAccessRefused);
  EXPECT_EQ(v.DeclareExchange("x", "nope", false, {}).error().code, amqp::reply::kCommandInvalid);
  EXPECT_EQ(v.DeclareExchange("missing", "direct", true, {}).error().code, amqp::reply::kNotFound);
  ASSERT_TRUE(v.DeclareExchange("x", "direct", false, {}));
  EXPECT_EQ(v.DeclareExchange("x", "fanout", false, {}).error().code, amqp::reply::kPreconditionFailed);
  EXPECT_EQ(v.DeclareExchange("x", "direct", false, {.durable = true, .arguments = {}}).error().code,
            amqp::reply::kPreconditionFailed);
  EXPECT_TRUE(v.DeclareExchange("x", "direct", false, {}));
}

TEST(VhostTest, ExclusiveQueueLockedToOwner) {
  Vhost v("/");
  ASSERT_TRUE(v.DeclareQueue("ex", false, {.exclusive = true, .auto_delete = false, .owner_connection = 0, .arguments = {}}, 7));
  EXPECT_EQ(v.DeclareQueue("ex", false, {.exclusive = true, .auto_delete = false, .owner_connection = 0, .arguments = {}}, 8).error().code, amqp::reply::kResourceLocked);
  EXPECT_EQ(v.FindQueue("ex", 8).error().code, amqp::reply::kResourceLocked);
  EXPECT_TRUE(v.FindQueue("ex", 7).has_value());
  v.RemoveExclusiveQueues(7);
  EXPECT_EQ(v.FindQueue("ex", 7).error().code, amqp::reply::kNotFound);
}

TEST(VhostTest, DeleteQueueRemovesBindingsAndHonoursConditions) {
  Vhost v("/");
  ASSERT_TRUE(v.DeclareQueue("q", false, {}, 1));
  ASSERT_TRUE(v.BindQueue("q", "amq.fanout", "", {}, 1));
  (*v.FindQueue("q", 1))->Enqueue(Msg("", "q"));
  EXPECT_EQ(v.DeleteQueue("q", false, true, 1).error().code, amqp::reply::kPreconditionFailed);
  auto deleted = v.DeleteQueue("q", false, false, 1);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(*deleted, 1u);
  EXPECT_TRUE((*v.FindExchange("amq.fanout"))->bindings().empty());
}

TEST(VhostTest, AutoDeleteExchangeGoesWithLastBinding) {
  Vhost v("/");
  ASSERT_TRUE(v.DeclareExchange("ad", "fanout", false, {.auto_delete = true, .internal = false, .arguments = {}}));
  ASSERT_TRUE(v.DeclareQueue("q", false, {}, 1));
  ASSERT_TRUE(v.BindQueue("q", "ad", "", {}, 1));
  ASSERT_TRUE(v.UnbindQueue("q", "ad", "", {}, 1));
  EXPECT_EQ(v.FindExchange("ad").error().code, amqp::reply::kNotFound);
}

TEST(VhostTest, ServerNamedQueues) {
  Vhost v("/");
  auto r = v.DeclareQueue("", false, {}, 1);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->queue->name().starts_with("amq.gen-"));
  EXPECT_EQ(r->queue->name().size(), 8u + 22u);
}

}  // namespace
}  // namespace warren::broker
