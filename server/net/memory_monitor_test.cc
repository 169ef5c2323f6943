#include "server/net/memory_monitor.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>

namespace warren::net {
namespace {

TEST(SystemMemoryTest, ParsesMemTotal) {
  EXPECT_EQ(ParseMemTotal("MemTotal:       24683620 kB\nMemFree:        18609000 kB\n"), 24683620ull * 1024);
  EXPECT_EQ(ParseMemTotal("Foo: 1 kB\nMemTotal: 2048 kB\n"), 2048ull * 1024);
  EXPECT_EQ(ParseMemTotal("MemFree: 1 kB\n"), std::nullopt);
  EXPECT_EQ(ParseMemTotal("MemTotal: lots\n"), std::nullopt);
}

TEST(SystemMemoryTest, ParsesCgroupLimits) {
  EXPECT_EQ(ParseCgroupLimit("536870912\n"), 536870912u);
  EXPECT_EQ(ParseCgroupLimit("max\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupLimit("9223372036854771712\n"), 9223372036854771712u);  // v1 "unlimited": above MemTotal
  EXPECT_EQ(ParseCgroupLimit(""), std::nullopt);
}

TEST(SystemMemoryTest, FindsTheProcessCgroupLimitFiles) {
  EXPECT_EQ(CgroupLimitFiles("0::/system.slice/warren.service\n"),
            (std::vector<std::string>{"/sys/fs/cgroup/system.slice/warren.service/memory.max", "/sys/fs/cgroup/memory.max",
                                      "/sys/fs/cgroup/memory/memory.limit_in_bytes"}));
  EXPECT_EQ(CgroupLimitFiles("5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n"),
            (std::vector<std::string>{"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                                      "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}));
  EXPECT_EQ(CgroupLimitFiles(""), (std::vector<std::string>{"/sys/fs/cgroup/memory.max",
                                                            "/sys/fs/cgroup/memory/memory.limit_in_bytes"}));
}

TEST(SystemMemoryTest, ReadsThisMachine) {
  EXPECT_GT(TotalMemoryBytes(), 16ull << 20);
  EXPECT_GT(ResidentMemoryBytes(), 0u);
}

TEST(MemoryMonitorTest, RaisesAtOnceAndClearsAtTheNextCheck) {
  asio::io_context io;
  broker::MemoryAccount account;
  account.set_limit(1000);
  std::vector<bool> changes;
  MemoryMonitor monitor(io, account, [&](bool alarm) { changes.push_back(alarm); });
  monitor.Start();
  account.Add(broker::MemoryUse::kMessages, 999);
  io.poll();
  EXPECT_TRUE(changes.empty());
  account.Add(broker::MemoryUse::kMessages, 1);  // reaches the limit: the check is posted
  io.poll();
  EXPECT_EQ(changes, std::vector<bool>{true});
  EXPECT_TRUE(monitor.alarm());
  account.Sub(broker::MemoryUse::kMessages, 500);
  io.run_for(std::chrono::milliseconds(400));  // the periodic check
  EXPECT_EQ(changes, (std::vector<bool>{true, false}));
  account.Add(broker::MemoryUse::kMessages, 500);  // rearmed: raised again at once
  io.poll();
  EXPECT_EQ(changes, (std::vector<bool>{true, false, true}));
  monitor.Stop();
  io.run();
}

}  // namespace
}  // namespace warren::net
