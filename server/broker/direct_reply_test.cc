#include "server/broker/direct_reply.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "server/amqp/properties.h"

namespace warren::broker {
namespace {

class Target : public DirectReplyTarget {
 public:
  bool DeliverReply(const MessageRef& message) override {
    got.push_back(message);
    return true;
  }
  std::vector<MessageRef> got;
};

TEST(DirectReplyTest, RegisterFindUnregister) {
  DirectReplyRegistry registry;
  Target a, b;
  const std::string name_a = registry.Register("/", &a);
  const std::string name_b = registry.Register("/", &b);
  EXPECT_TRUE(name_a.starts_with(kDirectReplyToPrefix));
  EXPECT_LE(name_a.size(), 255u);
  EXPECT_NE(name_a, name_b);
  EXPECT_EQ(registry.Find("/", name_a), &a);
  EXPECT_EQ(registry.Find("/", name_b), &b);
  EXPECT_EQ(registry.Find("/", kDirectReplyTo), nullptr);
  registry.Unregister(name_a);
  EXPECT_EQ(registry.Find("/", name_a), nullptr);
  registry.Unregister(name_a);  // harmless twice
  EXPECT_EQ(registry.Find("/", name_b), &b);
}

TEST(DirectReplyTest, NamesAreScopedToTheirVhost) {
  DirectReplyRegistry registry;
  Target a;
  const std::string name = registry.Register("tenant-a", &a);
  EXPECT_EQ(registry.Find("tenant-a", name), &a);
  EXPECT_EQ(registry.Find("tenant-b", name), nullptr);
  EXPECT_EQ(registry.Find("/", name), nullptr);
}

TEST(DirectReplyTest, NamesAreLongAndUnique) {
  DirectReplyRegistry registry;
  Target a;
  std::set<std::string> names;
  for (int i = 0; i < 10000; ++i) {
    std::string name = registry.Register("/", &a);
    // Two 22-character random parts of 6 bits each: 264 bits.
    EXPECT_EQ(name.size(), kDirectReplyToPrefix.size() + 1 + 22 + 1 + 22) << name;
    EXPECT_TRUE(names.insert(std::move(name)).second);
  }
}

TEST(DirectReplyTest, WithReplyToRewritesOnlyThatProperty) {
  amqp::BasicProperties p;
  p.reply_to = std::string(kDirectReplyTo);
  p.correlation_id = "c-1";
  p.delivery_mode = 2;
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(p, w);
  MessageRef m = Message::Create("", "service", raw, 4, nullptr);
  m->FillBody("ping");
  MessageRef copy = WithReplyTo(*m, "amq.rabbitmq.reply-to.abc");
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->exchange(), "");
  EXPECT_EQ(copy->routing_key(), "service");
  EXPECT_EQ(copy->body(), "ping");
  EXPECT_TRUE(copy->persistent());
  amqp::BasicProperties out;
  ASSERT_TRUE(amqp::DecodeProperties(copy->raw_properties(), &out));
  p.reply_to = "amq.rabbitmq.reply-to.abc";
  EXPECT_EQ(out, p);
}

}  // namespace
}  // namespace warren::broker
