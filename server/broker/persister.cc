#include "server/broker/persister.h"

#include <utility>

#include <spdlog/spdlog.h>

namespace warren::broker {

Persister::Persister(Journal* journal, Post post) : journal_(journal), post_(std::move(post)) {}

void Persister::SetIdFloors(uint64_t next_queue_id, uint64_t next_body_id) {
  next_queue_id_ = std::max(next_queue_id_, next_queue_id);
  next_body_id_ = std::max(next_body_id_, next_body_id);
}

storage::WriteBatch& Persister::batch() {
  ScheduleCommit();
  batch_needs_sync_ = true;
  return batch_;
}

storage::WriteBatch& Persister::removal_batch() {
  ScheduleCommit();
  return batch_;
}

void Persister::ScheduleCommit() {
  if (!commit_scheduled_) {
    commit_scheduled_ = true;
    post_([this] { Commit(); });
  }
}

void Persister::ReleaseBody(uint64_t body_id) {
  auto it = body_refs_.find(body_id);
  if (it == body_refs_.end()) return;
  if (--it->second > 0) return;
  body_refs_.erase(it);
  removal_batch().DeleteBody(body_id);
}

void Persister::WaitForDurable(std::weak_ptr<DurabilityListener> listener) {
  listeners_.push_back(std::move(listener));
  ScheduleCommit();  // a completion is coming
}

void Persister::Commit() {
  commit_scheduled_ = false;
  const bool sync = std::exchange(batch_needs_sync_, false);
  const uint64_t ticket = ++submitted_ticket_;
  if (journal_ == nullptr || batch_.empty()) {
    // Nothing to write, but earlier batches may still be in flight: complete in order.
    storage::WriteBatch empty;
    if (journal_ == nullptr) {
      post_([this, ticket] { OnBatchDone(ticket, {}, true); });
      return;
    }
    batch_ = std::move(empty);
  }
  ++stats_.batches_submitted;
  const uint64_t bytes = batch_.ByteSize();
  inflight_.emplace_back(ticket, bytes);
  inflight_bytes_ += bytes;
  storage::WriteBatch batch = std::move(batch_);
  batch_ = storage::WriteBatch();
  batch.set_sync(sync);
  journal_->Submit(std::move(batch), [this, ticket, post = post_, journal = journal_, reads = std::exchange(reads_, {}),
                                    background = std::exchange(after_writes_background_reads_, {})](
                                       const storage::Status& status) mutable {
    std::string error;
    if (!status.ok()) {
      error = status.ToString();
      spdlog::error("store write failed: {}", error);
    }
    for (Read& r : reads) r.read(*journal);
    if (!background.empty()) {
      journal->SubmitRead([journal, post, background = std::move(background)]() mutable {
        RunInBackground(*journal, post, std::move(background));
      });
    }
    post([this, ticket, error = std::move(error), resumable = status.ok() || status.IsNoSpace(),
          reads = std::move(reads)] {
      OnBatchDone(ticket, error, resumable);
      for (const Read& r : reads) r.done();
    });
  });
}

void Persister::ReadAfterWrites(std::function<void(Journal&)> read, std::function<void()> done) {
  ScheduleCommit();  // the read rides on it
  reads_.push_back(Read{std::move(read), std::move(done)});
}

void Persister::RunInBackground(Journal& journal, const Post& post, std::vector<Read> reads) {
  for (Read& r : reads) r.read(journal);
  post([reads = std::move(reads)] {
    for (const Read& r : reads) r.done();
  });
}

Persister::Read Persister::CountedRead(std::function<void(Journal&)> read, std::function<void()> done) {
  ++background_reads_;
  return Read{std::move(read), [this, done = std::move(done)] {
                --background_reads_;
                done();
              }};
}

void Persister::ReadInBackground(std::function<void(Journal&)> read, std::function<void()> done) {
  std::vector<Read> reads;
  reads.push_back(CountedRead(std::move(read), std::move(done)));
  journal_->SubmitRead([journal = journal_, post = post_, reads = std::move(reads)]() mutable {
    RunInBackground(*journal, post, std::move(reads));
  });
}

void Persister::ReadInBackgroundAfterWrites(std::function<void(Journal&)> read, std::function<void()> done) {
  ScheduleCommit();  // the read rides on it
  after_writes_background_reads_.push_back(CountedRead(std::move(read), std::move(done)));
}

void Persister::PausePublisher(std::weak_ptr<PublisherFlow> publisher) {
  paused_publishers_.push_back(std::move(publisher));
}

void Persister::OnBatchDone(uint64_t ticket, const std::string& error, bool resumable) {
  const bool ok = error.empty();
  while (!inflight_.empty() && inflight_.front().first <= ticket) {
    inflight_bytes_ -= inflight_.front().second;
    inflight_.pop_front();
  }
  if (!paused_publishers_.empty() && inflight_bytes_ <= kDrainedBytes) {
    std::vector<std::weak_ptr<PublisherFlow>> paused;
    paused.swap(paused_publishers_);
    for (auto& weak : paused) {
      if (auto p = weak.lock()) p->ResumePublishing();
    }
  }
  if (ticket <= durable_ticket_) return;
  durable_ticket_ = ticket;
  if (!ok) ++stats_.batches_failed;
  failing_ = !ok;
  failure_ = error;
  std::vector<std::weak_ptr<DurabilityListener>> listeners;
  listeners.swap(listeners_);
  for (auto& weak : listeners) {
    if (auto l = weak.lock()) l->OnDurable(ticket, ok);
  }
  if (!resumable && on_fatal_) on_fatal_(error);
}

}  // namespace warren::broker
