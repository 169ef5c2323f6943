// Server + Connection with a real socket: deleting a user or a vhost force-closes the connections
// that use it (320 CONNECTION_FORCED), through the Broker hooks the Server sets.
#include "server/net/server.h"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "server/amqp/byte_buffer.h"
#include "server/broker/password.h"
#include "server/net/frame_writer.h"

namespace warren::net {
namespace {

namespace m = amqp::method;

// A blocking AMQP client speaking just enough of the protocol.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(io_) {
    socket_.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::write(socket_, asio::buffer(std::string_view("AMQP\x00\x00\x09\x01", 8)));
  }

  template <typename M>
  void Send(uint16_t channel, const M& method) {
    OutputBuffer out;
    WriteMethodFrame(out, channel, method);
    asio::write(socket_, asio::buffer(out.bytes()));
  }

  // The next method frame's payload (heartbeats skipped).
  amqp::Method Next() {
    for (;;) {
      char header[7];
      asio::read(socket_, asio::buffer(header, sizeof(header)));
      amqp::ByteReader r(std::string_view(header, sizeof(header)));
      const uint8_t type = r.ReadU8();
      r.ReadU16();  // channel
      const uint32_t size = r.ReadU32();
      payload_.resize(size + 1);
      asio::read(socket_, asio::buffer(payload_));
      if (type != amqp::kFrameMethod) continue;
      auto method = amqp::DecodeMethod(std::string_view(payload_.data(), size));
      EXPECT_TRUE(method.has_value());
      return *method;
    }
  }

  void Open(std::string_view user, std::string_view password, std::string_view vhost) {
    EXPECT_TRUE(std::holds_alternative<m::ConnectionStart>(Next()));
    std::string response = std::string(1, '\0') + std::string(user) + '\0' + std::string(password);
    Send(0, m::ConnectionStartOk{.client_properties = {}, .mechanism = "PLAIN", .response = response,
                                 .locale = "en_US"});
    EXPECT_TRUE(std::holds_alternative<m::ConnectionTune>(Next()));
    Send(0, m::ConnectionTuneOk{.channel_max = 16, .frame_max = 131072, .heartbeat = 0});
    Send(0, m::ConnectionOpen{.virtual_host = vhost, .reserved_1 = "", .reserved_2 = false});
    EXPECT_TRUE(std::holds_alternative<m::ConnectionOpenOk>(Next()));
  }

  // Expects connection.close; returns "code text".
  std::string ExpectClose() {
    amqp::Method method = Next();
    auto* close = std::get_if<m::ConnectionClose>(&method);
    if (close == nullptr) return "not a connection.close";
    std::string result = std::to_string(close->reply_code) + " " + std::string(close->reply_text);
    Send(0, m::ConnectionCloseOk{});
    return result;
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string payload_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(broker_.AddVhost("dev").has_value());
    for (const char* user : {"u1", "u2"}) {
      ASSERT_TRUE(broker_.AddUser(user, broker::HashPassword("pw")).has_value());
      ASSERT_TRUE(broker_.SetPermissions(user, "/", ".*", ".*", ".*").has_value());
      ASSERT_TRUE(broker_.SetPermissions(user, "dev", ".*", ".*", ".*").has_value());
    }
    ServerOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<Server>(io_, broker_, options);
    ASSERT_EQ(server_->Listen(), "");
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    OnBrokerThread([this] { server_->Stop(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Runs `fn` on the broker thread (the io_context's) and waits for it.
  void OnBrokerThread(std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  broker::Broker broker_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ServerTest, DeletingAUserClosesItsConnections) {
  Client a(server_->port()), other(server_->port());
  a.Open("u1", "pw", "/");
  other.Open("u2", "pw", "/");
  OnBrokerThread([this] { ASSERT_TRUE(broker_.DeleteUser("u1").has_value()); });
  EXPECT_EQ(a.ExpectClose(), "320 CONNECTION_FORCED - user 'u1' is deleted");
  // u2's connection is untouched: it can still open a channel.
  other.Send(1, m::ChannelOpen{});
  EXPECT_TRUE(std::holds_alternative<m::ChannelOpenOk>(other.Next()));
}

TEST_F(ServerTest, DeletingAVhostClosesItsConnections) {
  Client in_dev(server_->port()), in_root(server_->port());
  in_dev.Open("u1", "pw", "dev");
  in_root.Open("u1", "pw", "/");
  in_dev.Send(1, m::ChannelOpen{});
  EXPECT_TRUE(std::holds_alternative<m::ChannelOpenOk>(in_dev.Next()));
  in_dev.Send(1, m::QueueDeclare{.queue = "q", .exclusive = true});
  EXPECT_TRUE(std::holds_alternative<m::QueueDeclareOk>(in_dev.Next()));
  OnBrokerThread([this] { ASSERT_TRUE(broker_.DeleteVhost("dev").has_value()); });
  EXPECT_EQ(in_dev.ExpectClose(), "320 CONNECTION_FORCED - vhost 'dev' is deleted");
  in_root.Send(1, m::ChannelOpen{});
  EXPECT_TRUE(std::holds_alternative<m::ChannelOpenOk>(in_root.Next()));
  // The vhost is gone for new connections too.
  Client late(server_->port());
  EXPECT_TRUE(std::holds_alternative<m::ConnectionStart>(late.Next()));
  std::string response = std::string(1, '\0') + "u1" + '\0' + "pw";
  late.Send(0, m::ConnectionStartOk{.client_properties = {}, .mechanism = "PLAIN", .response = response,
                                    .locale = "en_US"});
  EXPECT_TRUE(std::holds_alternative<m::ConnectionTune>(late.Next()));
  late.Send(0, m::ConnectionTuneOk{.channel_max = 16, .frame_max = 131072, .heartbeat = 0});
  late.Send(0, m::ConnectionOpen{.virtual_host = "dev", .reserved_1 = "", .reserved_2 = false});
  EXPECT_EQ(late.ExpectClose(), "530 NOT_ALLOWED - vhost dev not found");
}

}  // namespace
}  // namespace warren::net
