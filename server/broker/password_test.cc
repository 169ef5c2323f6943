#include "server/broker/password.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "server/broker/broker.h"

namespace warren::broker {
namespace {

TEST(PasswordTest, HashThenCheck) {
  std::string h = HashPassword("s3cret");
  EXPECT_TRUE(CheckPassword(h, "s3cret"));
  EXPECT_FALSE(CheckPassword(h, "s3creT"));
  EXPECT_FALSE(CheckPassword(h, ""));
  EXPECT_NE(HashPassword("s3cret"), h);  // salted
}

TEST(PasswordTest, AcceptsRabbitMqExport) {
  // Hashes from `rabbitmqctl export_definitions` of Debian's RabbitMQ 3.10.8.
  EXPECT_TRUE(CheckPassword("uQuCvkRvWw5TY4Y9cwAfvzMdjbNJkv1ah7ugJ7WYpTkpByY4", "hunter2"));
  EXPECT_TRUE(CheckPassword("2n5MmKb8jbcWuydwEKrXd7HiIuoeqpcUYLKS/myodogcQX0r", "guest"));
  EXPECT_FALSE(CheckPassword("2n5MmKb8jbcWuydwEKrXd7HiIuoeqpcUYLKS/myodogcQX0r", "guest2"));
  EXPECT_EQ(HashPassword("guest").size(), 48u);  // base64 of 4 + 32 bytes
}

TEST(PasswordTest, RejectsMalformedHashes) {
  EXPECT_FALSE(CheckPassword("", "x"));
  EXPECT_FALSE(CheckPassword("not base64!", "x"));
  EXPECT_FALSE(CheckPassword("AAAA", "x"));
}

// An unknown user costs a hash as a known one does: the reply time is no user-existence oracle.
// Coarse on purpose (the fastest of 20 interleaved batches, a factor of 3 apart): before the dummy
// hash, an unknown user cost a map miss, some 20 times less than a hash.
TEST(PasswordTest, UnknownUserCostsAHashToo) {
  Broker broker;
  ASSERT_TRUE(broker.AddUser("known", HashPassword("right")).has_value());
  auto batch = [&](std::string_view user) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 500; ++i) EXPECT_EQ(broker.Authenticate(user, "wrong"), nullptr);
    return std::chrono::steady_clock::now() - start;
  };
  auto known = std::chrono::steady_clock::duration::max(), unknown = known;
  for (int round = 0; round < 20; ++round) {
    known = std::min(known, batch("known"));
    unknown = std::min(unknown, batch("nobody"));
  }
  EXPECT_GT(unknown * 3, known);
}

}  // namespace
}  // namespace warren::broker
