// The broker's side of the durable store (its Journal): collects every store mutation made while
// handling one turn of the event loop into a single WriteBatch, submits it (the store merges
// batches that arrive while it fsyncs: group commit), and reports back which batches are
// durable so publisher confirms and tx.commit-ok can be released.
//
// Tickets: batch N gets ticket N. A mutation added now through batch() is durable once
// durable_ticket() >= open_ticket() as read when it was added (one through removal_batch() is
// written then, and durable with the next synced batch). Batches complete in order.
//
// Thread: owned by the broker thread. The store's completion callbacks run on the store thread
// and are handed back to the broker thread through the `post` function.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/broker/journal.h"
#include "server/broker/publisher_flow.h"
#include "storage/write_batch.h"

namespace warren::broker {

// Something waiting for a batch to become durable (a channel with unconfirmed publishes).
class DurabilityListener {
 public:
  virtual ~DurabilityListener() = default;
  // Called on the broker thread once batches up to `ticket` are durable (ok) or failed (!ok).
  virtual void OnDurable(uint64_t ticket, bool ok) = 0;
};

class Persister {
 public:
  using Post = std::function<void(std::function<void()>)>;

  // `journal` may be null: then nothing is durable and every ticket completes at once.
  // `post` runs a function on the broker thread later (never inline).
  Persister(Journal* journal, Post post);

  bool enabled() const { return journal_ != nullptr; }
  Journal* journal() const { return journal_; }
  // Ready messages a queue keeps in memory; the rest of its backlog lives only in the
  // store and is read back as consumers drain the queue.
  size_t memory_window() const { return memory_window_; }
  void set_memory_window(size_t messages) { memory_window_ = std::max<size_t>(messages, 2); }
  // The same window in body bytes: a queue pages once either is reached, so large messages
  // cannot fill memory through the message-count window.
  uint64_t memory_window_bytes() const { return memory_window_bytes_; }
  void set_memory_window_bytes(uint64_t bytes) { memory_window_bytes_ = std::max<uint64_t>(bytes, 1); }
  // The batch being filled in this turn; it is submitted at the end of the turn, with an fsync.
  storage::WriteBatch& batch();
  // The same batch, for removing messages (acks, purges, expiry). A batch that holds nothing
  // else is written without an fsync of its own (the next synced write makes it durable): losing
  // such a removal to a power cut brings the message back, and flagged redelivered if it was
  // delivered, because every delivered message is under its queue's durable delivery horizon.
  storage::WriteBatch& removal_batch();
  uint64_t open_ticket() const { return submitted_ticket_ + 1; }
  uint64_t durable_ticket() const { return durable_ticket_; }
  // Nothing waits to be written (every submitted batch has completed and the open one is empty)
  // or read in the background.
  bool idle() const { return batch_.empty() && durable_ticket_ == submitted_ticket_ && background_reads_ == 0; }
  // Background reads (ReadInBackground*) whose `done` has not run yet.
  size_t background_reads() const { return background_reads_; }
  // Whether the last batch failed: the store cannot make messages durable (disk full, I/O error)
  // until a later batch is written. failure() names the error then (empty otherwise).
  bool failing() const { return failing_; }
  const std::string& failure() const { return failure_; }
  // Runs on the broker thread when a batch fails with an error the store cannot resume from (any
  // but a full disk, which the store resumes from once there is room): every later write would
  // fail too, and a restart recovers what was confirmed from the WAL.
  void set_on_fatal_failure(std::function<void(const std::string& error)> fn) { on_fatal_ = std::move(fn); }

  uint64_t NextQueueId() { return next_queue_id_++; }
  uint64_t NextBodyId() { return next_body_id_++; }
  void SetIdFloors(uint64_t next_queue_id, uint64_t next_body_id);

  // Shared bodies (stored once for several queues): references held by index entries.
  void AddBodyRefs(uint64_t body_id, uint32_t refs) { body_refs_[body_id] += refs; }
  // Drops one reference; deletes the body when it was the last.
  void ReleaseBody(uint64_t body_id);

