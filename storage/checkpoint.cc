// Store::Checkpoint: the online backup (store.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <system_error>

#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>

#include "storage/store.h"

namespace warren::storage {

namespace fs = std::filesystem;

namespace {

constexpr char kNothingWritten[] = "; nothing was written";

Status Sha256File(const fs::path& path, std::string* hex) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("open " + path.string() + ": " + std::generic_category().message(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1;
  std::vector<unsigned char> buf(1 << 20);
  ssize_t n = 0;
  while (ok && (n = ::read(fd, buf.data(), buf.size())) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Status::IOError("read " + path.string() + ": " + std::generic_category().message(errno));
    }
    ok = EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n)) == 1;
  }
  ::close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ok || EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) return Status::IOError("SHA-256 of " + path.string());
  static constexpr char kHex[] = "0123456789abcdef";
  hex->clear();
  for (unsigned int i = 0; i < len; ++i) {
    *hex += kHex[digest[i] >> 4];
    *hex += kHex[digest[i] & 15];
  }
  return Status::OK();
}

// data_dir must be a place a checkpoint may be created: absolute, not inside the store (RocksDB
// would find it among its own files), and missing or empty (never mixed with other data).
Status CheckTarget(const std::string& data_dir, const std::string& store_dir) {
  const fs::path target(data_dir);
  if (!target.is_absolute()) return Status::InvalidArgument("backup directory '" + data_dir + "' is not an absolute path");
  std::error_code ec;
  const fs::path store = fs::weakly_canonical(store_dir, ec);
  const fs::path where = fs::weakly_canonical(target, ec);
  const auto [s, w] = std::mismatch(store.begin(), store.end(), where.begin(), where.end());
  if (s == store.end()) {
    return Status::InvalidArgument("backup directory " + data_dir + " is inside the store " + store_dir + kNothingWritten);
  }
  const fs::file_status st = fs::status(target, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("stat " + data_dir + ": " + ec.message() + kNothingWritten);
  }
  if (!fs::exists(st)) return Status::OK();
  if (!fs::is_directory(st)) return Status::InvalidArgument("backup directory " + data_dir + " exists and is not a directory" + kNothingWritten);
  if (!fs::is_empty(target, ec) || ec) {
    return Status::InvalidArgument("backup directory " + data_dir +
                                   " exists and is not empty: give a missing or empty directory" + kNothingWritten);
  }
  return Status::OK();
}

bool SameFileSystem(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev;
}

}  // namespace

Status Store::Checkpoint(const std::string& data_dir, CheckpointInfo* info) {
  if (options_.read_only) return Status::InvalidArgument("a read-only store takes no checkpoint");
  std::unique_lock lock(checkpoint_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return Status::Busy("a backup of " + options_.dir + " is already running; try again when it has finished");
  if (Status s = CheckTarget(data_dir, options_.dir); !s.ok()) return s;
  std::error_code ec;
  const bool created = !fs::exists(data_dir, ec);
  if (created && !fs::create_directories(data_dir, ec) && ec) {
    return Status::IOError("create " + data_dir + ": " + ec.message());
  }
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status rs = rocksdb::Checkpoint::Create(db_.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  const std::string store_copy = StoreDirFor(data_dir);
  *info = CheckpointInfo{};
  // No flush (log_size_for_flush never reached): every write is in the WAL, which is copied, and
  // a flush would put messages on disk that are usually acked while still in the memtable.
  if (rs.ok()) rs = checkpoint->CreateCheckpoint(store_copy, std::numeric_limits<uint64_t>::max(), &info->sequence_number);
  if (!rs.ok()) {
    if (created) fs::remove(data_dir, ec);  // RocksDB removed its own partial copy
    return Status::FromRocksDB(rs, "checkpoint of " + options_.dir + " into " + store_copy);
  }
  info->format_version = format_version_;
  info->same_filesystem = SameFileSystem(options_.dir, store_copy);
  for (const fs::directory_entry& e : fs::directory_iterator(store_copy, ec)) {
    CheckpointInfo::File f;
    f.path = (fs::path("store") / e.path().filename()).string();
    f.size = e.file_size(ec);
    if (ec) break;
    if (Status s = Sha256File(e.path(), &f.sha256); !s.ok()) return s;
    info->files.push_back(std::move(f));
  }
  if (ec) return Status::IOError("list " + store_copy + ": " + ec.message());
  std::sort(info->files.begin(), info->files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return Status::OK();
}

}  // namespace warren::storage
