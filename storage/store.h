// Store: Warren's durable state in one RocksDB database — definitions (vhosts, users,
// permissions, exchanges, queues, bindings), persistent messages and their delivery state.
//
// Threads: the broker thread builds WriteBatches and hands them to Submit; the store's own
// writer thread (owned by the Store, started by Open, joined by the destructor) writes them with
// group commit: every batch submitted while one write+fsync is running goes into the next write,
// so concurrent publishers share fsyncs. Completions run on the writer thread. Every public method
// is thread-safe; reads (List*, ScanQueue, Recover) run on the calling thread against a
// consistent snapshot and do not wait for the writer. The store's reader thread (also owned,
// started and joined by it) runs the reads handed to SubmitRead, so that the broker thread does
// not wait for the disk either.
//
// Layout and value formats: storage/format.h. Data dir convention: the server's --data-dir DIR
// holds the store in DIR/store (StoreDirFor), leaving DIR free for other files.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proto/warren.pb.h"
#include "storage/format.h"
#include "storage/message.h"
#include "storage/status.h"
#include "storage/write_batch.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
}  // namespace rocksdb

namespace warren::storage {

struct StoreOptions {
  // The RocksDB directory itself. Created (with parents) when missing or empty.
  std::string dir;
  // false: batches are written to the OS but never fsynced (faster; a machine crash may lose the
  // last writes, a process crash does not). The user's choice, not a default.
  bool sync_writes = true;
  // Opens without writing: a RocksDB secondary instance (no lock; works while a server has the
  // store open, and sees its writes up to the moment of Open or Refresh). No writer thread;
  // Submit/Write fail with InvalidArgument and Recover only counts.
  bool read_only = false;
  // A WAL damaged before its end (not a torn last record) makes Open fail with Corruption. true:
  // replay it up to the damage and drop the rest instead (records after it are lost). For an
  // operator who kept a copy of the directory and chose to start with what precedes the damage.
  bool truncate_corrupt_wal = false;
  // Fault injection in tests; nullptr = rocksdb::Env::Default().
  rocksdb::Env* env = nullptr;
  // Memtable size of the message column families; 0 = the tuned default (storage/db_options.cc).
  // Tests set it small to force flushes.
  size_t write_buffer_size = 0;
  // Most table files a writable store keeps open (RocksDB's max_open_files; -1 = all). The server
  // caps it so sockets cannot starve the store of file descriptors. A read-only store keeps all.
  int max_open_files = -1;
};

// A record that could not be used: where it was, why, and its bytes.
struct QuarantinedRecord {
  Family family = Family::kMeta;
  std::string key;
  std::string reason;
  std::string value;
};

struct RecoveryInfo {
  uint64_t max_body_id = 0;  // largest body id present (including removed orphans)
  uint64_t messages = 0;     // index entries
  uint64_t orphan_bodies_removed = 0;
  uint64_t orphan_delivery_states_removed = 0;  // delivery state without an index entry
  std::unordered_map<uint64_t, uint32_t> shared_body_refs;  // body id -> index entries to it
  // Message records moved to quarantine (not decodable, or referencing a missing or undecodable
  // body); a read-only store only reports them.
  std::vector<QuarantinedRecord> quarantined;
  std::vector<uint64_t> queue_ids;  // queues with index entries, ascending
  std::unordered_map<uint64_t, uint64_t> delivery_horizons;  // queue id -> its delivery horizon
};

// "DIR/store": where the server keeps its store inside --data-dir DIR.
std::string StoreDirFor(std::string_view data_dir);

// What Store::Checkpoint wrote: enough for a manifest that lets the copy be verified.
struct CheckpointInfo {
  struct File {
    std::string path;  // relative to the checkpoint's data dir: "store/000012.sst"
    uint64_t size = 0;
    std::string sha256;  // lowercase hex, as sha256sum prints it
  };
  uint32_t format_version = 0;
  // Every write with a sequence number up to this one is in the copy (RocksDB's guarantee;
  // later ones may be too).
  uint64_t sequence_number = 0;
  // Table files were hard-linked (same file system) rather than copied.
  bool same_filesystem = false;
  std::vector<File> files;  // sorted by path
};

class Store {
 public:
  // Creates a new store or opens an existing one. Refuses, with a Status naming the problem and
  // without writing a record: a directory that is not a Warren store (non-empty and not
  // RocksDB, or a RocksDB database without Warren's marker — left unmodified), a newer format
  // version, a store another process has open (the Status names the lock file and its holder),
  // a WAL damaged before its end (unless truncate_corrupt_wal), and corruption RocksDB detects at
  // open. Each refusal's message names a safe next step. Never starts empty over data it cannot
  // read. See README.md for the exact rules.
  static Status Open(const StoreOptions& options, std::unique_ptr<Store>* out);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  // Writes every batch already submitted (running its on_done), stops the writer, closes the DB.
  // REQUIRES: no concurrent Submit/Write.
  ~Store();