  // Store backpressure: while more than kCongestedBytes are submitted and not yet written,
  // publishers are paused (PausePublisher) until the writer is down to kDrainedBytes; otherwise
  // a publisher without confirms could queue writes faster than the disk takes them, without
  // bound.
  static constexpr uint64_t kCongestedBytes = 8ull << 20;
  static constexpr uint64_t kDrainedBytes = 2ull << 20;
  bool congested() const { return inflight_bytes_ + batch_.ByteSize() > kCongestedBytes; }
  void PausePublisher(std::weak_ptr<PublisherFlow> publisher);

  // `listener` hears OnDurable once, for the first completion after now.
  void WaitForDurable(std::weak_ptr<DurabilityListener> listener);
  // Submits the open batch now (normally done at the end of the turn).
  void Commit();
  // A read off the broker thread that sees every write made so far: `read` runs on the store's
  // writer thread right after the open batch (and so every earlier one) is written, then `done`
  // on the broker thread. `read` must be short (the next group of writes waits for it).
  // REQUIRES: enabled().
  void ReadAfterWrites(std::function<void(Journal&)> read, std::function<void()> done);
  // Long reads, on the store's reader thread (neither the broker thread nor the writer waits for
  // them), then `done` on the broker thread. ReadInBackground starts at once: for what is
  // already written (durable_ticket() covers it). ReadInBackgroundAfterWrites starts once the open
  // batch (and so every earlier one) is written; it may see later writes too.
  // REQUIRES: enabled().
  void ReadInBackground(std::function<void(Journal&)> read, std::function<void()> done);
  void ReadInBackgroundAfterWrites(std::function<void(Journal&)> read, std::function<void()> done);

  struct Stats {
    uint64_t batches_submitted = 0;
    uint64_t batches_failed = 0;
    uint64_t persistent_publishes = 0;  // publishes whose confirm waited for the store
  };
  void CountPersistentPublish() { ++stats_.persistent_publishes; }
  const Stats& stats() const { return stats_; }

 private:
  void ScheduleCommit();
  // `error` is empty when the batch was written.
  void OnBatchDone(uint64_t ticket, const std::string& error, bool resumable);

  Journal* journal_;
  Post post_;
  storage::WriteBatch batch_;
  bool batch_needs_sync_ = false;
  struct Read {
    std::function<void(Journal&)> read;
    std::function<void()> done;
  };
  // On the reader thread: runs the reads, then posts their completions in one go.
  static void RunInBackground(Journal& journal, const Post& post, std::vector<Read> reads);
  std::vector<Read> reads_;             // to run after the open batch, on the writer thread
  std::vector<Read> after_writes_background_reads_;  // to run after the open batch, on the reader thread
  size_t background_reads_ = 0;
  // Counts the read in background_reads_ until its `done` has run.
  Read CountedRead(std::function<void(Journal&)> read, std::function<void()> done);
  bool commit_scheduled_ = false;
  uint64_t submitted_ticket_ = 0;
  uint64_t durable_ticket_ = 0;
  bool failing_ = false;
  std::string failure_;
  std::function<void(const std::string&)> on_fatal_;
  uint64_t next_queue_id_ = 1;
  uint64_t next_body_id_ = 1;
  std::unordered_map<uint64_t, uint32_t> body_refs_;
  std::vector<std::weak_ptr<DurabilityListener>> listeners_;
  std::deque<std::pair<uint64_t, uint64_t>> inflight_;  // (ticket, bytes) submitted, not yet written
  uint64_t inflight_bytes_ = 0;
  std::vector<std::weak_ptr<PublisherFlow>> paused_publishers_;
  Stats stats_;
  size_t memory_window_ = 20000;
  uint64_t memory_window_bytes_ = 64ull << 20;
};

}  // namespace warren::broker
