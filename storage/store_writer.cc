// The store's writer thread: group commit.
//
// The loop takes everything queued, writes it as one RocksDB write (small batches merged into
// one rocksdb::WriteBatch; large ones written as they are so their bodies are not copied again),
// fsyncs the WAL once if any batch asked for it, then runs the completions. Batches submitted
// meanwhile wait in queue_ and form the next group, so the group size adapts to the fsync
// latency: the slower the disk, the more publishers share each fsync.
#include <chrono>
#include <deque>
#include <future>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "storage/store.h"

namespace warren::storage {

namespace {

// Batches at least this large are written on their own rather than copied into the merged
// batch: past this size the copy costs more than the extra (unsynced) write call.
constexpr size_t kDirectWriteBytes = 64 * 1024;
constexpr auto kResumeInterval = std::chrono::milliseconds(200);
// The longest a synced group waits for the rest of the last one (GatherLocked).
constexpr uint64_t kMaxGatherMicros = 1000;
constexpr uint64_t kResumeHeadroomBytes = 64 << 20;

// Replays a batch's records into another batch, mapping each column family id to its handle.
class AppendTo final : public rocksdb::WriteBatch::Handler {
 public:
  AppendTo(rocksdb::WriteBatch* dst, const std::vector<rocksdb::ColumnFamilyHandle*>& handles)
      : dst_(dst), handles_(handles) {}

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
    if (cf >= handles_.size()) return Bad(cf);
    return dst_->Put(handles_[cf], k, v);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& k) override {
    if (cf >= handles_.size()) return Bad(cf);
    return dst_->Delete(handles_[cf], k);
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& k) override {
    if (cf >= handles_.size()) return Bad(cf);
    return dst_->SingleDelete(handles_[cf], k);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& b, const rocksdb::Slice& e) override {
    if (cf >= handles_.size()) return Bad(cf);
    return dst_->DeleteRange(handles_[cf], b, e);
  }

 private:
  static rocksdb::Status Bad(uint32_t cf) {
    return rocksdb::Status::InvalidArgument("unknown column family id " + std::to_string(cf));
  }
  rocksdb::WriteBatch* dst_;
  const std::vector<rocksdb::ColumnFamilyHandle*>& handles_;
};

int HistogramBucket(uint64_t micros) {
  int b = 0;
  for (uint64_t limit = 64; micros >= limit && b < 15; limit <<= 1) ++b;
  return b;
}

}  // namespace

void Store::TryResume() {
  // After a failed write RocksDB refuses writes until its background error is cleared (its
  // own auto-recovery is off: db_options.cc); meanwhile every write fails fast and names the
  // error. Resume flushes the memtables, and a Resume that fails for want of space can leave
  // the DB unrecoverable until reopened, so it is tried only when the disk has room for that
  // flush, and at most once per kResumeInterval. Other I/O errors on the WAL are not
  // resumable: writes fail until the store is reopened (the server restarted).
  auto now = std::chrono::steady_clock::now();
  if (now < next_resume_) return;
  next_resume_ = now + kResumeInterval;
  uint64_t memtables = 0, free_space = 0;
  db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &memtables);
  rocksdb::IOStatus fs = db_->GetEnv()->GetFileSystem()->GetFreeSpace(
      options_.dir, rocksdb::IOOptions(), &free_space, nullptr);
  if (fs.ok() && free_space < 2 * memtables + kResumeHeadroomBytes) return;
  needs_resume_ = !db_->Resume().ok();
}

void Store::StartWriter() {
  writer_ = std::thread([this] { WriterLoop(); });
  writer_id_ = writer_.get_id();
}

void Store::StopWriter() {
  if (!writer_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  writer_.join();
}

void Store::Submit(WriteBatch batch, std::function<void(const Status&)> on_done) {
  if (options_.read_only) {
    if (on_done) on_done(Status::InvalidArgument("store " + options_.dir + " is open read-only"));
    return;
  }
  bool wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    // A non-empty queue means the writer is busy and will look again before sleeping.
    wake = queue_.empty() || gathering_;
    if (batch.sync()) queued_sync_updates_ += batch.count();
    queue_.push_back(Pending{std::move(batch), std::move(on_done)});
  }
  if (wake) cv_.notify_one();
}

Status Store::Write(WriteBatch batch) {
  if (std::this_thread::get_id() == writer_id_) {
    return Status::InvalidArgument("Store::Write called on the store's writer thread");
  }
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  Submit(std::move(batch), [&done](const Status& s) { done.set_value(s); });
  return result.get();
}

