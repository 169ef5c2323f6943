// InfoLog: RocksDB's info log as Warren writes it (lines, rotation, a disk that refuses writes).
#include "storage/info_log.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "storage/test_util.h"

namespace warren::storage {
namespace {

using testing::TempDir;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(InfoLogTest, WritesOneLinePerMessageWithItsLevel) {
  TempDir dir;
  auto log = std::make_shared<InfoLog>(dir.path());
  rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, log, "flushed %d tables", 3);
  rocksdb::Log(rocksdb::InfoLogLevel::ERROR_LEVEL, log, "background error: %s", "no space");
  const std::string text = Read(dir.Sub("LOG"));
  EXPECT_NE(text.find(" flushed 3 tables\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" [ERROR] background error: no space\n"), std::string::npos) << text;
  EXPECT_EQ(log->GetLogFileSize(), text.size());
  struct stat st{};
  ASSERT_EQ(stat(dir.Sub("LOG").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(InfoLogTest, RotatesPastItsLimitKeepingOneOldFile) {
  TempDir dir;
  auto log = std::make_shared<InfoLog>(dir.path(), 1000);
  for (int i = 0; i < 100; ++i) rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, log, "line %03d", i);
  EXPECT_LT(std::filesystem::file_size(dir.Sub("LOG")), 1000u);
  EXPECT_GE(std::filesystem::file_size(dir.Sub("LOG.old")), 1000u);
  // Where the cut falls depends on the line length (the thread id's width varies), so the last
  // line may have filled LOG and moved with it: it ends LOG.old followed by LOG either way.
  const std::string both = Read(dir.Sub("LOG.old")) + Read(dir.Sub("LOG"));
  EXPECT_TRUE(both.ends_with(" line 099\n")) << both.substr(both.size() > 200 ? both.size() - 200 : 0);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 2);
}

TEST(InfoLogTest, ALineThatCannotBeWrittenIsDroppedAndLoggingGoesOn) {
  TempDir dir;
  // Every write to /dev/full fails with ENOSPC, as on a full disk.
  std::filesystem::create_symlink("/dev/full", dir.Sub("LOG"));
  auto log = std::make_shared<InfoLog>(dir.path());
  for (int i = 0; i < 3; ++i) rocksdb::Log(rocksdb::InfoLogLevel::ERROR_LEVEL, log, "write failed %d", i);
  log->Flush();
  EXPECT_EQ(log->GetLogFileSize(), 0u);
}

TEST(InfoLogTest, AWritableStoreLogsThroughIt) {
  TempDir dir;
  StoreOptions o;
  o.dir = dir.path();
  {
    auto store = testing::OpenOrDie(o);
  }
  const std::string text = Read(dir.Sub("LOG"));
  EXPECT_NE(text.find("RocksDB version"), std::string::npos) << text.substr(0, 500);
}

}  // namespace
}  // namespace warren::storage
