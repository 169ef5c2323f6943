// A Journal for tests of the broker without a store: it keeps what is submitted and the test
// completes it, in order, with the status it chooses; reads run when the test says so.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <utility>

#include "server/broker/journal.h"

namespace warren::broker::testing {

// Thread: the test's own; Submit and SubmitRead only queue.
class FakeJournal final : public Journal {
 public:
  void Submit(storage::WriteBatch batch, std::function<void(const storage::Status&)> on_done) override {
    submitted_updates_ += batch.count();
    writes_.push_back(Write{std::move(batch), std::move(on_done)});
  }
  void SubmitRead(std::function<void()> read) override { reads_.push_back(std::move(read)); }
  storage::Status ScanQueue(uint64_t, uint64_t, const std::function<bool(const storage::StoredMessage&)>&) override {
    return storage::Status::OK();
  }
  storage::Status ScanDelayed(std::string_view, std::string_view,
                              const std::function<bool(std::string_view, const storage::MessageView&)>&) override {
    return storage::Status::OK();
  }

  size_t pending_writes() const { return writes_.size(); }
  size_t pending_reads() const { return reads_.size(); }
  size_t submitted_updates() const { return submitted_updates_; }
  bool front_is_synced() const { return !writes_.empty() && writes_.front().batch.sync(); }
  // Completes the oldest submitted batch with `status`. REQUIRES: pending_writes() > 0.
  void CompleteWrite(const storage::Status& status = storage::Status::OK()) {
    Write w = std::move(writes_.front());
    writes_.pop_front();
    if (w.on_done) w.on_done(status);
  }
  // Runs the oldest submitted read. REQUIRES: pending_reads() > 0.
  void RunRead() {
    std::function<void()> read = std::move(reads_.front());
    reads_.pop_front();
    read();
  }

 private:
  struct Write {
    storage::WriteBatch batch;
    std::function<void(const storage::Status&)> on_done;
  };
  std::deque<Write> writes_;
  std::deque<std::function<void()>> reads_;
  size_t submitted_updates_ = 0;
};

}  // namespace warren::broker::testing
