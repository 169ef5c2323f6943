// Store::Open: deciding whether a directory is a Warren store, creating one, and refusing
// everything else without modifying it.
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include <rocksdb/db.h>

#include "storage/db_options.h"
#include "storage/info_log.h"
#include "storage/store.h"

namespace warren::storage {

namespace fs = std::filesystem;

namespace {

// Appended to a refusal of a directory that is not ours: it may be another program's data.
constexpr char kNotOurs[] = "; it was left unchanged: give Warren an empty or missing directory instead";
constexpr char kKeepACopy[] =
    "; nothing was changed. Keep a copy of the directory and restore the store from a backup: "
    "Warren does not start over data it cannot read";

enum class DirState {
  kFresh,    // missing, empty, or only what RocksDB writes before CURRENT (interrupted creation)
  kRocksDB,  // has a CURRENT file
};

// Files RocksDB may create before CURRENT exists: a directory holding only these is a creation
// that crashed before it finished, and holds no data.
bool IsPreCurrentFile(const std::string& name) {
  return name == "LOCK" || name == "IDENTITY" || name.starts_with("LOG") ||
         name.starts_with("MANIFEST-") || name.starts_with("OPTIONS-") || name.ends_with(".dbtmp");
}

Status InspectDir(const std::string& dir, DirState* state, bool create) {
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("stat " + dir + ": " + ec.message());
  }
  if (!fs::exists(st)) {
    if (create && !fs::create_directories(dir, ec) && ec) {
      return Status::IOError("create " + dir + ": " + ec.message());
    }
    *state = DirState::kFresh;
    return Status::OK();
  }
  if (!fs::is_directory(st)) return Status::InvalidArgument(dir + " is not a directory" + kNotOurs);
  if (fs::exists(fs::path(dir) / "CURRENT", ec)) {
    *state = DirState::kRocksDB;
    return Status::OK();
  }
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (!IsPreCurrentFile(name)) {
      return Status::InvalidArgument(dir + " is not a Warren store: it is not empty and holds no "
                                     "RocksDB database (found '" + name + "')" + kNotOurs);
    }
  }
  if (ec) return Status::IOError("list " + dir + ": " + ec.message());
  *state = DirState::kFresh;
  return Status::OK();
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// RocksDB reports a file that CURRENT or the MANIFEST names but that is missing as NotFound or
// IOError; for an existing store that is corruption, not "start empty".
Status OpenError(const rocksdb::Status& s, const std::string& dir) {
  Status st = Status::FromRocksDB(s, "open " + dir);
  if (st.IsNotFound() || s.IsPathNotFound()) {
    return Status::Corruption(st.message() + " (a file the store's metadata names is missing)" + kKeepACopy);
  }
  if (st.IsCorruption()) return Status::Corruption(st.message() + kKeepACopy);
  return st;
}

// The pid of the process holding a POSIX lock on `path`, from /proc/locks, or 0 if none is
// found. (Opening and closing the file to ask fcntl would drop any lock this process holds.)
pid_t LockHolder(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  std::ostringstream id;
  id << std::hex;
  id.width(2);
  id.fill('0');
  id << major(st.st_dev) << ':';
  id.width(2);
  id << minor(st.st_dev) << ':' << std::dec << st.st_ino;
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    // "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; waiters ("1: -> POSIX ...") hold nothing.
    std::istringstream in(line);
    std::string number, kind, mode, access, pid, inode;
    if (!(in >> number >> kind >> mode >> access >> pid >> inode) || kind == "->" || inode != id.str()) continue;
    pid_t holder = 0;
    std::from_chars(pid.data(), pid.data() + pid.size(), holder);
    return holder;
  }
  return 0;
}

// RocksDB could not take DIR/LOCK: another process (or another Store in this one) has the store.
Status InUseError(const rocksdb::Status& s, const std::string& dir) {
  const std::string lock = (fs::path(dir) / "LOCK").string();
  const pid_t holder = LockHolder(lock);
  std::string who = "another process";
  if (holder == ::getpid()) {
    who = "this process";
  } else if (holder > 0) {
    who = "another process (pid " + std::to_string(holder) + ")";
  }
  return Status::IOError(dir + " is in use: " + who + " holds its lock file " + lock +
                         " (RocksDB: " + s.ToString() + "). One store has one server: stop the "
                         "other Warren server using this data directory, or give this one another; "
                         "nothing was changed");
}

// RocksDB 7.8 says "While lock file: DIR/LOCK: ..." (another process) or "lock hold by current
// process, ...: DIR/LOCK" (this one).
bool IsLockError(const rocksdb::Status& s, const std::string& dir) {
  return s.IsIOError() && s.ToString().find((fs::path(dir) / "LOCK").string()) != std::string::npos;
}

