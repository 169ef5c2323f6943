// Connection's state machine over a real loopback socket: protocol headers, the pre-tune frame
// limit, the read buffer held only for a frame not received whole, channel_max, a reset right after login, the
// login throttle and the connection limit.
#include "server/net/connection.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "server/net/test_server.h"

namespace warren::net {
namespace {

namespace m = amqp::method;
using test::Client;

class ConnectionTest : public test::ServerFixture {};

std::shared_ptr<Connection> OnlyConnection(const Server& server) {
  return server.connections().size() == 1 ? server.connections().begin()->second : nullptr;
}

TEST_F(ConnectionTest, Amqp09HeaderIsServedAs091) {
  StartServer();
  Client c(port(), std::string_view("AMQP\x01\x01\x00\x09", 8));
  auto start = c.Expect<m::ConnectionStart>();
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(start->version_major, 0);
  EXPECT_EQ(start->version_minor, 9);
}

TEST_F(ConnectionTest, Amqp08HeadersGetStart80WithoutCapabilities) {
  StartServer();
  for (std::string_view header :
       {std::string_view("AMQP\x01\x01\x08\x00", 8), std::string_view("AMQP\x01\x01\x09\x01", 8)}) {
    Client c(port(), header);
    auto start = c.Expect<m::ConnectionStart>();  // the same bytes in 0-8 and 0-9-1
    ASSERT_TRUE(start.has_value());
    EXPECT_EQ(start->version_major, 8);
    EXPECT_EQ(start->version_minor, 0);
    const amqp::FieldTable* caps = start->server_properties.Find("capabilities")->AsTable();
    ASSERT_NE(caps, nullptr);
    EXPECT_TRUE(caps->entries.empty());
  }
}

TEST_F(ConnectionTest, OtherHeadersGetThe091HeaderAndAClosedSocket) {
  StartServer();
  for (std::string_view header :
       {std::string_view("AMQP\x00\x01\x00\x00", 8), std::string_view("GET / HTTP/1.1\r\n")}) {
    Client c(port(), header);
    EXPECT_EQ(c.Read(9), amqp::kProtocolHeader);  // then EOF
  }
}

TEST_F(ConnectionTest, StartAdvertisesRabbitMQsCapabilities) {
  StartServer();
  Client c(port());
  auto start = c.Expect<m::ConnectionStart>();
  ASSERT_TRUE(start.has_value());
  const amqp::FieldTable* caps = start->server_properties.Find("capabilities")->AsTable();
  ASSERT_NE(caps, nullptr);
  for (const char* cap : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
                          "connection.blocked", "consumer_priorities", "authentication_failure_close",
                          "per_consumer_qos", "direct_reply_to"}) {
    ASSERT_NE(caps->Find(cap), nullptr) << cap;
    EXPECT_TRUE(caps->Find(cap)->AsBool().value_or(false)) << cap;
  }
}

TEST_F(ConnectionTest, FrameLargerThan4096BeforeTuneOkIsClosedSilently) {
  StartServer();
  Client c(port());
  c.Expect<m::ConnectionStart>();
  // A start-ok frame header announcing 4,097 octets: RabbitMQ answers nothing and closes.
  c.SendRaw(std::string("\x01\x00\x00\x00\x00\x10\x01", 7) + std::string(4097, 'x') + "\xce");
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ClosedSilently());
  EXPECT_GE(std::chrono::steady_clock::now() - before, std::chrono::seconds(2));  // the silent-close delay
}

TEST_F(ConnectionTest, StartOkOf4096OctetsIsAccepted) {
  StartServer();
  Client c(port());
  c.Expect<m::ConnectionStart>();
  amqp::FieldTable props;
  props.entries.emplace_back("pad", amqp::FieldValue(std::string(10, 'p')));
  const std::string response = Client::Plain("u1", "pw");
  m::ConnectionStartOk ok{.client_properties = props, .mechanism = "PLAIN", .response = response, .locale = "en_US"};
  OutputBuffer probe;
  WriteMethodFrame(probe, 0, ok);
  const size_t pad = 4096 - (probe.size() - amqp::kFrameOverhead);
  props.entries[0].second = amqp::FieldValue(std::string(10 + pad, 'p'));
  ok.client_properties = props;
  OutputBuffer out;
  WriteMethodFrame(out, 0, ok);
  ASSERT_EQ(out.size(), 4096 + amqp::kFrameOverhead);
  c.SendRaw(out.bytes());
  c.Expect<m::ConnectionTune>();
}

