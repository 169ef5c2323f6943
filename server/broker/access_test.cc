// Permission matching (RabbitMQ's rules) and the Broker's users/vhosts/permissions model.
#include "server/broker/access.h"

#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "server/amqp/constants.h"
#include "server/broker/broker.h"
#include "server/broker/definitions.h"
#include "server/broker/password.h"
#include "server/broker/persister.h"
#include "server/broker/recovery.h"
#include "server/journal/store_journal.h"
#include "storage/test_util.h"

namespace warren::broker {
namespace {

namespace r = amqp::reply;

bool Match(std::string_view pattern, std::string_view name) {
  auto p = PermissionPattern::Compile(pattern);
  EXPECT_TRUE(p.has_value()) << pattern;
  return p && p->Matches(name);
}

TEST(PermissionPatternTest, UnanchoredSearchAsRabbitMq) {
  EXPECT_TRUE(Match(".*", "anything"));
  EXPECT_TRUE(Match(".*", ""));
  EXPECT_TRUE(Match("q", "q"));
  EXPECT_TRUE(Match("q", "aq1"));  // re:run searches: no implicit anchors
  EXPECT_FALSE(Match("^q$", "aq1"));
  EXPECT_TRUE(Match("^q$", "q"));
  EXPECT_TRUE(Match("^app\\.", "app.orders"));
  EXPECT_FALSE(Match("^app\\.", "xapp.orders"));
  EXPECT_TRUE(Match("^(a|b)$", "b"));
  EXPECT_FALSE(Match("^(a|b)$", "ab"));
  EXPECT_TRUE(Match("[0-9]+$", "q42"));
}

TEST(PermissionPatternTest, EmptyAndCaretDollarGrantNothing) {
  EXPECT_FALSE(Match("", "q"));
  EXPECT_FALSE(Match("^$", "q"));
  EXPECT_FALSE(Match("^$", "amq.default"));
}

TEST(PermissionPatternTest, InvalidRegexIsAnError) {
  auto p = PermissionPattern::Compile("(unclosed");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, r::kPreconditionFailed);
  EXPECT_NE(p.error().text.find("(unclosed"), std::string::npos);
  EXPECT_FALSE(PermissionPattern::Compile("[z-a]").has_value());
}

// std::regex backtracked exponentially on this pattern (hours for 40 characters) and recursed
// once per character of the name (a 100 KB name overflowed the stack); RE2 is linear.
TEST(PermissionPatternTest, CatastrophicPatternsMatchInLinearTime) {
  const std::string name = std::string(40, 'a') + "!";
  EXPECT_FALSE(Match("^([a-z0-9]+[._-]?)+$", name));
  EXPECT_TRUE(Match("^([a-z0-9]+[._-]?)+$", "orders.eu-1_x"));
  EXPECT_FALSE(Match("^(a|aa)+$", std::string(5000, 'a') + "b"));
  const std::string huge(100 * 1024, 'k');
  EXPECT_TRUE(Match("^(k|kk)+$", huge));
  EXPECT_TRUE(Match("^k.*k$", huge));
  EXPECT_FALSE(Match("^([a-z0-9]+[._-]?)+$", huge + "!"));
}

TEST(PermissionPatternTest, PcreOnlySyntaxIsRefusedNotMismatched) {
  for (const char* pattern : {"^(?=a)a", "(?!x)y", "(?<=a)b", "(?<!a)b", "^(a)\\1$", "a++", "(?>a)"}) {
    auto p = PermissionPattern::Compile(pattern);
    ASSERT_FALSE(p.has_value()) << pattern;
    EXPECT_EQ(p.error().code, r::kPreconditionFailed);
    EXPECT_NE(p.error().text.find("invalid regular expression"), std::string::npos) << p.error().text;
  }
  EXPECT_NE(PermissionPattern::Compile("(?=a)").error().text.find("lookaround"), std::string::npos);
  // The PCRE escapes people use in permissions still work.
  EXPECT_TRUE(Match("^q\\d+\\b", "q42"));
  EXPECT_TRUE(Match("^\\w+\\s?$", "ab_1"));
  EXPECT_TRUE(Match("^(?i)ORDERS$", "orders"));
}

TEST(PermissionPatternTest, NamesAreMatchedAsBytes) {
  // RabbitMQ's re:run without the unicode option: "." is one byte, invalid UTF-8 is fine.
  EXPECT_TRUE(Match("^..$", "\xc3\xa9"));  // "é" in UTF-8: two bytes
  EXPECT_TRUE(Match("^q.$", std::string("q\xff")));
}

TEST(CompiledPermissionTest, DefaultExchangeIsAmqDefault) {
  auto p = CompiledPermission::Compile(Permission{"u", "/", "^$", "^amq\\.default$", "^$"});
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->Allows(AccessKind::kWrite, ResourceKind::kExchange, ""));
  EXPECT_TRUE(p->Allows(AccessKind::kWrite, ResourceKind::kExchange, "amq.default"));
  EXPECT_FALSE(p->Allows(AccessKind::kWrite, ResourceKind::kQueue, ""));
  EXPECT_FALSE(p->Allows(AccessKind::kConfigure, ResourceKind::kExchange, ""));
  EXPECT_FALSE(p->Allows(AccessKind::kRead, ResourceKind::kExchange, ""));
}

