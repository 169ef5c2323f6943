// Server + Connection with a real socket: deleting a user or a vhost force-closes the connections
// that use it (320 CONNECTION_FORCED), through the Broker hooks the Server sets.
#include "server/net/server.h"

#include <gtest/gtest.h>

#include <string>

#include "server/net/test_server.h"

namespace warren::net {
namespace {

namespace m = amqp::method;
using test::Client;

class ServerTest : public test::ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    StartServer();
  }
};

TEST_F(ServerTest, DeletingAUserClosesItsConnections) {
  Client a(server_->port()), other(server_->port());
  a.Open("u1", "pw", "/");
  other.Open("u2", "pw", "/");
  OnBrokerThread([this] { ASSERT_TRUE(broker_.DeleteUser("u1").has_value()); });
  EXPECT_EQ(a.ExpectClose(), "320 CONNECTION_FORCED - user 'u1' is deleted");
  // u2's connection is untouched: it can still open a channel.
  other.Send(1, m::ChannelOpen{});
  other.Expect<m::ChannelOpenOk>();
}

TEST_F(ServerTest, DeletingAVhostClosesItsConnections) {
  Client in_dev(server_->port()), in_root(server_->port());
  in_dev.Open("u1", "pw", "dev");
  in_root.Open("u1", "pw", "/");
  in_dev.Send(1, m::ChannelOpen{});
  in_dev.Expect<m::ChannelOpenOk>();
  in_dev.Send(1, m::QueueDeclare{.queue = "q", .exclusive = true, .arguments = {}});
  in_dev.Expect<m::QueueDeclareOk>();
  OnBrokerThread([this] { ASSERT_TRUE(broker_.DeleteVhost("dev").has_value()); });
  EXPECT_EQ(in_dev.ExpectClose(), "320 CONNECTION_FORCED - vhost 'dev' is deleted");
  in_root.Send(1, m::ChannelOpen{});
  in_root.Expect<m::ChannelOpenOk>();
  // The vhost is gone for new connections too.
  Client late(server_->port());
  late.Expect<m::ConnectionStart>();
  std::string response = std::string(1, '\0') + "u1" + '\0' + "pw";
  late.Send(0, m::ConnectionStartOk{.client_properties = {}, .mechanism = "PLAIN", .response = response,
                                    .locale = "en_US"});
  late.Expect<m::ConnectionTune>();
  late.Send(0, m::ConnectionTuneOk{.channel_max = 16, .frame_max = 131072, .heartbeat = 0});
  late.Send(0, m::ConnectionOpen{.virtual_host = "dev", .reserved_1 = "", .reserved_2 = false});
  EXPECT_EQ(late.ExpectClose(), "530 NOT_ALLOWED - vhost dev not found");
}

}  // namespace
}  // namespace warren::net
