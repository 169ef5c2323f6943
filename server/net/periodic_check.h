// Runs a check now and then every `interval` until stopped: the loop the resource monitors (disk,
// memory) share.
//
// Thread: the thread that runs `io` (the broker thread); Start and Stop are called there too.
#pragma once

#include <chrono>
#include <functional>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace warren::net {

class PeriodicCheck {
 public:
  PeriodicCheck(asio::io_context& io, std::chrono::steady_clock::duration interval, std::function<void()> check)
      : timer_(io), interval_(interval), check_(std::move(check)) {}

  // Runs the check at once, then every interval.
  void Start() {
    stopped_ = false;
    check_();
    Schedule();
  }
  void Stop() {
    stopped_ = true;
    timer_.cancel();
  }
  bool stopped() const { return stopped_; }

 private:
  void Schedule() {
    if (stopped_) return;
    timer_.expires_after(interval_);
    timer_.async_wait([this](const asio::error_code& ec) {
      if (ec || stopped_) return;
      check_();
      Schedule();
    });
  }

  asio::steady_timer timer_;
  std::chrono::steady_clock::duration interval_;
  std::function<void()> check_;
  bool stopped_ = false;
};

}  // namespace warren::net
