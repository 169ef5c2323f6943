#include "server/broker/exchange.h"

#include <gtest/gtest.h>

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
