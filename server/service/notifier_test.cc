#include "server/service/notifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace warren::service {
namespace {

// A datagram socket standing in for systemd's NOTIFY_SOCKET.
class FakeSystemd {
 public:
  FakeSystemd() {
    path_ = ::testing::TempDir() + "/notify-" + std::to_string(::getpid());
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~FakeSystemd() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::vector<std::string> Messages() {
    std::vector<std::string> out;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n < 0) return out;
      out.emplace_back(buffer, static_cast<size_t>(n));
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(NotifierTest, WithoutNotifySocketDoesNothing) {
  ::unsetenv("NOTIFY_SOCKET");
  asio::io_context io;
  Notifier notifier(io);
  EXPECT_FALSE(notifier.enabled());
  notifier.Ready("serving");
  notifier.StartWatchdog();
  EXPECT_EQ(io.poll(), 0u);
}

TEST(NotifierTest, SendsReadyStatusAndStopping) {
  FakeSystemd systemd;
  asio::io_context io;
  Notifier notifier(io);
  ASSERT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval().count(), 0);
  notifier.Status("recovering\nqueue q");
  notifier.Ready("serving");
  notifier.Stopping("shutting down");
  EXPECT_EQ(systemd.Messages(), (std::vector<std::string>{"STATUS=recovering queue q", "READY=1\nSTATUS=serving",
                                                          "STOPPING=1\nSTATUS=shutting down"}));
}

TEST(NotifierTest, ProgressIsThrottledAndExtendsTheStartTimeout) {
  FakeSystemd systemd;
  asio::io_context io;
  Notifier notifier(io);
  int built = 0;
  for (int i = 0; i < 100; ++i) {
    notifier.Progress([&] {
      ++built;
      return std::string("recovering: 5 messages of queue q");
    });
  }
  EXPECT_EQ(built, 1);
  EXPECT_EQ(systemd.Messages(),
            (std::vector<std::string>{"STATUS=recovering: 5 messages of queue q\nEXTEND_TIMEOUT_USEC=60000000"}));
}

TEST(NotifierTest, StatusUpdatesUntilStopping) {
  FakeSystemd systemd;
  asio::io_context io;
  Notifier notifier(io);
  int n = 0;
  notifier.StartStatusUpdates(std::chrono::milliseconds(10), [&] { return "serving: " + std::to_string(++n); });
  io.run_for(std::chrono::milliseconds(35));
  notifier.Stopping("bye");
  io.run_for(std::chrono::milliseconds(30));
  const auto messages = systemd.Messages();
  ASSERT_GE(messages.size(), 3u);
  EXPECT_EQ(messages[0], "STATUS=serving: 1");
  EXPECT_EQ(messages[1], "STATUS=serving: 2");
  EXPECT_EQ(messages.back(), "STOPPING=1\nSTATUS=bye");
  EXPECT_EQ(n + 1, static_cast<int>(messages.size()));
}

TEST(NotifierTest, WatchdogPingsAtHalfTheInterval) {
  FakeSystemd systemd;
  ::setenv("WATCHDOG_USEC", "40000", 1);
  asio::io_context io;
  Notifier notifier(io);
  EXPECT_EQ(notifier.watchdog_interval(), std::chrono::microseconds(20000));
  notifier.StartWatchdog();
  io.run_for(std::chrono::milliseconds(110));
  const auto pings = systemd.Messages();
  EXPECT_GE(pings.size(), 4u);
  EXPECT_LE(pings.size(), 7u);
  for (const auto& ping : pings) EXPECT_EQ(ping, "WATCHDOG=1");
  notifier.Stopping("bye");
  EXPECT_EQ(io.run_for(std::chrono::milliseconds(50)), 1u);  // the cancelled wait, nothing more
  EXPECT_EQ(systemd.Messages(), (std::vector<std::string>{"STOPPING=1\nSTATUS=bye"}));
}

}  // namespace
}  // namespace warren::service