TEST(CompiledPermissionTest, EachKindUsesItsRegex) {
  auto p = CompiledPermission::Compile(Permission{"u", "/", "^c", "^w", "^r"});
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->Allows(AccessKind::kConfigure, ResourceKind::kQueue, "c1"));
  EXPECT_FALSE(p->Allows(AccessKind::kConfigure, ResourceKind::kQueue, "w1"));
  EXPECT_TRUE(p->Allows(AccessKind::kWrite, ResourceKind::kExchange, "w1"));
  EXPECT_FALSE(p->Allows(AccessKind::kWrite, ResourceKind::kExchange, "r1"));
  EXPECT_TRUE(p->Allows(AccessKind::kRead, ResourceKind::kQueue, "r1"));
  EXPECT_FALSE(p->Allows(AccessKind::kRead, ResourceKind::kQueue, "c1"));
}

TEST(BrokerAccessTest, UsersLifecycle) {
  Broker b;
  ASSERT_TRUE(b.AddUser("alice", HashPassword("pw"), {"management"}).has_value());
  auto dup = b.AddUser("alice", HashPassword("x"));
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, r::kPreconditionFailed);
  EXPECT_FALSE(b.AddUser("", "").has_value());
  ASSERT_NE(b.FindUser("alice"), nullptr);
  EXPECT_EQ(b.FindUser("alice")->tags, std::vector<std::string>{"management"});
  EXPECT_NE(b.Authenticate("alice", "pw"), nullptr);
  EXPECT_EQ(b.Authenticate("alice", "nope"), nullptr);

  ASSERT_TRUE(b.ChangePassword("alice", HashPassword("pw2")).has_value());
  EXPECT_EQ(b.Authenticate("alice", "pw"), nullptr);
  EXPECT_NE(b.Authenticate("alice", "pw2"), nullptr);
  ASSERT_TRUE(b.SetUserTags("alice", {"administrator", "monitoring"}).has_value());
  EXPECT_EQ(b.FindUser("alice")->tags.size(), 2u);
  EXPECT_EQ(b.ChangePassword("bob", "").error().code, r::kNotFound);
  EXPECT_EQ(b.SetUserTags("bob", {}).error().code, r::kNotFound);

  ASSERT_TRUE(b.AddUser("bob", "").has_value());
  EXPECT_EQ(b.Authenticate("bob", ""), nullptr);  // no password: no password login
  auto users = b.ListUsers();
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].name, "alice");
  EXPECT_EQ(users[1].name, "bob");

  std::vector<std::string> deleted;
  b.set_on_user_deleted([&](std::string_view u) { deleted.emplace_back(u); });
  ASSERT_TRUE(b.DeleteUser("alice").has_value());
  EXPECT_EQ(deleted, std::vector<std::string>{"alice"});
  EXPECT_EQ(b.FindUser("alice"), nullptr);
  EXPECT_EQ(b.DeleteUser("alice").error().code, r::kNotFound);
}