  // Definitions, sorted by their identity (vhost, then name, ...). A record that does not parse
  // is Corruption, or, with `unparsable`, skipped and appended there (for Quarantine).
  Status ListVhosts(std::vector<proto::VhostRecord>* out, std::vector<QuarantinedRecord>* unparsable = nullptr);
  Status ListUsers(std::vector<proto::UserRecord>* out, std::vector<QuarantinedRecord>* unparsable = nullptr);
  Status ListPermissions(std::vector<proto::PermissionRecord>* out,
                         std::vector<QuarantinedRecord>* unparsable = nullptr);
  Status ListTopicPermissions(std::vector<proto::TopicPermissionRecord>* out,
                              std::vector<QuarantinedRecord>* unparsable = nullptr);
  Status ListExchanges(std::vector<proto::ExchangeRecord>* out, std::vector<QuarantinedRecord>* unparsable = nullptr);
  Status ListQueues(std::vector<proto::QueueRecord>* out, std::vector<QuarantinedRecord>* unparsable = nullptr);
  Status ListBindings(std::vector<proto::BindingRecord>* out, std::vector<QuarantinedRecord>* unparsable = nullptr);
  // kind: kPolicy or kOperatorPolicy.
  Status ListPolicies(DefKind kind, std::vector<proto::PolicyRecord>* out,
                      std::vector<QuarantinedRecord>* unparsable = nullptr);

  // Quarantine: moves the record `key` of `family` aside (format.h), with `reason`, in one
  // synchronous write, so recovery can start without it and nothing is lost. NotFound when there
  // is no such record. REQUIRES: not read-only; not on the writer thread.
  Status Quarantine(Family family, std::string_view key, std::string_view reason);
  // Every quarantined record, in key order (family, then original key).
  Status ListQuarantined(std::vector<QuarantinedRecord>* out);

  // Startup: removes bodies no index entry references (a crash between an ack and the body's
  // delete) and delivery states without an index entry, and counts references of shared bodies.
  // Quarantines (info->quarantined) index entries that do not decode or reference a missing or
  // undecodable body, such bodies, and delivery states that do not decode, so that one bad record
  // does not stop the start. Fails only when RocksDB does.
  // REQUIRES: called before the broker submits batches touching messages.
  Status Recover(RecoveryInfo* info);

  // Visits queue_id's messages with seq >= from_seq in seq order, bodies resolved and delivery
  // state merged, from one snapshot. fn returns false to stop. Iterator bounds confine the scan
  // to the queue, so deleted entries before from_seq and other queues cost nothing.
  // The StoredMessage passed to fn is reused between calls (move out of it if keeping it).
  Status ScanQueue(uint64_t queue_id, uint64_t from_seq,
                   const std::function<bool(const StoredMessage&)>& fn);

  // Visits the delayed messages (format.h) with keys in [from, end), in key order, from one
  // snapshot; fn gets the key and the decoded value (views valid during the call) and returns
  // false to stop. A value that does not decode is Corruption.
  Status ScanDelayed(std::string_view from, std::string_view end,
                     const std::function<bool(std::string_view key, const MessageView& message)>& fn);

  // A stream's segment records, in offset order (format.h). A record that does not decode is
  // Corruption.
  Status ListStreamSegments(uint64_t queue_id, std::vector<StreamSegment>* out);

  // Asynchronous group commit. on_done (may be empty) runs on the writer thread after the batch,
  // merged with every batch queued meanwhile, is written; fsynced first if any merged batch has
  // sync() and the store has sync_writes. Batches are applied in submission order. On a write or
  // sync error every batch of that group gets the error (a batch that got an error may or may not
  // survive a crash; it is never half-applied) and the writer calls DB::Resume before the next
  // group. on_done must not block for long: the next group waits for it.
  void Submit(WriteBatch batch, std::function<void(const Status&)> on_done);
  // Runs `read` on the store's reader thread, after every read submitted before it; it sees
  // every write completed before it starts. Reads left at destruction still run (before the DB
  // closes). `read` must not wait for a later read.
  void SubmitRead(std::function<void()> read);
  // Submit and wait. For startup and admin paths.
  // REQUIRES: not called on the writer thread (i.e. not from an on_done).
  Status Write(WriteBatch batch);

