#include "server/net/login_throttle.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::net {
namespace {

using namespace std::chrono_literals;
using Clock = LoginThrottle::Clock;

TEST(LoginThrottleTest, BlocksAnAddressAfterMaxFailuresWithinTheWindow) {
  LoginThrottle t({.max_failures = 3, .window = 60s, .block = 30s});
  const auto t0 = Clock::now();
  EXPECT_FALSE(t.RecordFailure("10.0.0.1", t0));
  EXPECT_FALSE(t.RecordFailure("10.0.0.1", t0 + 1s));
  EXPECT_FALSE(t.Blocked("10.0.0.1", t0 + 2s));
  EXPECT_TRUE(t.RecordFailure("10.0.0.1", t0 + 2s));
  EXPECT_TRUE(t.Blocked("10.0.0.1", t0 + 3s));
  EXPECT_FALSE(t.Blocked("10.0.0.2", t0 + 3s));  // other addresses are not affected
  // Refused attempts during the block neither count nor extend it.
  EXPECT_FALSE(t.RecordFailure("10.0.0.1", t0 + 20s));
  EXPECT_TRUE(t.Blocked("10.0.0.1", t0 + 31s));
  EXPECT_FALSE(t.Blocked("10.0.0.1", t0 + 32s));
  // After the block, counting starts afresh.
  EXPECT_FALSE(t.RecordFailure("10.0.0.1", t0 + 33s));
  EXPECT_FALSE(t.Blocked("10.0.0.1", t0 + 33s));
}

TEST(LoginThrottleTest, FailuresSpreadBeyondTheWindowDoNotBlock) {
  LoginThrottle t({.max_failures = 3, .window = 10s, .block = 30s});
  const auto t0 = Clock::now();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(t.RecordFailure("a", t0 + i * 6s));
  EXPECT_FALSE(t.Blocked("a", t0 + 61s));
}

TEST(LoginThrottleTest, ZeroMaxFailuresTurnsItOff) {
  LoginThrottle t({.max_failures = 0});
  const auto t0 = Clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(t.RecordFailure("a", t0));
  EXPECT_FALSE(t.Blocked("a", t0));
  EXPECT_EQ(t.tracked(), 0u);
}

TEST(LoginThrottleTest, TrackedAddressesAreBounded) {
  LoginThrottle t({.max_failures = 2, .window = 60s, .block = 60s, .max_tracked = 100});
  const auto t0 = Clock::now();
  for (int i = 0; i < 10000; ++i) t.RecordFailure("addr" + std::to_string(i), t0 + std::chrono::milliseconds(i));
  EXPECT_LE(t.tracked(), 100u);
  // The newest are remembered.
  EXPECT_TRUE(t.RecordFailure("addr9999", t0 + 11s));
}

}  // namespace
}  // namespace warren::net