TEST(BrokerAccessTest, VhostsLifecycle) {
  Broker b;
  EXPECT_EQ(b.ListVhosts(), std::vector<std::string>{"/"});
  ASSERT_TRUE(b.AddVhost("dev").has_value());
  EXPECT_EQ(b.AddVhost("dev").error().code, r::kPreconditionFailed);
  EXPECT_FALSE(b.AddVhost("").has_value());
  ASSERT_NE(b.FindVhost("dev"), nullptr);
  ASSERT_TRUE(b.FindVhost("dev")->DeclareQueue("q", false, QueueOptions{}, 1).has_value());
  ASSERT_TRUE(b.AddUser("u", HashPassword("p")).has_value());
  ASSERT_TRUE(b.SetPermissions("u", "dev", ".*", ".*", ".*").has_value());

  std::vector<std::string> closed;
  b.set_on_vhost_deleted([&](std::string_view v) { closed.emplace_back(v); });
  ASSERT_TRUE(b.DeleteVhost("dev").has_value());
  EXPECT_EQ(closed, std::vector<std::string>{"dev"});
  EXPECT_EQ(b.FindVhost("dev"), nullptr);
  EXPECT_EQ(b.FindPermission("u", "dev"), nullptr);  // permissions go with the vhost
  EXPECT_FALSE(b.HasVhostAccess("u", "dev"));
  EXPECT_EQ(b.DeleteVhost("dev").error().code, r::kNotFound);
  // Re-created: empty, and no permissions carried over.
  ASSERT_TRUE(b.AddVhost("dev").has_value());
  EXPECT_TRUE(b.FindVhost("dev")->queues().empty());
  EXPECT_FALSE(b.HasVhostAccess("u", "dev"));
}

TEST(BrokerAccessTest, PermissionsAreLiveAndChecked) {
  Broker b;
  ASSERT_TRUE(b.AddUser("u", HashPassword("p")).has_value());
  EXPECT_FALSE(b.HasVhostAccess("u", "/"));
  auto refused = b.CheckAccess("u", "/", AccessKind::kRead, ResourceKind::kQueue, "q");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, r::kAccessRefused);
  EXPECT_EQ(refused.error().text, "access to queue 'q' in vhost '/' refused for user 'u'");

  EXPECT_EQ(b.SetPermissions("nobody", "/", ".*", ".*", ".*").error().code, r::kNotFound);
  EXPECT_EQ(b.SetPermissions("u", "nowhere", ".*", ".*", ".*").error().code, r::kNotFound);
  auto bad = b.SetPermissions("u", "/", "(", ".*", ".*");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, r::kPreconditionFailed);
  EXPECT_EQ(b.FindPermission("u", "/"), nullptr);  // nothing changed

  const uint64_t gen = b.access_generation();
  ASSERT_TRUE(b.SetPermissions("u", "/", "^conf", "^wr", "^rd").has_value());
  EXPECT_NE(b.access_generation(), gen);
  EXPECT_TRUE(b.HasVhostAccess("u", "/"));
  EXPECT_TRUE(b.CheckAccess("u", "/", AccessKind::kRead, ResourceKind::kQueue, "rdq").has_value());
  EXPECT_FALSE(b.CheckAccess("u", "/", AccessKind::kRead, ResourceKind::kQueue, "q").has_value());
  auto ex = b.CheckAccess("u", "/", AccessKind::kWrite, ResourceKind::kExchange, "");
  ASSERT_FALSE(ex.has_value());
  EXPECT_EQ(ex.error().text, "access to exchange 'amq.default' in vhost '/' refused for user 'u'");

  // A change applies to the very next check.
  ASSERT_TRUE(b.SetPermissions("u", "/", "^conf", "^wr", "^q$").has_value());
  EXPECT_TRUE(b.CheckAccess("u", "/", AccessKind::kRead, ResourceKind::kQueue, "q").has_value());
  EXPECT_FALSE(b.CheckAccess("u", "/", AccessKind::kRead, ResourceKind::kQueue, "rdq").has_value());

  auto listed = b.ListPermissions();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].read, "^q$");
  ASSERT_TRUE(b.ClearPermissions("u", "/").has_value());
  EXPECT_FALSE(b.HasVhostAccess("u", "/"));
  EXPECT_EQ(b.ClearPermissions("u", "/").error().code, r::kNotFound);
}

