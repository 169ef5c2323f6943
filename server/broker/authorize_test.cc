// broker::Authorize: RabbitMQ's access-control table, the one place both adapters ask.
#include "server/broker/authorize.h"

#include <gtest/gtest.h>

#include "server/broker/broker.h"
#include "server/broker/password.h"

namespace warren::broker {
namespace {

class AuthorizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(broker_.AddUser("u", HashPassword("pw")).has_value());
    // Configure and read anything; write only t.*
    ASSERT_TRUE(broker_.SetPermissions("u", "/", ".*", "^t\\.", ".*").has_value());
    vhost_ = broker_.FindVhost("/");
    ASSERT_TRUE(vhost_->DeclareExchange("forbidden", "fanout", false, ExchangeOptions{}).has_value());
  }
  Result<> Allow(const AccessRequest& r) { return Authorize(broker_, "u", *vhost_, r); }
  static amqp::FieldTable Args(std::string_view key, std::string_view value) {
    amqp::FieldTable t;
    t.entries.emplace_back(std::string(key), amqp::FieldValue(std::string(value)));
    return t;
  }

  Broker broker_;
  Vhost* vhost_ = nullptr;
};

TEST_F(AuthorizeTest, NewQueueWithDeadLetterExchangeNeedsWriteOnIt) {
  const amqp::FieldTable bad = Args("x-dead-letter-exchange", "forbidden");
  const amqp::FieldTable good = Args("x-dead-letter-exchange", "t.dlx");
  auto refused = Allow({.op = Operation::kDeclareQueue, .name = "q", .arguments = &bad});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, amqp::reply::kAccessRefused);
  EXPECT_EQ(refused.error().text, "access to exchange 'forbidden' in vhost '/' refused for user 'u'");
  EXPECT_TRUE(Allow({.op = Operation::kDeclareQueue, .name = "q", .arguments = &good}).has_value());
  // Arguments not known yet: only configure is asked.
  EXPECT_TRUE(Allow({.op = Operation::kDeclareQueue, .name = "q"}).has_value());
  // An existing queue is only redeclared: RabbitMQ asks nothing more.
  ASSERT_TRUE(vhost_->DeclareQueue("q", false, QueueOptions{}, 1).has_value());
  EXPECT_TRUE(Allow({.op = Operation::kDeclareQueue, .name = "q", .arguments = &bad}).has_value());
}

TEST_F(AuthorizeTest, NewExchangeWithAlternateNeedsWriteOnIt) {
  const amqp::FieldTable bad = Args("alternate-exchange", "forbidden");
  auto refused = Allow({.op = Operation::kDeclareExchange, .name = "x", .arguments = &bad});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().text, "access to exchange 'forbidden' in vhost '/' refused for user 'u'");
  EXPECT_TRUE(Allow({.op = Operation::kDeclareExchange, .name = "x", .passive = true}).has_value());
  EXPECT_TRUE(Allow({.op = Operation::kDeclareExchange, .name = "forbidden", .arguments = &bad}).has_value());
}

TEST_F(AuthorizeTest, PublishBindAndReadOperations) {
  EXPECT_TRUE(Allow({.op = Operation::kPublish, .name = "t.x"}).has_value());
  auto refused = Allow({.op = Operation::kPublish, .name = ""});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().text, "access to exchange 'amq.default' in vhost '/' refused for user 'u'");
  // Binding writes on the destination.
  EXPECT_FALSE(Allow({.op = Operation::kBindQueue, .name = "q", .source = "amq.direct"}).has_value());
  EXPECT_TRUE(Allow({.op = Operation::kBindQueue, .name = "t.q", .source = "amq.direct"}).has_value());
  EXPECT_TRUE(Allow({.op = Operation::kUnbindExchange, .name = "t.x", .source = "amq.direct"}).has_value());
  for (Operation op : {Operation::kConsume, Operation::kGet, Operation::kPurge, Operation::kDeleteQueue}) {
    EXPECT_TRUE(Allow({.op = op, .name = "q"}).has_value());
  }
  ASSERT_TRUE(broker_.SetPermissions("u", "/", "", "", "^r").has_value());
  EXPECT_FALSE(Allow({.op = Operation::kDeleteQueue, .name = "r"}).has_value());
  EXPECT_FALSE(Allow({.op = Operation::kDeleteExchange, .name = "forbidden"}).has_value());
  EXPECT_TRUE(Allow({.op = Operation::kGet, .name = "r"}).has_value());
  EXPECT_FALSE(Allow({.op = Operation::kConsume, .name = "q"}).has_value());
}

TEST_F(AuthorizeTest, TopicPermissionsOnlyWhenTheKeyIsKnown) {
  ASSERT_TRUE(broker_.SetPermissions("u", "/", ".*", ".*", ".*").has_value());
  ASSERT_TRUE(broker_.SetTopicPermission(TopicPermission{"u", "/", "amq.topic", "^a\\.", "^b\\."}).has_value());
  auto refused = Allow({.op = Operation::kPublish, .name = "amq.topic", .routing_key = "z"});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().text, "access to topic 'z' in exchange 'amq.topic' in vhost '/' refused for user 'u'");
  EXPECT_TRUE(Allow({.op = Operation::kPublish, .name = "amq.topic", .routing_key = "a.1"}).has_value());
  EXPECT_TRUE(Allow({.op = Operation::kPublish, .name = "amq.topic", .routing_key = std::nullopt}).has_value());
  EXPECT_FALSE(Allow({.op = Operation::kBindQueue, .name = "q", .source = "amq.topic", .routing_key = "a.1"})
                   .has_value());
  EXPECT_TRUE(Allow({.op = Operation::kBindQueue, .name = "q", .source = "amq.topic", .routing_key = "b.1"})
                  .has_value());
}

}  // namespace
}  // namespace warren::broker
