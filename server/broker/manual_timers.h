// A TimerService for tests: a clock that moves only when told, timers that fire as it passes
// their deadlines, and posted work that runs when the test says so.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include "server/broker/timers.h"

namespace warren::broker {

class ManualTimers final : public TimerService {
 public:
  explicit ManualTimers(MonoMillis start = 1000) : now_(start) {}

  MonoMillis Now() const override { return now_; }
  int64_t UnixSeconds() const override { return unix_seconds_; }
  // Milliseconds move with the monotonic clock from the last set_unix_seconds (seconds stay put,
  // so x-death times are fixed).
  int64_t UnixMillis() const override { return unix_seconds_ * 1000 + (now_ - unix_set_at_); }
  void set_unix_seconds(int64_t s) {
    unix_seconds_ = s;
    unix_set_at_ = now_;
  }

  std::unique_ptr<Timer> NewTimer(std::function<void()> callback) override {
    auto slot = std::make_shared<Slot>();
    slot->callback = std::move(callback);
    slots_.push_back(slot);
    return std::make_unique<SlotTimer>(std::move(slot));
  }
  void Post(std::function<void()> fn) override { posted_.push_back(std::move(fn)); }

  // Runs posted functions, and what they post, until none remain.
  void RunPosted() {
    while (!posted_.empty()) {
      std::vector<std::function<void()>> batch;
      batch.swap(posted_);
      for (auto& fn : batch) fn();
    }
  }

  // Moves the clock forward by `ms`, firing due timers in deadline order (the clock reads each
  // one's deadline while it runs) and running posted work after each.
  void Advance(MonoMillis ms) {
    const MonoMillis target = now_ + ms;
    RunPosted();
    while (true) {
      std::erase_if(slots_, [](const std::weak_ptr<Slot>& w) { return w.expired(); });
      std::shared_ptr<Slot> next;
      for (auto& weak : slots_) {
        auto slot = weak.lock();
        if (slot && slot->armed && slot->deadline <= target && (!next || slot->deadline < next->deadline)) next = slot;
      }
      if (!next) break;
      now_ = std::max(now_, next->deadline);
      next->armed = false;
      auto callback = next->callback;
      callback();
      RunPosted();
    }
    now_ = target;
  }

  size_t pending_posts() const { return posted_.size(); }

 private:
  struct Slot {
    std::function<void()> callback;
    MonoMillis deadline = 0;
    bool armed = false;
  };
  class SlotTimer final : public Timer {
   public:
    explicit SlotTimer(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}
    void ArmAt(MonoMillis deadline) override {
      slot_->deadline = deadline;
      slot_->armed = true;
    }
    void Cancel() override { slot_->armed = false; }

   private:
    std::shared_ptr<Slot> slot_;
  };

  MonoMillis now_;
  int64_t unix_seconds_ = 1700000000;
  MonoMillis unix_set_at_ = now_;  // where the clock stood at the last set_unix_seconds
  std::vector<std::weak_ptr<Slot>> slots_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace warren::broker
