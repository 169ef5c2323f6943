// Throttles password guessing: after `max_failures` failed logins from one peer address within
// `window`, every login from that address is refused for `block` (without checking the
// password), whatever the user. RabbitMQ has no such throttle; this is Warren's own rule.
//
// State is bounded: at most `max_tracked` addresses are remembered; when full, expired entries are
// dropped first, then the entry whose window started first.
//
// Thread: owned by one thread (the broker thread). Pure: the caller passes the time.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace warren::net {

struct LoginThrottleOptions {
  size_t max_failures = 10;  // 0: no throttle
  std::chrono::seconds window{60};
  std::chrono::seconds block{60};
  size_t max_tracked = 10000;
};

class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LoginThrottle(LoginThrottleOptions options = {}) : options_(options) {}

  // Whether a login from `address` is refused at `now` without looking at the credentials.
  bool Blocked(std::string_view address, Clock::time_point now) const;
  // Records a failed login from `address`. Returns true when this failure starts a block.
  bool RecordFailure(std::string_view address, Clock::time_point now);
  size_t tracked() const { return entries_.size(); }
  const LoginThrottleOptions& options() const { return options_; }

 private:
  struct Entry {
    Clock::time_point window_start;
    size_t failures = 0;
    Clock::time_point blocked_until;
  };
  bool Expired(const Entry& e, Clock::time_point now) const;
  void MakeRoom(Clock::time_point now);

  LoginThrottleOptions options_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace warren::net
