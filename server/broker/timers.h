// The clock and timers the broker needs for message TTLs, queue expiry (x-expires) and deferred
// work such as dead-lettering. The broker has no I/O: the event loop implements this interface
// (server/net/asio_timers.h) and tests use a manual clock.
//
// Thread: everything runs on the broker thread. Callbacks never run inline from the call that
// scheduled them, and never after the Timer that owns them was destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace warren::broker {

// Milliseconds on a monotonic clock (steady_clock's epoch).
using MonoMillis = int64_t;

class Timer {
 public:
  virtual ~Timer() = default;
  // (Re)arms the timer: its callback runs once, at `deadline` or soon after. Replaces any
  // earlier deadline.
  virtual void ArmAt(MonoMillis deadline) = 0;
  virtual void Cancel() = 0;
};

class TimerService {
 public:
  virtual ~TimerService() = default;
  virtual MonoMillis Now() const = 0;
  // Wall-clock seconds since the Unix epoch (x-death timestamps).
  virtual int64_t UnixSeconds() const = 0;
  // Wall-clock milliseconds since the Unix epoch (stream timestamps); seconds resolution unless
  // the implementation has better.
  virtual int64_t UnixMillis() const { return UnixSeconds() * 1000; }
  virtual std::unique_ptr<Timer> NewTimer(std::function<void()> callback) = 0;
  // Runs `fn` later on the broker thread (never inline).
  virtual void Post(std::function<void()> fn) = 0;
};

// steady_clock / system_clock readings, shared by the real implementations.
inline MonoMillis SteadyNowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline int64_t SystemUnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
inline int64_t SystemUnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// For code running without an event loop (tools, tests that do not care): real clocks, timers
// that never fire, and Post that runs the function at once.
inline TimerService& FallbackTimers() {
  class Fallback final : public TimerService {
    class NoTimer final : public Timer {
     public:
      void ArmAt(MonoMillis) override {}
      void Cancel() override {}
    };

   public:
    MonoMillis Now() const override { return SteadyNowMillis(); }
    int64_t UnixSeconds() const override { return SystemUnixSeconds(); }
    int64_t UnixMillis() const override { return SystemUnixMillis(); }
    std::unique_ptr<Timer> NewTimer(std::function<void()>) override { return std::make_unique<NoTimer>(); }
    void Post(std::function<void()> fn) override { fn(); }
  };
  static Fallback fallback;
  return fallback;
}

}  // namespace warren::broker
