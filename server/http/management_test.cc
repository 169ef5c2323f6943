// The management API's threading contract: answers come from the broker thread, and a broker
// thread that does not answer gives 503 rather than a hang or a data race.
#include "server/http/management.h"

#include <chrono>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <gtest/gtest.h>
#include <httplib.h>

#include "server/broker/broker.h"
#include "server/broker/password.h"
#include "server/http/internal/api.h"
#include "server/net/server.h"

namespace warren::http {
namespace {

class ManagementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_.RestoreUser(broker::User{"admin", broker::HashPassword("secret"), {"administrator"}});
    broker_.RestoreVhost("/");
    ManagementOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    options.admin_token = "0123456789abcdef";
    management_ = std::make_unique<ManagementServer>(io_, broker_, server_, options);
    ASSERT_EQ(management_->Start(), "");
    ASSERT_NE(management_->port(), 0);
  }
  void TearDown() override {
    management_->Stop();
    io_.stop();
    if (broker_thread_.joinable()) broker_thread_.join();
  }
  void RunBrokerThread() {
    broker_thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }
  httplib::Result Get(const std::string& path, const std::string& user = "admin", const std::string& pw = "secret") {
    httplib::Client client("127.0.0.1", management_->port());
    client.set_read_timeout(10, 0);
    client.set_basic_auth(user, pw);
    return client.Get(path);
  }

  asio::io_context io_{1};
  broker::Broker broker_;
  net::Server server_{io_, broker_, net::ServerOptions{}};
  std::unique_ptr<ManagementServer> management_;
  std::thread broker_thread_;
};

TEST_F(ManagementTest, AnswersFromTheBrokerThread) {
  RunBrokerThread();
  auto res = Get("/api/vhosts/%2F");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("\"name\":\"/\""), std::string::npos);
  res = Get("/api/overview", "admin", "wrong");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Basic realm=\"RabbitMQ Management\"");
}

TEST_F(ManagementTest, AdminTokenIsAnAdministrator) {
  RunBrokerThread();
  auto with_token = [this](const std::string& token) {
    httplib::Client client("127.0.0.1", management_->port());
    client.set_read_timeout(10, 0);
    client.set_bearer_token_auth(token);
    return client.Get("/api/users");
  };
  auto res = with_token("0123456789abcdef");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("\"name\":\"admin\""), std::string::npos);
  for (const std::string bad : {"0123456789abcdeF", "0123456789abcde", "0123456789abcdef0", ""}) {
    res = with_token(bad);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << bad;
  }
}

// The token file is readable on this machine only, so the token is refused from any other peer.
TEST_F(ManagementTest, AdminTokenOnlyFromLoopbackPeers) {
  ManagementOptions options;
  options.admin_token = "0123456789abcdef";
  internal::Api api(broker_, server_, options);
  internal::Request req;
  req.method = "GET";
  req.segments = {"users"};
  req.bearer = "0123456789abcdef";
  for (const char* peer : {"127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"}) {
    req.remote_addr = peer;
    EXPECT_EQ(api.Dispatch(req).status, 200) << peer;
  }
  for (const char* peer : {"192.0.2.7", "10.0.0.1", "::ffff:192.0.2.7", "2001:db8::1", ""}) {
    req.remote_addr = peer;
    EXPECT_EQ(api.Dispatch(req).status, 401) << peer;
  }
}

// A request the broker thread did not start in time is answered 503 and is never applied, even
// when the broker thread gets to it later.
TEST_F(ManagementTest, TimedOutRequestIsNotAppliedLater) {
  httplib::Client client("127.0.0.1", management_->port());
  client.set_read_timeout(10, 0);
  client.set_basic_auth("admin", "secret");
  auto res = client.Put("/api/vhosts/late", "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_NE(res->body.find("not applied"), std::string::npos) << res->body;
  io_.poll();  // the broker thread catches up
  EXPECT_EQ(broker_.FindVhost("late"), nullptr);
}

TEST_F(ManagementTest, BrokerThreadNotAnsweringGives503) {
  // The io_context is not run: nobody executes the posted request.
  const auto start = std::chrono::steady_clock::now();
  auto res = Get("/api/overview");
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_GE(waited, std::chrono::seconds(4));
  EXPECT_LT(waited, std::chrono::seconds(9));
}

TEST_F(ManagementTest, StopReleasesWaitingRequests) {
  std::thread client([this] {
    auto res = Get("/api/overview");
    if (res) {
      EXPECT_EQ(res->status, 503);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = std::chrono::steady_clock::now();
  management_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  client.join();
}

}  // namespace
}  // namespace warren::http