Store::Stats Store::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void Store::WriterLoop() {
  std::vector<Pending> group;
  uint64_t sync_updates = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything submitted is written
      GatherLocked(l);
      group.swap(queue_);
      sync_updates = std::exchange(queued_sync_updates_, 0);
    }
    Status s = WriteGroup(group, sync_updates);
    for (Pending& p : group) {
      if (p.on_done) p.on_done(s);
    }
    group.clear();
  }
}

// Synchronous publishers (one confirm in flight each) send their next message one round trip
// after the fsync that confirmed the last one, spread over part of an fsync. Written as soon as
// the first arrives, they would split into two groups that alternate, each with half of them. So
// a synced group smaller than the last one waits, up to half an average fsync, for as many
// updates as the last one carried: they share one fsync. A smaller group after the wait sets the
// next target, so publishers that went away cost one wait.
void Store::GatherLocked(std::unique_lock<std::mutex>& l) {
  if (!options_.sync_writes || queued_sync_updates_ == 0 || queued_sync_updates_ >= last_sync_updates_) return;
  const auto wait = std::chrono::microseconds(std::min(fsync_micros_avg_ / 2, kMaxGatherMicros));
  gathering_ = true;
  cv_.wait_for(l, wait, [this] { return stopping_ || queued_sync_updates_ >= last_sync_updates_; });
  gathering_ = false;
}

Status Store::WriteGroup(std::vector<Pending>& group, uint64_t sync_updates) {
  if (needs_resume_) TryResume();
  const auto started = std::chrono::steady_clock::now();
  bool want_sync = false;
  for (const Pending& p : group) want_sync |= p.batch.sync();
  want_sync &= options_.sync_writes;

  // The RocksDB writes of this group, in submission order: merged runs of small batches, and
  // large batches as they are. Only the group's last write (or a SyncWAL after it) syncs.
  std::vector<rocksdb::WriteBatch*> writes;
  std::deque<rocksdb::WriteBatch> merged;  // deque: stable addresses
  rocksdb::Status s;
  if (group.size() == 1) {
    writes.push_back(&group[0].batch.rep());
  } else {
    rocksdb::WriteBatch* open = nullptr;  // the merged batch still taking records
    for (Pending& p : group) {
      if (p.batch.empty()) continue;
      if (p.batch.ByteSize() >= kDirectWriteBytes) {
        writes.push_back(&p.batch.rep());
        open = nullptr;  // later batches must not jump ahead of this one
        continue;
      }
      if (open == nullptr) {
        open = &merged.emplace_back();
        writes.push_back(open);
      }
      AppendTo append(open, handles_);
      s = p.batch.rep().Iterate(&append);
      if (!s.ok()) break;
    }
  }

  uint64_t sync_micros = 0;
  size_t written = 0;
  for (size_t i = 0; s.ok() && i < writes.size(); ++i) {
    rocksdb::WriteOptions wo;
    wo.sync = want_sync && writes.size() == 1;
    auto t0 = std::chrono::steady_clock::now();
    s = db_->Write(wo, writes[i]);
    if (wo.sync) {
      sync_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - t0).count();
    }
    ++written;
  }
  bool synced = want_sync && s.ok() && writes.size() == 1;
  if (s.ok() && want_sync && writes.size() > 1) {
    auto t0 = std::chrono::steady_clock::now();
    s = db_->SyncWAL();
    sync_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - t0).count();
    synced = s.ok();
  }
  if (!s.ok()) needs_resume_ = true;
  if (synced) {
    last_sync_updates_ = sync_updates;
    fsync_micros_avg_ = (fsync_micros_avg_ * 7 + sync_micros) / 8;
  }

  const uint64_t write_micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
  std::lock_guard<std::mutex> l(mu_);
  stats_.write_micros_total += write_micros;
  stats_.write_micros_histogram[HistogramBucket(write_micros)] += 1;
  stats_.batches += group.size();
  stats_.groups += 1;
  stats_.max_group_batches = std::max<uint64_t>(stats_.max_group_batches, group.size());
  if (synced) {
    stats_.syncs += 1;
    stats_.sync_micros_total += sync_micros;
    stats_.sync_micros_histogram[HistogramBucket(sync_micros)] += 1;
  }
  if (!s.ok()) stats_.failed_groups += 1;
  return Status::FromRocksDB(s, "write");
}

}  // namespace warren::storage
