// FaultInjectionFS: a RocksDB FileSystem for crash tests (after LevelDB's FaultInjectionTestEnv).
//
// It forwards everything to a base FileSystem and remembers, for every file written through it,
// how many bytes were appended and how many of those an fsync made durable, and which files were
// created or renamed since their directory was last fsynced. CopyDurableState pauses every write
// for an instant and copies into another directory the disk image a power loss at that instant
// would leave: files cut to their synced size (or, given an rng, to a random point between
// synced and written size: a torn write), files whose directory entry was never synced left
// out, a file replaced by an unsynced rename restored. Files that existed before this
// FileSystem saw them count as durable. The DB then goes on and is closed normally, and the
// test opens the image. (Closing a DB whose disk failed under it trips an assertion in
// Debian's RocksDB 7.8, so a test that stops the disk in place must not close the DB.)
// CutPower does that for a whole process (the power-cut server build, tests/power_cut/):
// it applies the same image in place and stops every later write; the process then exits
// without closing anything.
// SetActive(false) and SetNoSpace(true) make every write fail, Stall every write wait, for
// error-path tests.
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
#include <shared_mutex>
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
  // 0 while SetNoSpace(true).
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o,
                                 uint64_t* diskfree, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;

  // false: every write, sync, create, rename or delete fails with IOError. Initially true.
  void SetActive(bool active) { active_ = active; }
  bool active() const { return active_; }
  // true: the disk is full; what would fail while inactive fails with NoSpace instead.
  void SetNoSpace(bool no_space) { no_space_ = no_space; }
  // A disk that stops answering: every later write, sync, create, rename or delete waits
  // (one under way finishes first) until the returned lock is released, by the thread that
  // took it. CopyDurableState and CutPower wait for it too.
  std::unique_lock<std::shared_mutex> Stall() { return std::unique_lock<std::shared_mutex>(io_mu_); }

  // Copies the post-crash image of directory `dir` (flat, as a RocksDB directory is) into
  // `dst` (created), without changing `dir` or the tracking. rng == nullptr drops every
  // unsynced byte. Writes through this FileSystem wait while it copies.
  rocksdb::IOStatus CopyDurableState(const std::string& dir, const std::string& dst,
                                     std::mt19937* rng);

  struct CutStats {
    uint64_t files_cut = 0;      // files that lost unsynced bytes
    uint64_t bytes_dropped = 0;  // unsynced bytes dropped from them
    uint64_t files_removed = 0;  // files whose directory entry was not durable
    uint64_t files_restored = 0; // files an unsynced rename had replaced, put back
  };
  // A power cut of directory `dir` now: rewrites it in place to what CopyDurableState would copy
  // (rng as there), after which the tracking matches the disk. *stopped receives the lock that
  // keeps every later write through this FileSystem waiting: hold it until the process ends
  // (releasing it lets writes go on against files the DB no longer matches).
  rocksdb::IOStatus CutPower(const std::string& dir, std::mt19937* rng, CutStats* stats,
                             std::unique_lock<std::shared_mutex>* stopped);

  // Number of Sync/Fsync calls that reached the base FileSystem (files and directories).
  uint64_t syncs() const { return syncs_; }

  // Called by the file and directory wrappers. Every mutating operation holds Guard() for
  // its duration, so that CopyDurableState sees no operation half done; a file sync holds it
  // before and after the sync, not during it (a cut does not wait for an fsync to finish).
  std::shared_lock<std::shared_mutex> Guard() { return std::shared_lock<std::shared_mutex>(io_mu_); }
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

  uint64_t KeepSize(const FileState& f, std::mt19937* rng) const;
  // What a power loss now leaves at `path`, a regular file of `size` bytes in a watched
  // directory: nothing, the content an unsynced rename replaced, or the first `keep` bytes.
  struct Survivor {
    bool exists = true;
    const std::string* replaced = nullptr;
    uint64_t keep = 0;
  };
  Survivor SurvivorOf(const std::string& path, uint64_t size, std::mt19937* rng) const;  // REQUIRES: mu_ held

  std::shared_mutex io_mu_;
  std::atomic<bool> active_{true};
  std::atomic<bool> no_space_{false};
  std::atomic<uint64_t> syncs_{0};
  std::mutex mu_;
  std::map<std::string, FileState> files_;      // files written through us, by path
  std::set<std::string> unsynced_entries_;      // created/renamed since their dir was synced
  std::map<std::string, std::string> replaced_; // path -> content an unsynced rename replaced
};

}  // namespace warren::storage