TEST(BrokerAccessTest, VhostAndUserNamesAreShortStrings) {
  Broker broker;
  const std::string too_long(256, 'n');
  auto v = broker.AddVhost(too_long);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().text, "vhost should be less than 255 bytes, actually was 256");
  auto u = broker.AddUser(too_long, HashPassword("p"));
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().text, "user should be less than 255 bytes, actually was 256");
  ASSERT_TRUE(broker.AddVhost(std::string(255, 'n')));
  ASSERT_TRUE(broker.AddUser("u", HashPassword("p")));
  EXPECT_FALSE(broker.SetTopicPermission({"u", "/", too_long, ".*", ".*"}));
}

TEST(DefinitionsTest, OverlongNamesAreRefusedBeforeAnyChange) {
  const std::string too_long(300, 'z');
  for (const std::string& doc : {
           R"({"vhosts": [{"name": ")" + too_long + R"("}]})",
           R"({"queues": [{"name": ")" + too_long + R"(", "vhost": "/"}], "vhosts": [{"name": "new"}]})",
           R"({"vhosts": [{"name": "new"}], "exchanges": [{"name": ")" + too_long +
               R"(", "vhost": "/", "type": "direct"}]})",
           R"({"vhosts": [{"name": "new"}], "bindings": [{"source": "amq.direct", "vhost": "/", "destination": "q",
               "destination_type": "queue", "routing_key": ")" + too_long + R"("}]})",
           R"({"vhosts": [{"name": "new"}], "users": [{"name": ")" + too_long + R"(", "password": "p"}]})"}) {
    Broker broker;
    broker.RestoreVhost("/");
    auto loaded = LoadDefinitions(broker, doc);
    ASSERT_FALSE(loaded) << doc;
    EXPECT_NE(loaded.error().text.find("should be less than 255 bytes, actually was 300"), std::string::npos)
        << loaded.error().text;
    EXPECT_EQ(broker.FindVhost("new"), nullptr);
  }
}

TEST(BrokerAccessTest, DeleteUserDropsPermissions) {
  Broker b;
  ASSERT_TRUE(b.AddUser("u", HashPassword("p")).has_value());
  ASSERT_TRUE(b.SetPermissions("u", "/", ".*", ".*", ".*").has_value());
  ASSERT_TRUE(b.DeleteUser("u").has_value());
  EXPECT_FALSE(b.CheckAccess("u", "/", AccessKind::kRead, ResourceKind::kQueue, "q").has_value());
  ASSERT_TRUE(b.AddUser("u", HashPassword("p")).has_value());
  EXPECT_FALSE(b.HasVhostAccess("u", "/"));  // a re-created user starts without permissions
  EXPECT_TRUE(b.ListPermissions().empty());
}

TEST(DefinitionsTest, LoadsUsersVhostsPermissions) {
  Broker b;
  const std::string json = R"({
    "rabbit_version": "3.10.8",
    "users": [
      {"name": "a", "password_hash": "uQuCvkRvWw5TY4Y9cwAfvzMdjbNJkv1ah7ugJ7WYpTkpByY4",
       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator,management"},
      {"name": "b", "password": "secret", "tags": ["monitoring"]}
    ],
    "vhosts": [{"name": "/"}, {"name": "dev"}],
    "permissions": [{"user": "a", "vhost": "dev", "configure": ".*", "write": "^x", "read": ""}],
    "queues": []
  })";
  auto loaded = LoadDefinitions(b, json);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().text;
  EXPECT_EQ(loaded->users, 2u);
  EXPECT_TRUE(loaded->ignored.empty());  // metadata and empty sections are not reported
  EXPECT_NE(b.Authenticate("a", "hunter2"), nullptr);
  EXPECT_NE(b.Authenticate("b", "secret"), nullptr);
  EXPECT_EQ(b.FindUser("a")->tags, (std::vector<std::string>{"administrator", "management"}));
  ASSERT_NE(b.FindPermission("a", "dev"), nullptr);
  EXPECT_EQ(b.FindPermission("a", "dev")->write, "^x");
  // Loading again updates instead of failing.
  ASSERT_TRUE(LoadDefinitions(b, json).has_value());
}

