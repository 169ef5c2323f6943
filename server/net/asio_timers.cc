#include "server/net/asio_timers.h"

#include <chrono>
#include <cstdint>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

namespace warren::net {

namespace {

class AsioTimer final : public broker::Timer {
 public:
  AsioTimer(const asio::any_io_executor& executor, std::function<void()> callback)
      : state_(std::make_shared<State>(executor, std::move(callback))) {}
  ~AsioTimer() override { Cancel(); }

  void ArmAt(broker::MonoMillis deadline) override {
    const uint64_t generation = ++state_->generation;
    state_->timer.expires_at(std::chrono::steady_clock::time_point(std::chrono::milliseconds(deadline)));
    state_->timer.async_wait([weak = std::weak_ptr<State>(state_), generation](const asio::error_code& ec) {
      if (ec) return;
      std::shared_ptr<State> state = weak.lock();  // keeps the state alive while the callback runs
      // A wait that completed just before being re-armed or cancelled is stale.
      if (state == nullptr || state->generation != generation) return;
      std::function<void()> callback = state->callback;  // the callback may destroy the Timer
      callback();
    });
  }

  void Cancel() override {
    ++state_->generation;
    state_->timer.cancel();
  }

 private:
  struct State {
    State(const asio::any_io_executor& executor, std::function<void()> cb)
        : timer(executor), callback(std::move(cb)) {}
    asio::steady_timer timer;
    std::function<void()> callback;
    uint64_t generation = 0;
  };
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<broker::Timer> AsioTimerService::NewTimer(std::function<void()> callback) {
  return std::make_unique<AsioTimer>(executor_, std::move(callback));
}

void AsioTimerService::Post(std::function<void()> fn) { asio::post(executor_, std::move(fn)); }

}  // namespace warren::net