std::vector<std::string> WalFiles(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".log") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Whether the store opens (read-only, nothing written) when damaged WAL records are truncated:
// then the Corruption of the strict open was in a WAL, not in a table or the MANIFEST.
bool OpensWithWalTruncated(const StoreOptions& options,
                           const std::vector<rocksdb::ColumnFamilyDescriptor>& descs) {
  StoreOptions lenient = options;
  lenient.truncate_corrupt_wal = true;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(MakeDBOptions(lenient), options.dir, descs, &handles, &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  return true;
}

Status WalCorruptionError(const rocksdb::Status& s, const std::string& dir) {
  return Status::Corruption(
      dir + ": the write-ahead log (" + JoinNames(WalFiles(dir)) + ") is damaged before its end (RocksDB: " +
      s.ToString() + "). Truncating it there would silently drop every record after the damage, "
      "confirmed messages among them, so the store was not opened and nothing was changed. Keep a copy "
      "of the directory, then restore it from a backup, or start once with --truncate-corrupt-wal to "
      "keep only the records before the damage");
}

const std::set<std::string>& ExpectedFamilies() {
  static const std::set<std::string> names = [] {
    std::set<std::string> n;
    for (int i = 0; i < kNumFamilies; ++i) n.insert(FamilyName(static_cast<Family>(i)));
    return n;
  }();
  return names;
}

// Reads the store marker without modifying anything: a read-only open of every family.
// *has_meta / *meta describe the marker, *empty whether the database holds no key at all.
Status ProbeReadOnly(const StoreOptions& options, const std::vector<std::string>& names,
                     bool* has_meta, proto::StoreMeta* meta, bool* empty) {
  rocksdb::DBOptions dbo = MakeDBOptions(options);
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(dbo, options.dir, descs, &handles, &raw);
  if (!s.ok()) return OpenError(s, options.dir);
  std::unique_ptr<rocksdb::DB> db(raw);
  *has_meta = false;
  *empty = true;
  Status result;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName() == FamilyName(Family::kMeta)) {
      std::string value;
      rocksdb::Status g = db->Get(rocksdb::ReadOptions(), h, rocksdb::Slice(kMetaKey.data(), kMetaKey.size()), &value);
      if (g.ok()) {
        *has_meta = meta->ParseFromString(value);
        if (!*has_meta) result = Status::Corruption("store marker does not parse");
      } else if (!g.IsNotFound()) {
        result = Status::FromRocksDB(g, "read store marker");
      }
    }
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    it->SeekToFirst();
    if (it->Valid()) *empty = false;
    if (result.ok() && !it->status().ok()) result = Status::FromRocksDB(it->status(), "probe");
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  return result;
}

Status CheckMeta(const proto::StoreMeta& meta, const std::string& dir, uint32_t* version) {
  if (meta.magic() != kMagic) {
    return Status::InvalidArgument(dir + " is not a Warren store (bad marker)" + kNotOurs);
  }
  if (meta.format_version() > kFormatVersion) {
    return Status::InvalidArgument(dir + " has store format version " +
                                   std::to_string(meta.format_version()) +
                                   ", newer than this Warren supports (" +
                                   std::to_string(kFormatVersion) + "); nothing was changed: use a newer Warren");
  }
  if (meta.format_version() == 0) return Status::Corruption(dir + ": store format version 0" + kKeepACopy);
  *version = meta.format_version();
  return Status::OK();
}

}  // namespace

std::string StoreDirFor(std::string_view data_dir) {
  return (fs::path(std::string(data_dir)) / "store").string();
}

Store::Store(const StoreOptions& options) : options_(options) {}

Status Store::Open(const StoreOptions& options, std::unique_ptr<Store>* out) {
  out->reset();
  if (options.dir.empty()) return Status::InvalidArgument("empty store directory");
  std::unique_ptr<Store> store(new Store(options));
  Status s = store->OpenDB();
  if (!s.ok()) return s;
  if (!options.read_only) store->StartWriter();
  store->StartReader();
  *out = std::move(store);
  return Status::OK();
}