TEST(DefinitionsTest, RejectsInvalidDocumentsWithoutChanges) {
  Broker b;
  auto error = [&](std::string_view json) {
    auto r = LoadDefinitions(b, json);
    return r ? std::string("(loaded)") : r.error().text;
  };
  EXPECT_EQ(error("{"), "not valid JSON");
  EXPECT_EQ(error("[]"), "the top level must be a JSON object");
  EXPECT_EQ(error(R"({"users": [{"password": "x"}]})"), "users[0]: missing \"name\"");
  EXPECT_NE(error(R"({"users": [{"name": "u", "password_hash": "abc", "hashing_algorithm": "rabbit_password_hashing_md5"}]})")
                .find("unsupported hashing_algorithm"),
            std::string::npos);
  EXPECT_NE(error(R"({"users": [{"name": "u", "password_hash": "not-a-hash"}]})").find("password_hash"),
            std::string::npos);
  EXPECT_NE(error(R"({"users": [{"name": "u", "password": "p"}],
                      "permissions": [{"user": "u", "vhost": "/", "configure": "(", "write": "", "read": ""}]})")
                .find("invalid regular expression"),
            std::string::npos);
  EXPECT_EQ(b.FindUser("u"), nullptr);  // nothing applied
  EXPECT_EQ(error(R"({"permissions": [{"user": "ghost", "vhost": "/", "configure": "", "write": "", "read": ""}]})"),
            "permission for unknown user 'ghost'");
}

// Users, vhosts and permissions changed through the API are journaled and come back at restart.
TEST(BrokerAccessTest, ChangesSurviveRecovery) {
  storage::testing::TempDir dir;
  std::mutex mu;
  std::vector<std::function<void()>> posted;  // completions are never run: the store drains at reset
  auto post = [&](std::function<void()> fn) {
    std::lock_guard lock(mu);
    posted.push_back(std::move(fn));
  };
  {
    auto store = storage::testing::OpenOrDie(dir.path());
    Broker b;
    journal::StoreJournal journal(*store);
    Persister persister(&journal, post);
    RecoveryStats stats;
    ASSERT_TRUE(RecoverBroker(*store, b, persister, {"admin", "adminpw"}, &stats).ok());
    ASSERT_TRUE(b.HasVhostAccess("admin", "/"));
    ASSERT_TRUE(b.AddVhost("dev").has_value());
    ASSERT_TRUE(b.AddVhost("gone").has_value());
    ASSERT_TRUE(b.AddUser("u", HashPassword("pw"), {"management"}).has_value());
    ASSERT_TRUE(b.AddUser("x", HashPassword("pw")).has_value());
    ASSERT_TRUE(b.SetPermissions("u", "dev", "^c", "^w", "^r").has_value());
    ASSERT_TRUE(b.SetPermissions("u", "gone", ".*", ".*", ".*").has_value());
    ASSERT_TRUE(b.SetPermissions("x", "dev", ".*", ".*", ".*").has_value());
    QueueOptions durable;
    durable.durable = true;
    ASSERT_TRUE(b.FindVhost("gone")->DeclareQueue("q", false, durable, 1).has_value());
    ASSERT_TRUE(b.ChangePassword("u", HashPassword("pw2")).has_value());
    ASSERT_TRUE(b.DeleteUser("x").has_value());
    ASSERT_TRUE(b.DeleteVhost("gone").has_value());
    ASSERT_TRUE(b.DeleteVhost("/").has_value());
    persister.Commit();
    store.reset();  // drains the submitted batch
  }
  auto store = storage::testing::OpenOrDie(dir.path());
  Broker b;
  journal::StoreJournal journal(*store);
  Persister persister(&journal, post);
  RecoveryStats stats;
  ASSERT_TRUE(RecoverBroker(*store, b, persister, {"admin", "adminpw"}, &stats).ok());
  EXPECT_EQ(b.ListVhosts(), std::vector<std::string>{"dev"});
  EXPECT_EQ(stats.queues, 0u);
  EXPECT_EQ(b.FindUser("x"), nullptr);
  ASSERT_NE(b.FindUser("u"), nullptr);
  EXPECT_EQ(b.FindUser("u")->tags, std::vector<std::string>{"management"});
  EXPECT_NE(b.Authenticate("u", "pw2"), nullptr);
  EXPECT_NE(b.Authenticate("admin", "adminpw"), nullptr);
  EXPECT_FALSE(b.HasVhostAccess("admin", "/"));
  ASSERT_NE(b.FindPermission("u", "dev"), nullptr);
  EXPECT_EQ(b.FindPermission("u", "dev")->read, "^r");
  EXPECT_TRUE(b.CheckAccess("u", "dev", AccessKind::kRead, ResourceKind::kQueue, "rq").has_value());
  EXPECT_FALSE(b.CheckAccess("u", "dev", AccessKind::kRead, ResourceKind::kQueue, "q").has_value());
  EXPECT_EQ(b.ListPermissions().size(), 1u);
  store.reset();
}

