#include "server/broker/policy.h"

#include <gtest/gtest.h>

#include "server/amqp/properties.h"
#include "server/broker/queue_features.h"
#include "server/broker/stream.h"
#include "server/broker/vhost.h"

namespace warren::broker {
namespace {

amqp::FieldTable Table(std::initializer_list<std::pair<std::string, amqp::FieldValue>> entries) {
  amqp::FieldTable t;
  for (const auto& e : entries) t.entries.push_back(e);
  return t;
}

Policy MakePolicy(std::string name, std::string pattern, amqp::FieldTable definition, int64_t priority = 0,
                  PolicyApplyTo apply_to = PolicyApplyTo::kAll) {
  return Policy{"/", std::move(name), std::move(pattern), apply_to, priority, std::move(definition)};
}

MessageRef Msg() {
  std::string raw;
  amqp::ByteWriter w(raw);
  amqp::EncodeProperties(amqp::BasicProperties{}, w);
  MessageRef m = Message::Create("", "q", raw, 1, nullptr);
  m->FillBody("x");
  return m;
}

std::string Text(const Result<>& r) { return r ? std::string("ok") : r.error().text; }

TEST(PolicyTest, ValidatesAsRabbitMQ) {
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"message-ttl", int64_t{5}}}))), "ok");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, {})), "no policy provided");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"message-ttl", int64_t{-1}}}))),
            "-1 is not a valid message TTL");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"message-ttl", std::string("x")}}))),
            "<<\"x\">> is not a valid message TTL");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"expires", int64_t{0}}}))),
            "0 is not a valid queue expiry");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"foo", int64_t{1}}, {"bar", int64_t{2}}}))),
            "[{<<\"bar\">>,2},{<<\"foo\">>,1}] are not recognised policy settings");
  // Values first (in key order), unknown keys after.
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy,
                                          Table({{"zz", int64_t{1}}, {"max-length", int64_t{-1}},
                                                 {"alternate-exchange", int64_t{5}}}))),
            "5 is not a valid alternate exchange name");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"max-priority", int64_t{5}}}))),
            "[{<<\"max-priority\">>,5}] are not recognised policy settings");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"ha-mode", std::string("exactly")}}))),
            "ha-mode=\"exactly\" takes an integer, none given");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"ha-mode", std::string("all")},
                                                                       {"ha-sync-mode", std::string("x")}}))),
            "ha-sync-mode must be \"manual\" or \"automatic\", got <<\"x\">>");
  // Operator policies take the numeric limits only.
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kOperatorPolicy, Table({{"max-length", int64_t{1}}}))), "ok");
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kOperatorPolicy, Table({{"overflow", std::string("drop-head")}}))),
            "[{<<\"overflow\">>,<<\"drop-head\">>}] are not recognised policy settings");
}

TEST(PolicyTest, HighestPriorityMatchWinsTiesToTheLowestName) {
  PolicyTable t(PolicyKind::kPolicy);
  ASSERT_TRUE(t.Set(MakePolicy("b", "^q", Table({{"max-length", int64_t{1}}}), 1)));
  ASSERT_TRUE(t.Set(MakePolicy("a", "^q", Table({{"max-length", int64_t{2}}}), 1)));
  ASSERT_TRUE(t.Set(MakePolicy("low", "", Table({{"max-length", int64_t{3}}}), 0)));
  ASSERT_TRUE(t.Set(MakePolicy("ex", "^q", Table({{"alternate-exchange", std::string("ae")}}), 9,
                               PolicyApplyTo::kExchanges)));
  EXPECT_EQ(t.Match("q1", QueueType::kClassic)->name, "a");
  EXPECT_EQ(t.Match("other", QueueType::kClassic)->name, "low");  // an empty pattern matches everything
  EXPECT_EQ(t.Match("q1", std::nullopt)->name, "ex");
  ASSERT_TRUE(t.Set(MakePolicy("low", "", Table({{"max-length", int64_t{3}}}), 5)));
  EXPECT_EQ(t.Match("q1", QueueType::kClassic)->name, "low");
  EXPECT_TRUE(t.Remove("low"));
  EXPECT_FALSE(t.Remove("low"));
  EXPECT_EQ(t.Match("other", QueueType::kClassic), nullptr);
}