  struct Stats {
    uint64_t batches = 0;  // batches written (including failed)
    uint64_t groups = 0;   // writes to RocksDB (one per group)
    uint64_t syncs = 0;    // WAL fsyncs
    uint64_t sync_micros_total = 0;
    uint64_t max_group_batches = 0;
    uint64_t failed_groups = 0;
    // sync_micros_histogram[i] counts fsyncs that took < 2^i * 64 us (the last bucket: longer).
    std::array<uint64_t, 16> sync_micros_histogram{};
    // The same for whole group writes: merging the group's batches, writing them to RocksDB and
    // the fsync; one per group.
    uint64_t write_micros_total = 0;
    std::array<uint64_t, 16> write_micros_histogram{};
  };
  Stats stats() const;

  // Online backup: a consistent copy of the store, laid out as a server data dir (`data_dir`/store,
  // StoreDirFor), that a server started with --data-dir data_dir opens as it would after a crash at
  // the moment of the call: every write completed (for a synced one: confirmed) before the call is
  // in it. A RocksDB checkpoint without a memtable flush: table files are hard-linked when
  // data_dir is on the store's file system and copied otherwise; the MANIFEST and the live WAL
  // files are copied (the newest up to its size at the call; a record being appended then ends
  // the copy torn, and recovery drops it whole). Writers never wait for it. `data_dir` must be
  // an absolute path outside the store, missing or an empty directory (InvalidArgument
  // otherwise, nothing written); one checkpoint at a time (Busy). Fills *info with every file
  // and its SHA-256. Thread-safe; slow (reads every file): not for the broker or writer thread.
  // REQUIRES: not read-only.
  Status Checkpoint(const std::string& data_dir, CheckpointInfo* info);

  // ---- For tools (warren-dump) and tests ----
  // Visits every key/value of one column family in key order, from one snapshot.
  Status ForEach(Family family,
                 const std::function<bool(std::string_view key, std::string_view value)>& fn);
  // A RocksDB integer property of a family, e.g. "rocksdb.estimate-num-keys".
  Status GetIntProperty(Family family, std::string_view name, uint64_t* value);
  // Read-only stores: catches up with the writes the server made since Open. No-op otherwise.
  // REQUIRES: no read of this store runs concurrently (a secondary instance has no snapshots).
  Status Refresh();
  // Compacts a column family (tests: push deletions through to the bottom level).
  Status CompactForTesting(Family family);
  Status FlushForTesting();
  uint32_t format_version() const { return format_version_; }
  const std::string& dir() const { return options_.dir; }
  bool read_only() const { return options_.read_only; }

 private:
  struct Pending {
    WriteBatch batch;
    std::function<void(const Status&)> on_done;
  };

  explicit Store(const StoreOptions& options);
  Status OpenDB();  // defined in store_open.cc
  Status CheckOrWriteMeta();
  Status WriteMeta(const proto::StoreMeta& meta);  // synced
  Status AllFamiliesEmpty(bool* empty);
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return handles_[static_cast<uint32_t>(f)]; }
  template <typename Record>
  Status ListDefinitions(DefKind kind, std::vector<Record>* out, std::vector<QuarantinedRecord>* unparsable);

  // Writer thread (store_writer.cc).
  void StartWriter();
  void StopWriter();
  void WriterLoop();
  // `sync_updates`: the updates in the group's batches that asked for an fsync.
  Status WriteGroup(std::vector<Pending>& group, uint64_t sync_updates);
  // REQUIRES: mu_ held (by `l`), queue_ not empty.
  void GatherLocked(std::unique_lock<std::mutex>& l);
  void TryResume();
  // Reader thread (store_reader.cc).
  void StartReader();
  void StopReader();
  void ReaderLoop();

  const StoreOptions options_;
  std::string secondary_dir_;  // read-only: the secondary instance's scratch dir, removed on close
  uint32_t format_version_ = 0;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by Family

  // Guards queue_, queued_sync_updates_, gathering_, stopping_ and stats_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> queue_;
  uint64_t queued_sync_updates_ = 0;  // updates in queue_'s batches that asked for an fsync
  bool gathering_ = false;            // the writer waits for more batches (GatherLocked)
  bool stopping_ = false;
  Stats stats_;
  // Touched only by the writer thread.
  uint64_t last_sync_updates_ = 0;  // updates the last synced group carried in batches that asked for it
  uint64_t fsync_micros_avg_ = 0;   // moving average of fsync times
  bool needs_resume_ = false;
  std::chrono::steady_clock::time_point next_resume_;
  std::thread writer_;
  std::thread::id writer_id_;
  std::mutex checkpoint_mu_;  // held by the running Checkpoint
  // Guards reads_ and reader_stopping_.
  std::mutex reader_mu_;
  std::condition_variable reader_cv_;
  std::deque<std::function<void()>> reads_;
  bool reader_stopping_ = false;
  std::thread reader_;
};

}  // namespace warren::storage
