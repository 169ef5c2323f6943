#include "storage/fault_injection_fs.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace warren::storage {

namespace fs = std::filesystem;
using rocksdb::IOStatus;

namespace {

class TrackedFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(FaultInjectionFS* fs, std::string path, std::unique_ptr<rocksdb::FSWritableFile> f)
      : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), path_(std::move(path)) {}

  IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                  rocksdb::IODebugContext* dbg) override {
    auto guard = fs_->Guard();
    IOStatus s = fs_->Check();
    if (s.ok()) s = target()->Append(data, o, dbg);
    if (s.ok()) fs_->OnAppend(path_, data.size());
    return s;
  }
  IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                  const rocksdb::DataVerificationInfo&, rocksdb::IODebugContext* dbg) override {
    return Append(data, o, dbg);
  }
  IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                            rocksdb::IODebugContext*) override {
    return IOStatus::NotSupported("FaultInjectionFS: positioned append (direct I/O)");
  }
  IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                            const rocksdb::DataVerificationInfo&, rocksdb::IODebugContext*) override {
    return IOStatus::NotSupported("FaultInjectionFS: positioned append (direct I/O)");
  }
  IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    auto guard = fs_->Guard();
    IOStatus s = fs_->Check();
    if (s.ok()) s = target()->Truncate(size, o, dbg);
    if (s.ok()) fs_->OnTruncate(path_, size);
    return s;
  }
  IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    IOStatus s = fs_->Check();
    return s.ok() ? target()->Flush(o, dbg) : s;
  }
  IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return DoSync([&] { return target()->Sync(o, dbg); });
  }
  IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return DoSync([&] { return target()->Fsync(o, dbg); });
  }
  // sync_file_range makes no durability promise (no metadata, no disk cache flush): forward it
  // but do not count it as a sync.
  IOStatus RangeSync(uint64_t off, uint64_t n, const rocksdb::IOOptions& o,
                     rocksdb::IODebugContext* dbg) override {
    IOStatus s = fs_->Check();
    return s.ok() ? target()->RangeSync(off, n, o, dbg) : s;
  }

 private:
  template <typename F>
  IOStatus DoSync(F sync) {
    uint64_t size = 0;
    {
      auto guard = fs_->Guard();
      IOStatus s = fs_->Check();
      if (!s.ok()) return s;
      // Only what was appended before the sync started is known to be covered by it.
      size = fs_->WrittenSize(path_);
    }
    // The sync itself runs unguarded: a power cut (or image) taken while it runs does not wait
    // for it, and loses what it was making durable, as on a real disk. It counts only once it
    // has returned, and after a CutPower never does (the guard then waits forever).
    IOStatus s = sync();
    auto guard = fs_->Guard();
    if (s.ok()) fs_->OnSync(path_, size);
    return s;
  }

  FaultInjectionFS* fs_;
  std::string path_;
};

class TrackedDir final : public rocksdb::FSDirectoryWrapper {
 public:
  TrackedDir(FaultInjectionFS* fs, std::string path, std::unique_ptr<rocksdb::FSDirectory> d)
      : FSDirectoryWrapper(std::move(d)), fs_(fs), path_(std::move(path)) {}

  IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    auto guard = fs_->Guard();
    IOStatus s = fs_->Check();
    if (s.ok()) s = FSDirectoryWrapper::Fsync(o, dbg);
    if (s.ok()) fs_->OnDirSync(path_);
    return s;
  }
  IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& d) override {
    auto guard = fs_->Guard();
    IOStatus s = fs_->Check();
    if (s.ok()) s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
    if (s.ok()) fs_->OnDirSync(path_);
    return s;
  }

 private:
  FaultInjectionFS* fs_;
  std::string path_;
};

std::string Normalize(const std::string& path) {
  return fs::path(path).lexically_normal().string();
}

}  // namespace

