#include "server/broker/password.h"

#include <gtest/gtest.h>


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
  const uint64_t before = PasswordChecksComputed();
  EXPECT_EQ(broker.Authenticate("known", "wrong"), nullptr);
  EXPECT_EQ(PasswordChecksComputed(), before + 1);
  EXPECT_EQ(broker.Authenticate("nobody", "wrong"), nullptr);
  EXPECT_EQ(PasswordChecksComputed(), before + 2);
}

}  // namespace
}  // namespace warren::broker
