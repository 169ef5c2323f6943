#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "storage/test_util.h"

namespace warren::storage {
namespace {

using testing::Msg;
using testing::OpenOrDie;
using testing::ScanAll;
using testing::TempDir;
namespace fs = std::filesystem;

constexpr uint64_t kQueue = 7;

WriteBatch Put(uint64_t seq) {
  WriteBatch b;
  const std::string body = "message " + std::to_string(seq) + std::string(200, 'x');
  b.PutMessage(kQueue, seq, Msg(body));
  return b;
}

// The checkpoint holds every write acknowledged before the call, while a writer keeps going and
// memtables flush under it (tables linked, WAL copied): what the copy holds is a prefix.
void CheckCopyUnderLoad(const std::string& backup_dir, bool expect_same_fs) {
  TempDir tmp;
  StoreOptions o;
  o.dir = tmp.Sub("store");
  o.write_buffer_size = 64 << 10;  // many flushes: tables and WAL files both in the copy
  auto store = OpenOrDie(o);
  std::atomic<uint64_t> acked{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t seq = 0; !stop.load(); ++seq) {
      WriteBatch b = Put(seq);
      b.set_sync(true);
      ASSERT_TRUE(store->Write(std::move(b)).ok());
      acked.store(seq + 1);
    }
  });
  while (acked.load() < 2000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const uint64_t acked_before = acked.load();
  CheckpointInfo info;
  Status s = store->Checkpoint(backup_dir, &info);
  stop.store(true);
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();

  EXPECT_EQ(info.format_version, kFormatVersion);
  EXPECT_GT(info.sequence_number, 0u);
  EXPECT_EQ(info.same_filesystem, expect_same_fs);
  bool has_current = false, has_table = false, has_wal = false;
  for (const auto& f : info.files) {
    const fs::path p = fs::path(backup_dir) / f.path;
    EXPECT_EQ(fs::file_size(p), f.size) << f.path;
    EXPECT_EQ(f.sha256.size(), 64u) << f.path;
    has_current |= f.path == "store/CURRENT";
    has_table |= p.extension() == ".sst";
    has_wal |= p.extension() == ".log";
  }
  EXPECT_TRUE(has_current && has_table && has_wal);

  auto copy = OpenOrDie(StoreDirFor(backup_dir));
  ASSERT_NE(copy, nullptr);
  const auto messages = ScanAll(copy.get(), kQueue);
  ASSERT_GE(messages.size(), acked_before);
  for (size_t i = 0; i < messages.size(); ++i) {
    ASSERT_EQ(messages[i].seq, i);
    ASSERT_EQ(messages[i].body, "message " + std::to_string(i) + std::string(200, 'x'));
  }
}

TEST(CheckpointTest, CopyHasEveryAcknowledgedWriteWhileWritesGoOn) {
  TempDir backups;
  CheckCopyUnderLoad(backups.Sub("backup"), true);
}

// On another file system RocksDB cannot link the tables and copies them.
TEST(CheckpointTest, CopiesAcrossFileSystems) {
  struct stat shm, tmp;
  TempDir here;
  if (::stat("/dev/shm", &shm) != 0 || ::stat(here.path().c_str(), &tmp) != 0 || shm.st_dev == tmp.st_dev) {
    GTEST_SKIP() << "/dev/shm is not another file system here";
  }
  char tmpl[] = "/dev/shm/warren-checkpoint-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  CheckCopyUnderLoad(std::string(tmpl) + "/backup", false);
  fs::remove_all(tmpl);
}

TEST(CheckpointTest, AnEmptyDirectoryIsUsed) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.Sub("store"));
  ASSERT_TRUE(store->Write(Put(0)).ok());
  fs::create_directory(tmp.Sub("backup"));
  CheckpointInfo info;
  Status s = store->Checkpoint(tmp.Sub("backup"), &info);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ScanAll(OpenOrDie(tmp.Sub("backup/store")).get(), kQueue).size(), 1u);
}

TEST(CheckpointTest, RefusesBadTargetsWithoutWriting) {
  TempDir tmp;
  auto store = OpenOrDie(tmp.Sub("store"));
  fs::create_directory(tmp.Sub("full"));
  std::ofstream(tmp.Sub("full/keep")) << "data";
  std::ofstream(tmp.Sub("file")) << "data";
  struct Case {
    std::string dir, expect;
  } cases[] = {
      {"relative/backup", "is not an absolute path"},
      {tmp.Sub("full"), "exists and is not empty"},
      {tmp.Sub("file"), "is not a directory"},
      {tmp.Sub("store/backup"), "is inside the store"},
  };
  for (const auto& c : cases) {
    CheckpointInfo info;
    Status s = store->Checkpoint(c.dir, &info);
    EXPECT_TRUE(s.IsInvalidArgument()) << c.dir << ": " << s.ToString();
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
  }
  EXPECT_FALSE(fs::exists("relative"));
  EXPECT_FALSE(fs::exists(tmp.Sub("store/backup")));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.Sub("full")), fs::directory_iterator()), 1);
}

TEST(CheckpointTest, ReadOnlyStoreRefuses) {
  TempDir tmp;
  auto writer = OpenOrDie(tmp.Sub("store"));
  StoreOptions o;
  o.dir = tmp.Sub("store");
  o.read_only = true;
  auto reader = OpenOrDie(o);
  CheckpointInfo info;
  EXPECT_TRUE(reader->Checkpoint(tmp.Sub("backup"), &info).IsInvalidArgument());
}

}  // namespace
}  // namespace warren::storage
