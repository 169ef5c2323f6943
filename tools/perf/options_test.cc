#include "tools/perf/options.h"

#include <gtest/gtest.h>

namespace warren::perf {
namespace {

TEST(ParseAmqpUriTest, FullAndDefaults) {
  auto uri = ParseAmqpUri("amqp://u%40x:p%3Aw@broker:5680/v%2Fh");
  ASSERT_TRUE(uri.has_value()) << uri.error();
  EXPECT_FALSE(uri->tls);
  EXPECT_EQ(uri->user, "u@x");
  EXPECT_EQ(uri->password, "p:w");
  EXPECT_EQ(uri->host, "broker");
  EXPECT_EQ(uri->port, 5680);
  EXPECT_EQ(uri->vhost, "v/h");

  uri = ParseAmqpUri("amqps://localhost");
  ASSERT_TRUE(uri.has_value());
  EXPECT_TRUE(uri->tls);
  EXPECT_EQ(uri->port, 5671);
  EXPECT_EQ(uri->user, "guest");
  EXPECT_EQ(uri->vhost, "/");

  uri = ParseAmqpUri("amqp://[::1]:1234/%2F");
  ASSERT_TRUE(uri.has_value());
  EXPECT_EQ(uri->host, "::1");
  EXPECT_EQ(uri->port, 1234);
  EXPECT_EQ(uri->vhost, "/");
}

TEST(ParseAmqpUriTest, Rejects) {
  for (const char* bad : {"http://h", "amqp://h:0", "amqp://h:65536", "amqp://h:x", "amqp://h/%2",
                          "amqp://h/%zz", "amqp://[::1", "amqp://[::1]x"})
    EXPECT_FALSE(ParseAmqpUri(bad).has_value()) << bad;
}

TEST(ParseQueueArgsTest, IntegersAndStrings) {
  auto args = ParseQueueArgs("x-queue-type=quorum,x-max-length=1000,x-neg=-5,x-empty=");
  ASSERT_TRUE(args.has_value()) << args.error();
  ASSERT_EQ(args->entries.size(), 4u);
  EXPECT_EQ(*args->Find("x-queue-type")->AsString(), "quorum");
  EXPECT_EQ(args->Find("x-max-length")->AsInt(), 1000);
  EXPECT_EQ(args->Find("x-neg")->AsInt(), -5);
  EXPECT_EQ(*args->Find("x-empty")->AsString(), "");
  EXPECT_TRUE(ParseQueueArgs("")->entries.empty());
  EXPECT_FALSE(ParseQueueArgs("novalue").has_value());
  EXPECT_FALSE(ParseQueueArgs("=v").has_value());
}

TEST(OptionsTest, QueuesAndRouting) {
  Options o;
  EXPECT_EQ(o.QueueNames(), std::vector<std::string>{"warren-perf"});
  o.queue = "q";
  o.queues = 3;
  EXPECT_EQ(o.QueueNames(), (std::vector<std::string>{"q-1", "q-2", "q-3"}));
  EXPECT_EQ(o.RoutingKeyFor("q-2"), "q-2");
  EXPECT_EQ(o.QueuesReachedFrom("q-2"), 1);
  o.exchange = "x";
  EXPECT_EQ(o.QueuesReachedFrom("q-2"), 1);
  o.routing_key = "k";
  EXPECT_EQ(o.RoutingKeyFor("q-2"), "k");
  EXPECT_EQ(o.QueuesReachedFrom("q-2"), 3);
  o.routing_key.clear();
  o.exchange_type = "fanout";
  EXPECT_EQ(o.QueuesReachedFrom("q-2"), 3);
}

}  // namespace
}  // namespace warren::perf