TEST_F(ConnectionTest, ReadBufferIsHeldOnlyForAFrameThatHasNotArrivedWhole) {
  StartServer();
  Client c(port());
  ASSERT_TRUE(WaitFor([&] { return OnlyConnection(*server_) != nullptr; }));
  // Run on the broker thread (by WaitFor).
  auto capacity = [&] { return OnlyConnection(*server_)->read_buffer_capacity(); };
  auto accounted = [&] { return broker_.memory().used(broker::MemoryUse::kConnectionBuffers); };
  c.Open("u1", "pw", "/");
  EXPECT_TRUE(WaitFor([&] { return capacity() == 0 && accounted() == Server::kReadArenaBytes; }));

  // A large frame (a heartbeat with a payload, which is ignored) in two halves: the first is kept
  // at the frame's size until the second comes, then given back.
  constexpr uint32_t kPayload = 100000;
  std::string frame = {'\x08', '\x00', '\x00'};
  for (int shift = 24; shift >= 0; shift -= 8) frame += static_cast<char>((kPayload >> shift) & 0xff);
  frame += std::string(kPayload, 'h') + '\xce';
  c.SendRaw(std::string_view(frame).substr(0, 50000));
  EXPECT_TRUE(WaitFor(
      [&] { return capacity() == frame.size() && accounted() >= Server::kReadArenaBytes + frame.size(); }));
  c.SendRaw(std::string_view(frame).substr(50000));
  c.Send(1, m::ChannelOpen{});
  ASSERT_TRUE(c.Expect<m::ChannelOpenOk>().has_value());
  EXPECT_TRUE(WaitFor([&] { return capacity() == 0; }));

  // A small frame split after a few octets: those few are kept, then given back.
  OutputBuffer open;
  WriteMethodFrame(open, 2, m::ChannelOpen{});
  c.SendRaw(std::string_view(open.bytes()).substr(0, 3));
  EXPECT_TRUE(WaitFor([&] { return capacity() == 3; }));
  c.SendRaw(std::string_view(open.bytes()).substr(3));
  ASSERT_TRUE(c.Expect<m::ChannelOpenOk>().has_value());
  EXPECT_TRUE(WaitFor([&] { return capacity() == 0 && accounted() == Server::kReadArenaBytes; }));
}

TEST_F(ConnectionTest, ChannelMaxCountsOpenChannelsNotTheirNumbers) {
  StartServer();
  Client c(port());
  c.Open("u1", "pw", "/", /*channel_max=*/2);
  c.Send(3000, m::ChannelOpen{});
  c.Expect<m::ChannelOpenOk>();
  c.Send(65535, m::ChannelOpen{});
  c.Expect<m::ChannelOpenOk>();
  c.Send(3000, m::ChannelClose{.reply_code = 200, .reply_text = "", .class_id = 0, .method_id = 0});
  c.Expect<m::ChannelCloseOk>();
  c.Send(9, m::ChannelOpen{});  // a slot is free again
  c.Expect<m::ChannelOpenOk>();
  c.Send(7, m::ChannelOpen{});
  EXPECT_EQ(c.ExpectClose(),
            "530 NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)");
}

TEST_F(ConnectionTest, ResetRightAfterAGuestLoginBurstDoesNotThrow) {
  StartServer();
  for (int i = 0; i < 20; ++i) {
    Client c(port(), "");
    OutputBuffer burst;
    burst.bytes() += amqp::kProtocolHeader;
    const std::string response = Client::Plain("guest", "guest");
    WriteMethodFrame(burst, 0,
                     m::ConnectionStartOk{.client_properties = {}, .mechanism = "PLAIN", .response = response,
                                          .locale = "en_US"});
    c.SendRaw(burst.bytes());
    const linger reset{.l_onoff = 1, .l_linger = 0};
    ASSERT_EQ(::setsockopt(c.socket().native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  }  // each Client closes with RST here
  ASSERT_TRUE(WaitFor([&] { return server_->connections().empty(); }));
  Client ok(port());
  ok.Open("guest", "guest", "/");
}

TEST_F(ConnectionTest, RepeatedFailedLoginsFromOneAddressAreThrottled) {
  ServerOptions options;
  options.login_throttle.max_failures = 3;
  StartServer(options);
  for (int i = 0; i < 3; ++i) {
    Client c(port());
    c.Expect<m::ConnectionStart>();
    c.StartOk("u1", "wrong");
    EXPECT_FALSE(c.Next().has_value());  // no authentication_failure_close: just closed
  }
  // The right password is now refused too, from this address.
  Client c(port());
  c.Expect<m::ConnectionStart>();
  c.StartOk("u1", "pw");
  EXPECT_FALSE(c.Next().has_value());
}

TEST_F(ConnectionTest, OverMaxConnectionsNewClientsWaitUntilOneCloses) {
  ServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  auto a = std::make_unique<Client>(port());
  Client b(port());
  a->Expect<m::ConnectionStart>();
  b.Expect<m::ConnectionStart>();
  Client waiting(port());  // connected by the kernel, not accepted
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ConnectionCount(), 2u);
  a.reset();
  waiting.Expect<m::ConnectionStart>();
  EXPECT_EQ(ConnectionCount(), 2u);
}

}  // namespace
}  // namespace warren::net
