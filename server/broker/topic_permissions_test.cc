#include "server/broker/topic_permissions.h"

#include <gtest/gtest.h>

#include "server/broker/broker.h"

namespace warren::broker {
namespace {

TEST(TopicPermissionsTest, OnlyTheNamedExchangeIsRestricted) {
  TopicPermissionTable t;
  ASSERT_TRUE(t.Set({"u", "/", "amq.topic", "^a\\.", "^r\\."}));
  EXPECT_TRUE(t.Allows("u", "/", "amq.topic", AccessKind::kWrite, "a.b"));
  EXPECT_FALSE(t.Allows("u", "/", "amq.topic", AccessKind::kWrite, "b.a"));
  EXPECT_TRUE(t.Allows("u", "/", "amq.topic", AccessKind::kRead, "r.x"));
  EXPECT_FALSE(t.Allows("u", "/", "amq.topic", AccessKind::kRead, "a.b"));
  EXPECT_TRUE(t.Allows("u", "/", "other", AccessKind::kWrite, "b.a"));  // no permission: all allowed
  EXPECT_TRUE(t.Allows("v", "/", "amq.topic", AccessKind::kWrite, "b.a"));
  EXPECT_TRUE(t.Allows("u", "other", "amq.topic", AccessKind::kWrite, "b.a"));
}

TEST(TopicPermissionsTest, UsernameAndVhostVariablesExpand) {
  EXPECT_EQ(ExpandTopicPattern("^{username}\\.{vhost}\\.{username}$", "ann", "v1"), "^ann\\.v1\\.ann$");
  TopicPermissionTable t;
  ASSERT_TRUE(t.Set({"ann", "v1", "x", "^{username}\\.", ".*"}));
  EXPECT_TRUE(t.Allows("ann", "v1", "x", AccessKind::kWrite, "ann.orders"));
  EXPECT_FALSE(t.Allows("ann", "v1", "x", AccessKind::kWrite, "bob.orders"));
  EXPECT_EQ(t.List()[0].write, "^{username}\\.");  // listed as set, not expanded
}

TEST(TopicPermissionsTest, VariablesAreRegexEscaped) {
  // A user called "a.*" must get exactly their own prefix, not a wildcard.
  EXPECT_EQ(ExpandTopicPattern("^{username}\\.", "a.*", "/"), "^a\\.\\*\\.");
  TopicPermissionTable t;
  ASSERT_TRUE(t.Set({"a.*", "v(1", "x", "^{username}\\.", "^{vhost}$"}));
  EXPECT_TRUE(t.Allows("a.*", "v(1", "x", AccessKind::kWrite, "a.*.orders"));
  EXPECT_FALSE(t.Allows("a.*", "v(1", "x", AccessKind::kWrite, "anything.orders"));
  EXPECT_FALSE(t.Allows("a.*", "v(1", "x", AccessKind::kWrite, "ab.orders"));
  EXPECT_TRUE(t.Allows("a.*", "v(1", "x", AccessKind::kRead, "v(1"));  // "(" would not even compile raw
  EXPECT_FALSE(t.Allows("a.*", "v(1", "x", AccessKind::kRead, "v1"));
  // A name that spells a variable is not expanded again.
  EXPECT_EQ(ExpandTopicPattern("{username}{vhost}", "{vhost}", "v"), "\\{vhost\\}v");
}

TEST(TopicPermissionsTest, InvalidRegexChangesNothing) {
  TopicPermissionTable t;
  ASSERT_TRUE(t.Set({"u", "/", "x", "^a", "^a"}));
  auto bad = t.Set({"u", "/", "x", "[", ".*"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, 406);
  EXPECT_EQ(t.List()[0].write, "^a");
}

TEST(TopicPermissionsTest, RemoveByExchangeOrAll) {
  TopicPermissionTable t;
  ASSERT_TRUE(t.Set({"u", "/", "x", ".*", ".*"}));
  ASSERT_TRUE(t.Set({"u", "/", "y", ".*", ".*"}));
  ASSERT_TRUE(t.Set({"u", "v", "x", ".*", ".*"}));
  ASSERT_TRUE(t.Set({"w", "/", "x", ".*", ".*"}));
  EXPECT_EQ(t.Remove("u", "/", "x").size(), 1u);
  EXPECT_EQ(t.List("u").size(), 2u);
  EXPECT_EQ(t.Remove("u", "", "").size(), 2u);
  EXPECT_EQ(t.List().size(), 1u);
  EXPECT_EQ(t.Remove("", "/", "").size(), 1u);
  EXPECT_TRUE(t.empty());
}

TEST(TopicPermissionsTest, BrokerChecksAndForgetsWithTheUserAndVhost) {
  Broker broker;
  broker.RestoreUser(User{"u", "", {}});
  ASSERT_TRUE(broker.AddVhost("v"));
  EXPECT_EQ(broker.SetTopicPermission({"nobody", "/", "amq.topic", ".*", ".*"}).error().code, 404);
  EXPECT_EQ(broker.SetTopicPermission({"u", "nowhere", "amq.topic", ".*", ".*"}).error().code, 404);
  ASSERT_TRUE(broker.SetTopicPermission({"u", "/", "amq.topic", "^ok$", "^ok$"}));
  ASSERT_TRUE(broker.SetTopicPermission({"u", "v", "amq.topic", "^ok$", "^ok$"}));
  EXPECT_TRUE(broker.CheckTopicAccess("u", "/", "amq.topic", AccessKind::kWrite, "ok"));
  auto refused = broker.CheckTopicAccess("u", "/", "amq.topic", AccessKind::kWrite, "no");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, 403);
  EXPECT_EQ(refused.error().text, "access to topic 'no' in exchange 'amq.topic' in vhost '/' refused for user 'u'");
  ASSERT_TRUE(broker.DeleteVhost("v"));
  EXPECT_EQ(broker.ListTopicPermissions().size(), 1u);
  EXPECT_EQ(broker.ClearTopicPermissions("u", "/", "other").error().code, 404);
  ASSERT_TRUE(broker.ClearTopicPermissions("u", "/"));
  EXPECT_FALSE(broker.has_topic_permissions());
  ASSERT_TRUE(broker.SetTopicPermission({"u", "/", "amq.topic", "^ok$", "^ok$"}));
  ASSERT_TRUE(broker.DeleteUser("u"));
  EXPECT_FALSE(broker.has_topic_permissions());
}

}  // namespace
}  // namespace warren::broker
