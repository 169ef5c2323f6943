#include "server/net/login_throttle.h"

#include <algorithm>

namespace warren::net {

bool LoginThrottle::Blocked(std::string_view address, Clock::time_point now) const {
  if (options_.max_failures == 0) return false;
  auto it = entries_.find(std::string(address));
  return it != entries_.end() && now < it->second.blocked_until;
}

bool LoginThrottle::Expired(const Entry& e, Clock::time_point now) const {
  return now >= e.blocked_until && now - e.window_start >= options_.window;
}

void LoginThrottle::MakeRoom(Clock::time_point now) {
  std::erase_if(entries_, [&](const auto& entry) { return Expired(entry.second, now); });
  if (entries_.size() < options_.max_tracked) return;
  auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
    return a.second.window_start < b.second.window_start;
  });
  entries_.erase(oldest);
}

bool LoginThrottle::RecordFailure(std::string_view address, Clock::time_point now) {
  if (options_.max_failures == 0) return false;
  auto it = entries_.find(std::string(address));
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_tracked) MakeRoom(now);
    it = entries_.emplace(std::string(address), Entry{.window_start = now, .failures = 0, .blocked_until = {}}).first;
  }
  Entry& e = it->second;
  if (now < e.blocked_until) return false;  // refused attempts neither count nor extend the block
  if (now - e.window_start >= options_.window) {
    e.window_start = now;
    e.failures = 0;
  }
  if (++e.failures < options_.max_failures) return false;
  e.blocked_until = now + options_.block;
  e.window_start = now;
  e.failures = 0;
  return true;
}

}  // namespace warren::net
