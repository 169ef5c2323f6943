// Test helpers for broker code that runs against a real store: the broker thread's event loop by
// hand, and messages of a given size.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/broker/broker.h"
#include "server/broker/message.h"
#include "server/broker/persister.h"
#include "server/broker/queue.h"
#include "server/broker/recovery.h"
#include "server/journal/store_journal.h"
#include "storage/test_util.h"

namespace warren::broker::testing {

// The broker thread's event loop: what the persister posts runs in PumpUntil().
class Loop {
 public:
  Persister::Post post() {
    return [this](std::function<void()> fn) {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    };
  }
  // Runs posted functions until `done` holds; false when it still does not after 10 s.
  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::deque<std::function<void()>> ready;
      {
        std::lock_guard lock(mu_);
        ready.swap(queue_);
      }
      if (ready.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      for (auto& fn : ready) fn();
    }
    return true;
  }
  void PumpUntil(const std::function<bool()>& done) { ASSERT_TRUE(RunUntil(done)); }

 private:
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
};

// Commits the persister's open batch and pumps `loop` until everything so far is in the store
// and every background read (page-in, purge) has come back, with what it wrote in turn.
inline void SettleStore(Persister& persister, Loop& loop) {
  do {
    persister.Commit();
    const uint64_t ticket = persister.open_ticket() - 1;
    loop.PumpUntil([&] { return persister.durable_ticket() >= ticket && persister.background_reads() == 0; });
  } while (!persister.idle());
}

// A consumer that is always ready and records the seqs delivered to it.
class RecordingConsumer : public Consumer {
 public:
  explicit RecordingConsumer(bool no_ack = false) : no_ack_(no_ack) {}
  bool Ready() const override { return true; }
  bool no_ack() const override { return no_ack_; }
  void Deliver(Queue&, QueuedMessage m) override { seqs.push_back(m.seq); }
  void OnQueueDeleted(Queue&) override {}
  std::vector<uint64_t> seqs;

 private:
  bool no_ack_;
};

// A message of `size` bytes of `fill`, delivery mode 2 when persistent.
inline MessageRef Body(Broker& broker, size_t size, char fill, bool persistent = false) {
  const std::string props = persistent ? std::string("\x10\x00\x02", 3) : std::string("\x00\x00", 2);
  MessageRef m = Message::Create("", "q", props, size, &broker.memory());
  m->FillBody(std::string(size, fill));
  return m;
}

// One broker run on the store in `dir`, recovered as the server recovers at start; destroying it
// without SettleStore() is a crash that loses the batch not yet committed (what a kill -9 or a
// power cut does to writes not yet made).
struct BrokerRun {
  explicit BrokerRun(const std::string& dir, TimerService* timers = nullptr)
      : store(storage::testing::OpenOrDie(dir)) {
    if (timers != nullptr) broker.set_timers(timers);
    EXPECT_TRUE(RecoverBroker(*store, broker, persister, {"guest", "guest"}, &stats).ok());
  }
  void Settle() { SettleStore(persister, loop); }

  Loop loop;  // outlives the store, whose last completions post to it
  std::unique_ptr<storage::Store> store;
  Broker broker;
  journal::StoreJournal journal{*store};
  Persister persister{&journal, loop.post()};
  RecoveryStats stats;
};

}  // namespace warren::broker::testing