FaultInjectionFS::FaultInjectionFS(std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(base) {}

std::string FaultInjectionFS::DirOf(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  // Directory paths come without a trailing slash from RocksDB, but be lenient.
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

IOStatus FaultInjectionFS::Check() const {
  if (!active_) return IOStatus::IOError("FaultInjectionFS: simulated I/O error");
  if (no_space_) return IOStatus::NoSpace("FaultInjectionFS: simulated full disk");
  return IOStatus::OK();
}

void FaultInjectionFS::OnAppend(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  files_[path].written += size;
}

void FaultInjectionFS::OnTruncate(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  FileState& f = files_[path];
  f.written = size;
  f.synced = std::min(f.synced, size);
}

void FaultInjectionFS::OnSync(const std::string& path, uint64_t synced_size) {
  syncs_++;
  std::lock_guard<std::mutex> l(mu_);
  FileState& f = files_[path];
  f.synced = std::max(f.synced, synced_size);
}

uint64_t FaultInjectionFS::WrittenSize(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return files_[path].written;
}

void FaultInjectionFS::OnDirSync(const std::string& dir) {
  syncs_++;
  std::string d = Normalize(dir);
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = unsynced_entries_.begin(); it != unsynced_entries_.end();) {
    if (DirOf(*it) == d) {
      replaced_.erase(*it);
      it = unsynced_entries_.erase(it);
    } else {
      ++it;
    }
  }
}

IOStatus FaultInjectionFS::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                           std::unique_ptr<rocksdb::FSWritableFile>* r,
                                           rocksdb::IODebugContext* dbg) {
  auto guard = Guard();
  IOStatus s = Check();
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->NewWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  std::string path = Normalize(f);
  {
    std::lock_guard<std::mutex> l(mu_);
    files_[path] = FileState();
    unsynced_entries_.insert(path);
  }
  *r = std::make_unique<TrackedFile>(this, path, std::move(file));
  return s;
}

IOStatus FaultInjectionFS::ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                              std::unique_ptr<rocksdb::FSWritableFile>* r,
                                              rocksdb::IODebugContext* dbg) {
  auto guard = Guard();
  IOStatus s = Check();
  if (!s.ok()) return s;
  std::string path = Normalize(f);
  std::error_code ec;
  uint64_t existing = fs::exists(path, ec) ? fs::file_size(path, ec) : 0;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReopenWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) {
      // Written before we were watching: its current content counts as durable.
      files_[path] = FileState{existing, existing};
    }
  }
  *r = std::make_unique<TrackedFile>(this, path, std::move(file));
  return s;
}

IOStatus FaultInjectionFS::ReuseWritableFile(const std::string&, const std::string&,
                                             const rocksdb::FileOptions&,
                                             std::unique_ptr<rocksdb::FSWritableFile>*,
                                             rocksdb::IODebugContext*) {
  // WAL recycling is off in Warren; refusing keeps every file tracked.
  return IOStatus::NotSupported("FaultInjectionFS: ReuseWritableFile");
}

IOStatus FaultInjectionFS::NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                        std::unique_ptr<rocksdb::FSDirectory>* r,
                                        rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  IOStatus s = target()->NewDirectory(name, o, &dir, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<TrackedDir>(this, Normalize(name), std::move(dir));
  return s;
}

IOStatus FaultInjectionFS::DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                                      rocksdb::IODebugContext* dbg) {
  auto guard = Guard();
  IOStatus s = Check();
  if (!s.ok()) return s;
  s = target()->DeleteFile(f, o, dbg);
  if (s.ok()) {
    std::string path = Normalize(f);
    std::lock_guard<std::mutex> l(mu_);
    files_.erase(path);
    unsynced_entries_.erase(path);
    replaced_.erase(path);
  }
  return s;
}

IOStatus FaultInjectionFS::RenameFile(const std::string& src, const std::string& dst,
                                      const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) {
  auto guard = Guard();
  IOStatus s = Check();
  if (!s.ok()) return s;
  std::string from = Normalize(src), to = Normalize(dst);
  // If the rename replaces a durable file and the directory is not synced before the crash,
  // the old file is what the disk shows: keep its content to restore it.
  std::string old_content;
  bool replaces_durable = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    replaces_durable = fs::exists(to) && !unsynced_entries_.count(to) && !replaced_.count(to);
  }
  if (replaces_durable) {
    std::ifstream in(to, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    old_content = ss.str();
  }
  s = target()->RenameFile(src, dst, o, dbg);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(from);
  if (it != files_.end()) {
    files_[to] = it->second;
    files_.erase(it);
  } else {
    files_.erase(to);
  }
  unsynced_entries_.erase(from);
  unsynced_entries_.insert(to);
  if (replaces_durable) replaced_[to] = std::move(old_content);
  return s;
}