TEST(DefinitionsTest, ImportsExchangesQueuesBindingsAndExportsThem) {
  Broker b;
  const std::string json = R"({
    "vhosts": [{"name": "v"}],
    "exchanges": [{"name": "x", "vhost": "v", "type": "topic", "durable": true, "auto_delete": false,
                   "internal": false, "arguments": {}}],
    "queues": [{"name": "q", "vhost": "v", "durable": true, "auto_delete": false,
                "arguments": {"x-message-ttl": 1000}}],
    "bindings": [{"source": "x", "vhost": "v", "destination": "q", "destination_type": "queue",
                  "routing_key": "a.*", "arguments": {"k": "v"}},
                 {"source": "amq.topic", "vhost": "v", "destination": "x", "destination_type": "exchange",
                  "routing_key": "#", "arguments": {}}],
    "policies": []
  })";
  auto loaded = LoadDefinitions(b, json);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().text;
  EXPECT_EQ(loaded->exchanges, 1u);
  EXPECT_EQ(loaded->queues, 1u);
  EXPECT_EQ(loaded->bindings, 2u);
  EXPECT_TRUE(loaded->ignored.empty());
  Vhost* v = b.FindVhost("v");
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(v->exchanges().contains("x"));
  EXPECT_EQ(v->exchanges().at("x")->type(), ExchangeType::kTopic);
  EXPECT_EQ(v->exchanges().at("x")->bindings().size(), 1u);
  ASSERT_TRUE(v->queues().contains("q"));
  EXPECT_NE(v->queues().at("q")->options().arguments.Find("x-message-ttl"), nullptr);

  // The export loads into a fresh broker and exports the same.
  const std::string exported = ExportDefinitions(b);
  Broker b2;
  auto again = LoadDefinitions(b2, exported);
  ASSERT_TRUE(again.has_value()) << again.error().text;
  EXPECT_EQ(ExportDefinitions(b2), exported);
  // And loading twice is idempotent.
  ASSERT_TRUE(LoadDefinitions(b, exported).has_value());
  EXPECT_EQ(ExportDefinitions(b), exported);
}

TEST(DefinitionsTest, RejectsBadQueuesExchangesBindingsWithoutChanges) {
  Broker b;
  auto error = [&](std::string_view json) {
    auto r = LoadDefinitions(b, json);
    return r ? std::string("(loaded)") : r.error().text;
  };
  const std::string vhost = R"("vhosts": [{"name": "v"}], )";
  EXPECT_NE(error("{" + vhost + R"("exchanges": [{"name": "x", "vhost": "v", "type": "nope"}]})").find("nope"),
            std::string::npos);
  EXPECT_NE(error(R"({"queues": [{"name": "q", "vhost": "missing"}]})").find("unknown vhost 'missing'"),
            std::string::npos);
  EXPECT_NE(error("{" + vhost + R"("bindings": [{"source": "x", "vhost": "v", "destination": "q",
                                                 "destination_type": "queue"}]})")
                .find("unknown exchange 'x'"),
            std::string::npos);
  EXPECT_NE(error("{" + vhost + R"("queues": [{"name": "q", "vhost": "v", "arguments": {"x-max-length": -1}}]})")
                .find("x-max-length"),
            std::string::npos);
  EXPECT_NE(error("{" + vhost + R"("exchanges": [{"name": "amq.mine", "vhost": "v", "type": "direct"}]})")
                .find("reserved"),
            std::string::npos);
  EXPECT_EQ(b.FindVhost("v"), nullptr);  // nothing was applied
}

}  // namespace
}  // namespace warren::broker