Status Store::OpenDB() {
  const std::string& dir = options_.dir;
  DirState state;
  Status s = InspectDir(dir, &state, /*create=*/!options_.read_only);
  if (!s.ok()) return s;
  if (options_.read_only && state != DirState::kRocksDB) {
    return Status::NotFound("no Warren store at " + dir);
  }

  rocksdb::DBOptions dbo = MakeDBOptions(options_);
  bool may_initialize = false;
  if (state == DirState::kRocksDB) {
    std::vector<std::string> names;
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, dir, &names);
    if (!ls.ok()) return OpenError(ls, dir);
    std::set<std::string> found(names.begin(), names.end());
    if (found != ExpectedFamilies()) {
      // Not the layout this version writes: find out why before touching anything.
      bool has_meta = false, empty = false;
      proto::StoreMeta meta;
      s = ProbeReadOnly(options_, names, &has_meta, &meta, &empty);
      if (!s.ok()) return s;
      if (has_meta) {
        uint32_t version = 0;
        s = CheckMeta(meta, dir, &version);
        if (!s.ok()) return s;
        return Status::Corruption(dir + ": column families are {" + JoinNames(names) +
                                  "}, not those of format version " + std::to_string(version) + kKeepACopy);
      }
      bool only_ours = std::includes(ExpectedFamilies().begin(), ExpectedFamilies().end(),
                                     found.begin(), found.end());
      if (!empty || !only_ours) {
        return Status::InvalidArgument(dir + " is not a Warren store (a RocksDB database "
                                       "without Warren's marker)" + kNotOurs);
      }
      if (options_.read_only) return Status::NotFound(dir + ": store creation did not finish");
      may_initialize = true;  // an empty database left by a creation that crashed
    }
  } else {
    may_initialize = true;
  }

  dbo.create_if_missing = may_initialize;
  dbo.create_missing_column_families = may_initialize;
  // Created in Family order, so a new store's ids are 0..kNumFamilies-1, which WriteBatch assumes.
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int i = 0; i < kNumFamilies; ++i) {
    Family f = static_cast<Family>(i);
    descs.emplace_back(FamilyName(f), MakeFamilyOptions(f, options_));
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status os;
  if (options_.read_only) {
    // The secondary instance keeps its own info log there; it is removed on close.
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/warren-secondary-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return Status::IOError("mkdtemp for the secondary instance");
    secondary_dir_ = tmpl;
    os = rocksdb::DB::OpenAsSecondary(dbo, dir, secondary_dir_, descs, &handles_, &raw);
  } else {
    dbo.info_log = std::make_shared<InfoLog>(dir);  // why not RocksDB's own: info_log.h
    os = rocksdb::DB::Open(dbo, dir, descs, &handles_, &raw);
    if (IsLockError(os, dir)) return InUseError(os, dir);
    if (os.IsCorruption() && !options_.truncate_corrupt_wal && OpensWithWalTruncated(options_, descs)) {
      return WalCorruptionError(os, dir);
    }
  }
  if (!os.ok()) return OpenError(os, dir);
  db_.reset(raw);
  for (int i = 0; i < kNumFamilies; ++i) {
    if (handles_[i]->GetID() != static_cast<uint32_t>(i)) {
      return Status::Corruption(dir + ": column family " + FamilyName(static_cast<Family>(i)) +
                                " has id " + std::to_string(handles_[i]->GetID()) +
                                ", expected " + std::to_string(i) + kKeepACopy);
    }
  }
  return CheckOrWriteMeta();
}

Status Store::AllFamiliesEmpty(bool* empty) {
  *empty = true;
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), h));
    it->SeekToFirst();
    if (!it->status().ok()) return Status::FromRocksDB(it->status(), "scan " + h->GetName());
    if (it->Valid()) *empty = false;
  }
  return Status::OK();
}

Status Store::CheckOrWriteMeta() {
  const std::string& dir = options_.dir;
  std::string value;
  rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), cf(Family::kMeta),
                               rocksdb::Slice(kMetaKey.data(), kMetaKey.size()), &value);
  if (g.ok()) {
    proto::StoreMeta meta;
    if (!meta.ParseFromString(value)) return Status::Corruption(dir + ": store marker does not parse" + kKeepACopy);
    if (Status s = CheckMeta(meta, dir, &format_version_); !s.ok()) return s;
    if (format_version_ == kFormatVersion || options_.read_only) return Status::OK();
    // Every older format reads as the current one: the upgrade is the marker, so that an older
    // Warren refuses records it could not read instead of misreading them.
    meta.set_format_version(kFormatVersion);
    return WriteMeta(meta);
  }
  if (!g.IsNotFound()) return Status::FromRocksDB(g, "read store marker in " + dir);

  // No marker. A database with our families but no marker is either a creation that crashed
  // before writing it (then it is empty) or not ours.
  bool empty = false;
  Status s = AllFamiliesEmpty(&empty);
  if (!s.ok()) return s;
  if (!empty) {
    return Status::InvalidArgument(dir + " is not a Warren store (data without Warren's marker)" + kNotOurs);
  }
  // Empty, with exactly our families: adopted whether we just created it or a creation crashed.
  if (options_.read_only) return Status::NotFound(dir + ": store creation did not finish");
  proto::StoreMeta meta;
  meta.set_magic(std::string(kMagic));
  meta.set_format_version(kFormatVersion);
  meta.set_created_by("warren");
  return WriteMeta(meta);
}

Status Store::WriteMeta(const proto::StoreMeta& meta) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status p = db_->Put(wo, cf(Family::kMeta), rocksdb::Slice(kMetaKey.data(), kMetaKey.size()),
                               meta.SerializeAsString());
  if (!p.ok()) return Status::FromRocksDB(p, "write store marker in " + options_.dir);
  format_version_ = meta.format_version();
  return Status::OK();
}

}  // namespace warren::storage