TEST(PolicyTest, LimitsPatternLengthAndCount) {
  PolicyTable t(PolicyKind::kPolicy);
  EXPECT_TRUE(t.Set(MakePolicy("p", std::string(kMaxPolicyPatternBytes, 'a'), Table({{"expires", int64_t{1}}}))));
  auto refused = t.Set(MakePolicy("p2", std::string(kMaxPolicyPatternBytes + 1, 'a'), Table({{"expires", int64_t{1}}})));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().text, "pattern should be at most 1024 bytes, actually was 1025");
  EXPECT_FALSE(t.Set(MakePolicy("p3", "(?=a)", Table({{"expires", int64_t{1}}}))));  // RE2 refuses lookahead
  for (size_t i = t.size(); i < kMaxPoliciesPerVhost; ++i) {
    ASSERT_TRUE(t.Set(MakePolicy("n" + std::to_string(i), "x", Table({{"expires", int64_t{1}}}))));
  }
  EXPECT_FALSE(t.Set(MakePolicy("one-more", "x", Table({{"expires", int64_t{1}}}))));
  EXPECT_TRUE(t.Set(MakePolicy("p", "y", Table({{"expires", int64_t{2}}}))));  // replacing is fine
}

TEST(PolicyTest, EffectiveArgumentsFollowRabbitMQsPrecedence) {
  const Policy policy = MakePolicy("p", ".*",
                                   Table({{"dead-letter-exchange", std::string("from-policy")},
                                          {"max-length", int64_t{5}},
                                          {"message-ttl", int64_t{5000}},
                                          {"overflow", std::string("reject-publish")}}));
  const Policy op = MakePolicy("op", ".*", Table({{"max-length", int64_t{10}}, {"message-ttl", int64_t{1000}},
                                                  {"delivery-limit", int64_t{3}}}));
  // The operator policy's smaller values win over the policy's.
  const amqp::FieldTable merged = EffectivePolicyDefinition(&policy, &op);
  EXPECT_EQ(merged.Find("max-length")->AsInt(), 5);
  EXPECT_EQ(merged.Find("message-ttl")->AsInt(), 1000);
  EXPECT_EQ(merged.Find("delivery-limit")->AsInt(), 3);

  const amqp::FieldTable declared = Table({{"x-max-length", int64_t{20}},
                                           {"x-dead-letter-exchange", std::string("declared")},
                                           {"x-delivery-limit", int64_t{1}},
                                           {"x-overflow", std::string("drop-head")}});
  const QueueArguments classic =
      ParseValidQueueArguments(EffectiveQueueArguments(QueueType::kClassic, declared, &policy, &op));
  EXPECT_EQ(classic.max_length, 5u);                          // numeric: the smaller
  EXPECT_EQ(classic.delivery_limit, 1u);                      // the declared one is smaller
  EXPECT_EQ(classic.message_ttl, 1000u);                      // from the operator policy
  EXPECT_EQ(classic.dead_letter_exchange, "declared");        // the x-argument beats the policy
  EXPECT_EQ(classic.overflow, Overflow::kDropHead);           // likewise
  const QueueArguments quorum =
      ParseValidQueueArguments(EffectiveQueueArguments(QueueType::kQuorum, declared, &policy, &op));
  EXPECT_EQ(quorum.overflow, Overflow::kRejectPublish);  // quorum queues: the policy's strategy
  EXPECT_EQ(EffectiveQueueArguments(QueueType::kClassic, declared, nullptr, nullptr), declared);
  EXPECT_EQ(EffectiveQueueArguments(QueueType::kStream, declared, &policy, &op), declared);
}

TEST(PolicyTest, StreamRetentionTakesTheSmallerOfArgumentAndPolicy) {
  const Policy policy = MakePolicy("p", ".*", Table({{"max-length-bytes", int64_t{3000}},
                                                     {"max-age", std::string("2h")},
                                                     {"stream-max-segment-size-bytes", int64_t{500000}}}));
  const amqp::FieldTable declared = Table({{"x-max-length-bytes", int64_t{100000}}, {"x-max-age", std::string("1h")}});
  const StreamArguments stream =
      ParseValidStreamArguments(EffectiveQueueArguments(QueueType::kStream, declared, &policy, nullptr));
  EXPECT_EQ(stream.max_length_bytes, 3000u);    // the policy's is smaller
  EXPECT_EQ(stream.max_age_seconds, 3600);      // the declared hour beats the policy's two
  EXPECT_EQ(stream.max_segment_bytes, 500000u);  // only the policy sets it
  EXPECT_EQ(Text(ValidatePolicyDefinition(PolicyKind::kPolicy, Table({{"max-age", std::string("1x")}}))),
            "<<\"1x\">> is not a valid max age");
}

