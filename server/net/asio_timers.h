// broker::TimerService on the broker thread's io_context: steady_timer timers, asio::post.
//
// Thread: the broker thread (the io_context's only runner).
#pragma once

#include <functional>
#include <memory>

#include <asio/any_io_executor.hpp>

#include "server/broker/timers.h"

namespace warren::net {

class AsioTimerService final : public broker::TimerService {
 public:
  explicit AsioTimerService(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  broker::MonoMillis Now() const override { return broker::SteadyNowMillis(); }
  int64_t UnixSeconds() const override { return broker::SystemUnixSeconds(); }
  int64_t UnixMillis() const override { return broker::SystemUnixMillis(); }
  std::unique_ptr<broker::Timer> NewTimer(std::function<void()> callback) override;
  void Post(std::function<void()> fn) override;

 private:
  asio::any_io_executor executor_;
};

}  // namespace warren::net
