// The workload: a queue is an append at the tail and a delete at the head, usually within
// seconds; most message bytes are written once and deleted before they are ever read back.
// Definitions are tiny and rarely written. Reads happen at startup (ScanQueue per queue) and in
// tools, never on the publish/deliver hot path. The machines have 2 cores.
#include "storage/db_options.h"

#include <rocksdb/cache.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>

#include "storage/store.h"

namespace warren::storage {

namespace {

constexpr size_t kMiB = 1 << 20;

std::shared_ptr<rocksdb::Cache> SharedBlockCache() {
  // Blocks are read at startup and by tools; a small cache shared by every family suffices.
  static std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(32 * kMiB);
  return cache;
}

// RocksDB would start its own recovery thread for a full disk, racing the writer's Resume()
// (and, in 7.8, sometimes never finishing when space returns). With it off, the writer thread
// is the only one resuming: before the next group after a failure.
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

}  // namespace

rocksdb::DBOptions MakeDBOptions(const StoreOptions& options) {
  rocksdb::DBOptions d;
  if (options.env != nullptr) d.env = options.env;
  // Refuse to open over inconsistencies RocksDB can detect instead of dropping data silently.
  d.paranoid_checks = true;
  // A torn last WAL record after kill -9 or power loss is expected and dropped whole (every batch
  // before it is whole). Damage before the end of a WAL fails the open: point-in-time recovery
  // would silently drop every record after it, confirmed messages included. Truncating there is
  // the operator's explicit choice (truncate_corrupt_wal), after keeping a copy.
  // That needs sync_writes: a synced write syncs every live WAL, so only the newest can end torn.
  // Without it an older WAL may lose its unsynced tail while a newer one keeps its data, and
  // tolerating each tail would replay around the hole; point-in-time recovery stops at the first
  // bad record, so what survives stays a prefix.
  d.wal_recovery_mode = options.truncate_corrupt_wal || !options.sync_writes
                            ? rocksdb::WALRecoveryMode::kPointInTimeRecovery
                            : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Two cores: one flush and one compaction at a time, leaving the other core to the broker.
  d.max_background_jobs = 2;
  // A secondary instance (warren-dump) keeps every table open, so the primary's compactions
  // deleting files cannot pull tables out from under it; the primary honours the cap it is given.
  d.max_open_files = options.read_only ? -1 : options.max_open_files;
  // The definitions family is rarely written; without a cap its oldest unflushed record would
  // keep every WAL file alive. Past this size RocksDB flushes the families pinning old WALs.
  d.max_total_wal_size = 256 * kMiB;
  // All memtables together; a flush starts when they exceed it.
  d.db_write_buffer_size = 512 * kMiB;
  // Smooth the writeback of flushed and compacted tables instead of one large fsync at the end.
  d.bytes_per_sync = 1 * kMiB;
  d.listeners.push_back(std::make_shared<NoAutoRecovery>());
  // The info logs of read-only opens; a writable store logs through InfoLog (store_open.cc).
  d.keep_log_file_num = 4;
  d.max_log_file_size = 16 * kMiB;
  return d;
}

rocksdb::ColumnFamilyOptions MakeFamilyOptions(Family family, const StoreOptions& options) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = SharedBlockCache();
  // Sizes levels from the bottom up, so ~90% of data sits in the last level and deletions reach
  // it (and are dropped) after fewer rewrites; also bounds space amplification.
  cf.level_compaction_dynamic_level_bytes = true;

  size_t message_buffer = options.write_buffer_size;
  switch (family) {
    case Family::kMeta:
    case Family::kDefinitions:
      cf.write_buffer_size = 4 * kMiB;
      cf.compression = rocksdb::kLZ4Compression;  // small, repetitive records
      break;
    case Family::kIndex:
    case Family::kDelivery:
    case Family::kBodies:
      // Large memtables: a message published and acked before its memtable is flushed never
      // reaches disk beyond the WAL (PutMessage/SingleDelete cancel out in the flush), which for
      // a consuming queue is nearly every message.
      if (message_buffer == 0) message_buffer = family == Family::kDelivery ? 16 * kMiB : 64 * kMiB;
      cf.write_buffer_size = message_buffer;
      cf.max_write_buffer_number = 3;  // keep accepting writes while one memtable flushes
      // Bodies are often already compressed and CPU is scarce; messages are short-lived.
      cf.compression = rocksdb::kNoCompression;
      cf.bottommost_compression = rocksdb::kLZ4Compression;  // only long-lived backlogs get here
      table.block_size = 16 * 1024;  // scans read sequentially; bigger blocks, fewer lookups
      if (family != Family::kBodies) {
        // Acks leave tombstones at a queue's head; a table dense with them is compacted early so
        // a startup scan does not step over them. 128-entry window, compacted at half deletions.
        cf.table_properties_collector_factories.push_back(
            rocksdb::NewCompactOnDeletionCollectorFactory(128, 64));
      } else {
        // Bodies are looked up by key (ScanQueue resolving references).
        table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      }
      break;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

}  // namespace warren::storage
