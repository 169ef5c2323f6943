// FaultInjectionFS: a RocksDB FileSystem for crash tests (after LevelDB's FaultInjectionTestEnv).
//
// It forwards everything to a base FileSystem and remembers, for every file written through it,
// how many bytes were appended and how many of those an fsync made durable, and which files were
// created or renamed since their directory was last fsynced. A simulated machine crash is:
//   SetActive(false)     the machine stops: every later write, sync, create, rename or delete
//                        fails, so nothing more reaches the disk;
//   (close the DB)       whatever the DB tries while closing fails;
//   DropUnsyncedData()   the disk as it would be after power loss: files truncated to their
//                        synced size (or to a random point between synced and written size, a
//                        torn write), files whose directory entry was never synced deleted, a
//                        file replaced by an unsynced rename restored.
// Files that existed before this FileSystem saw them count as durable.
//
// Thread-safety: thread-safe; RocksDB calls it from its writer and background threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>

#include <rocksdb/file_system.h>

namespace warren::storage {

class FaultInjectionFS : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectionFS(std::shared_ptr<rocksdb::FileSystem> base);
  const char* Name() const override { return "FaultInjectionFS"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;

  // false: the machine has stopped (see above). Initially true.
  void SetActive(bool active) { active_ = active; }
  bool active() const { return active_; }
  // true: the disk is full; what would fail while inactive fails with NoSpace instead.
  void SetNoSpace(bool no_space) { no_space_ = no_space; }

  // Puts the disk in its post-crash state. rng == nullptr drops every unsynced byte; otherwise
  // each file keeps a random prefix of its unsynced bytes. Forgets all tracking afterwards.
  // REQUIRES: nothing has the files open (the DB is closed).
  rocksdb::IOStatus DropUnsyncedData(std::mt19937* rng);

  // Number of Sync/Fsync calls that reached the base FileSystem (files and directories).
  uint64_t syncs() const { return syncs_; }

  // Called by the file and directory wrappers.
  rocksdb::IOStatus Check() const;
  void OnAppend(const std::string& path, uint64_t size);
  void OnTruncate(const std::string& path, uint64_t size);
  void OnSync(const std::string& path, uint64_t synced_size);
  uint64_t WrittenSize(const std::string& path);
  void OnDirSync(const std::string& dir);

 private:
  struct FileState {
    uint64_t written = 0;
    uint64_t synced = 0;
  };
  static std::string DirOf(const std::string& path);

  std::atomic<bool> active_{true};
  std::atomic<bool> no_space_{false};
  std::atomic<uint64_t> syncs_{0};
  std::mutex mu_;
  std::map<std::string, FileState> files_;      // files written through us, by path
  std::set<std::string> unsynced_entries_;      // created/renamed since their dir was synced
  std::map<std::string, std::string> replaced_; // path -> content an unsynced rename replaced
};

}  // namespace warren::storage
