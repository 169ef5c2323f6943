// Test helpers for net/: a blocking AMQP client over a real loopback socket, and a fixture that
// runs a Server (with chosen options) on its own broker thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "server/amqp/byte_buffer.h"
#include "server/broker/password.h"
#include "server/net/frame_writer.h"
#include "server/net/server.h"

namespace warren::net::test {

// A blocking AMQP client speaking just enough of the protocol.
class Client {
 public:
  explicit Client(uint16_t port, std::string_view header = amqp::kProtocolHeader) : socket_(io_) {
    socket_.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    if (!header.empty()) SendRaw(header);
  }

  void SendRaw(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

  template <typename M>
  void Send(uint16_t channel, const M& method) {
    OutputBuffer out;
    WriteMethodFrame(out, channel, method);
    SendRaw(out.bytes());
  }

  // Exactly `n` bytes, or fewer if the server closes first.
  std::string Read(size_t n) {
    std::string data(n, '\0');
    asio::error_code ec;
    const size_t got = asio::read(socket_, asio::buffer(data), ec);
    data.resize(got);
    return data;
  }

  // The next method frame (heartbeats and content skipped); nullopt at EOF. Its strings view into
  // a buffer that the next read reuses.
  std::optional<amqp::Method> Next() {
    for (;;) {
      const std::string header = Read(7);
      if (header.size() < 7) return std::nullopt;
      amqp::ByteReader r(header);
      const uint8_t type = r.ReadU8();
      r.ReadU16();  // channel
      const uint32_t size = r.ReadU32();
      payload_ = Read(size + 1);
      if (payload_.size() < size + 1) return std::nullopt;
      if (type != amqp::kFrameMethod) continue;
      auto method = amqp::DecodeMethod(std::string_view(payload_.data(), size));
      EXPECT_TRUE(method.has_value());
      if (!method) return std::nullopt;
      return *method;
    }
  }

  template <typename M>
  std::optional<M> Expect() {
    std::optional<amqp::Method> method = Next();
    if (!method || !std::holds_alternative<M>(*method)) {
      ADD_FAILURE() << "expected " << M::kName;
      return std::nullopt;
    }
    return std::get<M>(*method);
  }

  static std::string Plain(std::string_view user, std::string_view password) {
    return std::string(1, '\0') + std::string(user) + '\0' + std::string(password);
  }

  void StartOk(std::string_view user, std::string_view password) {
    const std::string response = Plain(user, password);
    Send(0, amqp::method::ConnectionStartOk{.client_properties = {}, .mechanism = "PLAIN", .response = response,
                                            .locale = "en_US"});
  }

  void Open(std::string_view user, std::string_view password, std::string_view vhost, uint16_t channel_max = 16) {
    Expect<amqp::method::ConnectionStart>();
    StartOk(user, password);
    Expect<amqp::method::ConnectionTune>();
    Send(0, amqp::method::ConnectionTuneOk{.channel_max = channel_max, .frame_max = 131072, .heartbeat = 0});
    Send(0, amqp::method::ConnectionOpen{.virtual_host = vhost, .reserved_1 = "", .reserved_2 = false});
    Expect<amqp::method::ConnectionOpenOk>();
  }

  // Expects connection.close; returns "code text".
  std::string ExpectClose() {
    std::optional<amqp::Method> method = Next();
    auto* close = method ? std::get_if<amqp::method::ConnectionClose>(&*method) : nullptr;
    if (close == nullptr) return "not a connection.close";
    std::string result = std::to_string(close->reply_code) + " " + std::string(close->reply_text);
    Send(0, amqp::method::ConnectionCloseOk{});
    return result;
  }

  // Whether the server closes the socket, sending nothing, within the receive timeout.
  bool ClosedSilently() { return Read(1).empty(); }

  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string payload_;
};

class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(broker_.AddVhost("dev").has_value());
    for (const char* user : {"u1", "u2", "guest"}) {
      ASSERT_TRUE(broker_.AddUser(user, broker::HashPassword(user == std::string("guest") ? "guest" : "pw"))
                      .has_value());
      ASSERT_TRUE(broker_.SetPermissions(user, "/", ".*", ".*", ".*").has_value());
      ASSERT_TRUE(broker_.SetPermissions(user, "dev", ".*", ".*", ".*").has_value());
    }
  }

  // Starts the server; tests that need other options call it themselves first.
  void StartServer(ServerOptions options = {}) {
    options.bind_address = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<Server>(io_, broker_, options);
    ASSERT_EQ(server_->Listen(), "");
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (!server_) return;
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

  size_t ConnectionCount() {
    size_t n = 0;
    OnBrokerThread([&] { n = server_->connections().size(); });
    return n;
  }

  // Polls (up to 10 s) until `pred` holds on the broker thread.
  bool WaitFor(const std::function<bool()>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      bool ok = false;
      OnBrokerThread([&] { ok = pred(); });
      if (ok) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  uint16_t port() const { return server_->port(); }

  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  broker::Broker broker_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

}  // namespace warren::net::test