IOStatus FaultInjectionFS::GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o,
                                        uint64_t* diskfree, rocksdb::IODebugContext* dbg) {
  if (no_space_) {
    *diskfree = 0;
    return IOStatus::OK();
  }
  return target()->GetFreeSpace(path, o, diskfree, dbg);
}

IOStatus FaultInjectionFS::LinkFile(const std::string&, const std::string&,
                                    const rocksdb::IOOptions&, rocksdb::IODebugContext*) {
  return IOStatus::NotSupported("FaultInjectionFS: LinkFile");
}

uint64_t FaultInjectionFS::KeepSize(const FileState& f, std::mt19937* rng) const {
  uint64_t keep = f.synced;
  if (rng != nullptr && f.written > f.synced) {
    keep += std::uniform_int_distribution<uint64_t>(0, f.written - f.synced)(*rng);
  }
  return keep;
}

FaultInjectionFS::Survivor FaultInjectionFS::SurvivorOf(const std::string& path, uint64_t size,
                                                        std::mt19937* rng) const {
  Survivor s;
  if (unsynced_entries_.count(path)) {
    // Its directory entry is not durable: the old file it replaced, or nothing.
    auto r = replaced_.find(path);
    s.exists = r != replaced_.end();
    if (s.exists) s.replaced = &r->second;
    return s;
  }
  auto f = files_.find(path);
  s.keep = f == files_.end() ? size : std::min(size, KeepSize(f->second, rng));
  return s;
}

IOStatus FaultInjectionFS::CopyDurableState(const std::string& dir, const std::string& dst,
                                            std::mt19937* rng) {
  std::unique_lock<std::shared_mutex> pause(io_mu_);
  std::lock_guard<std::mutex> l(mu_);
  std::error_code ec;
  fs::create_directories(dst, ec);
  if (ec) return IOStatus::IOError("create " + dst + ": " + ec.message());
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    std::string path = Normalize(e.path().string());
    std::string out_path = (fs::path(dst) / e.path().filename()).string();
    const Survivor s = SurvivorOf(path, fs::file_size(path, ec), rng);
    if (s.replaced != nullptr) {
      std::ofstream(out_path, std::ios::binary) << *s.replaced;
    } else if (s.exists) {
      std::ifstream in(path, std::ios::binary);
      std::string content(s.keep, '\0');
      in.read(content.data(), static_cast<std::streamsize>(s.keep));
      std::ofstream(out_path, std::ios::binary).write(content.data(), in.gcount());
    }
  }
  if (ec) return IOStatus::IOError("list " + dir + ": " + ec.message());
  return IOStatus::OK();
}

IOStatus FaultInjectionFS::CutPower(const std::string& dir, std::mt19937* rng, CutStats* stats,
                                    std::unique_lock<std::shared_mutex>* stopped) {
  std::unique_lock<std::shared_mutex> pause(io_mu_);
  std::lock_guard<std::mutex> l(mu_);
  *stats = CutStats();
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) entries.push_back(e.path());
  }
  if (ec) return IOStatus::IOError("list " + dir + ": " + ec.message());
  for (const fs::path& p : entries) {
    const std::string path = Normalize(p.string());
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return IOStatus::IOError("stat " + path + ": " + ec.message());
    const Survivor s = SurvivorOf(path, size, rng);
    uint64_t now = s.keep;
    if (s.replaced != nullptr) {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << *s.replaced;
      if (!out) return IOStatus::IOError("restore " + path);
      now = s.replaced->size();
      ++stats->files_restored;
    } else if (!s.exists) {
      fs::remove(path, ec);
      if (ec) return IOStatus::IOError("remove " + path + ": " + ec.message());
      files_.erase(path);
      ++stats->files_removed;
      continue;
    } else if (s.keep < size) {
      fs::resize_file(path, s.keep, ec);
      if (ec) return IOStatus::IOError("truncate " + path + ": " + ec.message());
      ++stats->files_cut;
      stats->bytes_dropped += size - s.keep;
    }
    auto f = files_.find(path);
    if (f != files_.end()) f->second = FileState{now, now};
  }
  const std::string d = Normalize(dir);
  std::erase_if(unsynced_entries_, [&](const std::string& path) { return DirOf(path) == d; });
  std::erase_if(replaced_, [&](const auto& entry) { return DirOf(entry.first) == d; });
  *stopped = std::move(pause);
  return IOStatus::OK();
}

}  // namespace warren::storage
