// Which protocol header selects which dialect: the answers RabbitMQ 3.10.8 gives.
#include "server/amqp/protocol.h"

#include <gtest/gtest.h>

#include <string>

#include "server/amqp/constants.h"

namespace warren::amqp {
namespace {

using namespace std::string_literals;

TEST(ProtocolTest, ServedHeaders) {
  EXPECT_EQ(ProtocolForHeader(kProtocolHeader), Protocol::k0_9_1);
  EXPECT_EQ(ProtocolForHeader("AMQP\x01\x01\x00\x09"s), Protocol::k0_9_1);
  EXPECT_EQ(ProtocolForHeader("AMQP\x01\x01\x08\x00"s), Protocol::k0_8);
  EXPECT_EQ(ProtocolForHeader("AMQP\x01\x01\x09\x01"s), Protocol::k0_8);
}

TEST(ProtocolTest, RefusedHeaders) {
  for (std::string header : {"AMQP\x00\x00\x0a\x00"s, "AMQP\x01\x01\x00\x0a"s, "AMQP\x00\x00\x08\x00"s,
                             "AMQP\x00\x00\x09\x00"s, "AMQP\x00\x01\x00\x00"s, "AMQP\x03\x01\x00\x00"s,
                             "BOGUSHDR"s, "GET / HT"s, "\0\0\0\0\0\0\0\0"s}) {
    EXPECT_FALSE(ProtocolForHeader(header).has_value()) << header;
  }
}

TEST(ProtocolTest, StartVersion) {
  EXPECT_EQ(StartVersion(Protocol::k0_9_1).major, 0);
  EXPECT_EQ(StartVersion(Protocol::k0_9_1).minor, 9);
  EXPECT_EQ(StartVersion(Protocol::k0_8).major, 8);
  EXPECT_EQ(StartVersion(Protocol::k0_8).minor, 0);
}

TEST(ProtocolTest, Name) {
  EXPECT_EQ(ProtocolName(Protocol::k0_9_1), "AMQP 0-9-1");
  EXPECT_EQ(ProtocolName(Protocol::k0_8), "AMQP 0-8");
}

}  // namespace
}  // namespace warren::amqp
