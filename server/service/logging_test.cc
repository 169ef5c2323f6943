#include "server/service/logging.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace warren::service {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("logging-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test"));
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(LoggingTest, JsonLinesCarryTimeLevelAndMessage) {
  LogOptions options;
  options.console = false;
  options.file = (dir_ / "warren.log").string();
  options.file_json = true;
  options.file_level = "debug";
  ASSERT_EQ(SetUpLogging(options), "");
  spdlog::warn("a \"quoted\" line\nwith a \xff byte");
  spdlog::debug("second");
  std::istringstream lines(Read(options.file));
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  const auto first = nlohmann::json::parse(line);
  EXPECT_EQ(first["level"], "warning");
  EXPECT_EQ(first["msg"], "a \"quoted\" line\nwith a \xef\xbf\xbd byte");
  // RFC 3339 with a space: 2026-12-02 03:41:00.123456+00:00
  EXPECT_EQ(first["time"].get<std::string>().size(), 32u);
  EXPECT_EQ(first["time"].get<std::string>()[10], ' ');
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(nlohmann::json::parse(line)["level"], "debug");
  EXPECT_FALSE(std::getline(lines, line));
}

TEST_F(LoggingTest, FileLevelFilters) {
  LogOptions options;
  options.console = false;
  options.file = (dir_ / "warren.log").string();
  options.file_level = "warn";
  ASSERT_EQ(SetUpLogging(options), "");
  spdlog::info("hidden");
  spdlog::error("shown");
  const std::string text = Read(options.file);
  EXPECT_EQ(text.find("hidden"), std::string::npos);
  EXPECT_NE(text.find("[error] shown"), std::string::npos);
}

TEST_F(LoggingTest, UnopenableFileIsAnError) {
  LogOptions options;
  options.file = (dir_ / "missing" / "warren.log").string();
  EXPECT_NE(SetUpLogging(options).find("cannot open the log file"), std::string::npos);
}

TEST_F(LoggingTest, ReopenAfterRenameStartsANewFile) {
  LogOptions options;
  options.console = false;
  options.file = (dir_ / "warren.log").string();
  ASSERT_EQ(SetUpLogging(options), "");
  spdlog::info("before");
  fs::rename(options.file, dir_ / "warren.log.old");
  spdlog::info("still old");
  ReopenLogFile();
  spdlog::info("after");
  EXPECT_NE(Read(dir_ / "warren.log.old").find("still old"), std::string::npos);
  const std::string fresh = Read(options.file);
  EXPECT_EQ(fresh.find("before"), std::string::npos);
  EXPECT_NE(fresh.find("after"), std::string::npos);
}

TEST_F(LoggingTest, SizeRotationKeepsCountFiles) {
  const std::string path = (dir_ / "warren.log").string();
  auto sink = std::make_shared<LogFileSink>(path, 1000, 2);
  spdlog::logger logger("rotating", sink);
  for (int i = 0; i < 100; ++i) logger.info("line {:03} {}", i, std::string(80, 'x'));
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".1"));
  EXPECT_TRUE(fs::exists(path + ".2"));
  EXPECT_FALSE(fs::exists(path + ".3"));
  for (const std::string& p : {path, path + ".1", path + ".2"}) EXPECT_LE(fs::file_size(p), 1000u);
  EXPECT_NE(Read(path).find("line 099"), std::string::npos);
}

}  // namespace
}  // namespace warren::service
