// The hand-off state machine: a call abandoned before the broker thread starts it is never
// run; one that has started is waited for and its result reported, however late.
#include "server/http/handoff.h"

#include <thread>

#include <asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

namespace warren::http {
namespace {

using namespace std::chrono_literals;

TEST(BrokerCallTest, RunsAndReportsTheResult) {
  BrokerCall<int> call;
  std::atomic<bool> stopping{false};
  std::thread broker([&] { call.Run([] { return 7; }); });
  EXPECT_EQ(call.Wait(std::chrono::steady_clock::now() + 5s, stopping), 7);
  broker.join();
  EXPECT_EQ(call.state(), BrokerCall<int>::State::kDone);
}

TEST(BrokerCallTest, AbandonedWhilePendingIsNeverApplied) {
  BrokerCall<int> call;
  std::atomic<bool> stopping{false};
  EXPECT_EQ(call.Wait(std::chrono::steady_clock::now() + 100ms, stopping), std::nullopt);
  EXPECT_EQ(call.state(), BrokerCall<int>::State::kAbandoned);
  bool applied = false;
  call.Run([&] {
    applied = true;
    return 1;
  });
  EXPECT_FALSE(applied);
  EXPECT_EQ(call.state(), BrokerCall<int>::State::kAbandoned);
}

TEST(BrokerCallTest, StoppingAbandonsAPendingCall) {
  BrokerCall<int> call;
  std::atomic<bool> stopping{true};
  EXPECT_EQ(call.Wait(std::chrono::steady_clock::now() + 10s, stopping), std::nullopt);
  EXPECT_EQ(call.state(), BrokerCall<int>::State::kAbandoned);
}

TEST(BrokerCallTest, ARunningCallIsWaitedForPastTheDeadline) {
  BrokerCall<int> call;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::thread broker([&] {
    call.Run([&] {
      started = true;
      std::this_thread::sleep_for(400ms);
      return 42;
    });
  });
  while (!started) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(call.state(), BrokerCall<int>::State::kRunning);
  // The deadline has passed already, and the server is stopping: the change is under way, so
  // its outcome is what gets reported.
  stopping = true;
  EXPECT_EQ(call.Wait(std::chrono::steady_clock::now() - 1s, stopping), 42);
  broker.join();
}

TEST(BrokerCallTest, AnExceptionReachesTheWaiter) {
  BrokerCall<int> call;
  std::atomic<bool> stopping{false};
  call.Run([]() -> int { throw std::runtime_error("boom"); });
  EXPECT_THROW(call.Wait(std::chrono::steady_clock::now() + 1s, stopping), std::runtime_error);
}

TEST(CallOnBrokerTest, ABrokerThatStartsLateDoesNotApplyTheRequest) {
  asio::io_context io;
  std::atomic<bool> stopping{false};
  int applied = 0;
  // Nobody runs the io_context yet: the call times out while pending.
  EXPECT_EQ(CallOnBroker<int>(io, [&] { return ++applied; }, 100ms, stopping), std::nullopt);
  io.run();  // the broker thread gets to the posted function after the 503
  EXPECT_EQ(applied, 0);
  // And one that the broker thread serves in time is applied once.
  std::thread broker([&] {
    io.restart();
    auto guard = asio::make_work_guard(io);
    io.run_for(2s);
  });
  EXPECT_EQ(CallOnBroker<int>(io, [&] { return ++applied; }, 5s, stopping), 1);
  io.stop();
  broker.join();
  EXPECT_EQ(applied, 1);
}

}  // namespace
}  // namespace warren::http