TEST(PolicyTest, QuorumQueuesAndStreamsSkipPoliciesWithKeysTheyCannotUse) {
  const Policy lazy = MakePolicy("p", ".*", Table({{"max-length", int64_t{2}}, {"queue-mode", std::string("lazy")}}));
  const Policy stream = MakePolicy("s", ".*", Table({{"max-length-bytes", int64_t{2}}}));
  EXPECT_TRUE(PolicyAppliesTo(QueueType::kClassic, lazy));
  EXPECT_FALSE(PolicyAppliesTo(QueueType::kQuorum, lazy));
  EXPECT_FALSE(PolicyAppliesTo(QueueType::kStream, lazy));
  EXPECT_TRUE(PolicyAppliesTo(QueueType::kStream, stream));
  EXPECT_TRUE(PolicyAppliesTo(QueueType::kQuorum, stream));
  PolicyTable t(PolicyKind::kPolicy);
  ASSERT_TRUE(t.Set(MakePolicy("high", ".*", lazy.definition, 5)));
  ASSERT_TRUE(t.Set(MakePolicy("low", ".*", Table({{"max-length", int64_t{3}}}), 1)));
  EXPECT_EQ(t.Match("q", QueueType::kClassic)->name, "high");
  EXPECT_EQ(t.Match("q", QueueType::kQuorum)->name, "low");  // as RabbitMQ 3.10 applies it
  EXPECT_EQ(t.Match("q", QueueType::kStream), nullptr);
}

TEST(PolicyTest, AlternateExchangeArgumentBeatsPolicy) {
  const Policy policy = MakePolicy("p", ".*", Table({{"alternate-exchange", std::string("pae")}}));
  EXPECT_EQ(EffectiveAlternateExchange({}, &policy), "pae");
  EXPECT_EQ(EffectiveAlternateExchange(Table({{"alternate-exchange", std::string("arg")}}), &policy), "arg");
  EXPECT_EQ(EffectiveAlternateExchange({}, nullptr), std::nullopt);
}

TEST(PolicyTest, VhostAppliesPoliciesToNewAndExistingQueuesAtOnce) {
  Vhost v("/");
  ASSERT_TRUE(v.DeclareQueue("q-old", false, QueueOptions{}, 1));
  auto& q = *v.queues().at("q-old");
  for (int i = 0; i < 5; ++i) q.Enqueue(Msg());
  ASSERT_TRUE(v.SetPolicy(PolicyKind::kPolicy, MakePolicy("lim", "^q-", Table({{"max-length", int64_t{2}}}))));
  EXPECT_EQ(q.policy(), "lim");
  EXPECT_EQ(q.ready_count(), 2u);  // drop-head applied at once
  ASSERT_TRUE(v.DeclareQueue("q-new", false, QueueOptions{}, 1));
  EXPECT_EQ(v.queues().at("q-new")->policy(), "lim");
  ASSERT_TRUE(v.DeclareQueue("other", false, QueueOptions{}, 1));
  EXPECT_EQ(v.queues().at("other")->policy(), "");
  ASSERT_TRUE(v.ClearPolicy(PolicyKind::kPolicy, "lim"));
  EXPECT_EQ(q.policy(), "");
  for (int i = 0; i < 5; ++i) q.Enqueue(Msg());
  EXPECT_EQ(q.ready_count(), 7u);
  EXPECT_FALSE(v.ClearPolicy(PolicyKind::kPolicy, "lim"));
  // Exchanges: the policy's alternate exchange, until cleared.
  ASSERT_TRUE(v.SetPolicy(PolicyKind::kPolicy, MakePolicy("ae", "^amq\\.direct$",
                                                          Table({{"alternate-exchange", std::string("amq.fanout")}}))));
  ASSERT_NE(v.exchanges().at("amq.direct")->alternate_exchange(), nullptr);
  EXPECT_EQ(*v.exchanges().at("amq.direct")->alternate_exchange(), "amq.fanout");
  ASSERT_TRUE(v.ClearPolicy(PolicyKind::kPolicy, "ae"));
  EXPECT_EQ(v.exchanges().at("amq.direct")->alternate_exchange(), nullptr);
  // An invalid definition changes nothing.
  auto refused = v.SetPolicy(PolicyKind::kPolicy, MakePolicy("bad", ".*", Table({{"max-length", int64_t{-1}}})));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().text, "-1 is not a valid maximum length");
  EXPECT_TRUE(v.policies(PolicyKind::kPolicy).empty());
}

}  // namespace
}  // namespace warren::broker
