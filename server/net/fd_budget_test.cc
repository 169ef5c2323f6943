#include "server/net/fd_budget.h"

#include <gtest/gtest.h>

namespace warren::net {
namespace {

TEST(FdBudgetTest, LargeLimitKeepsTheFullReserve) {
  const FdBudget b = PlanFdBudget(1 << 20, 0);
  EXPECT_EQ(b.reserve, kReserve);
  EXPECT_EQ(b.store_max_open_files, static_cast<int>(kReserve - kOtherDescriptors));
  EXPECT_EQ(b.max_connections, (1u << 20) - kReserve);
}

TEST(FdBudgetTest, SmallLimitKeepsHalfForSockets) {
  const FdBudget b = PlanFdBudget(64, 0);
  EXPECT_EQ(b.reserve, 32u);
  EXPECT_EQ(b.store_max_open_files, kStoreMinOpenFiles);
  EXPECT_EQ(b.max_connections, 32u);
}

TEST(FdBudgetTest, MaxConnectionsFlagOnlyLowersTheBudget) {
  EXPECT_EQ(PlanFdBudget(4096, 10).max_connections, 10u);
  EXPECT_EQ(PlanFdBudget(4096, 1'000'000).max_connections, 4096u - kReserve);
}

TEST(FdBudgetTest, RaiseFdLimitReportsTheLimitInForce) {
  std::string error;
  EXPECT_GT(RaiseFdLimit(&error), 0u);
}

}  // namespace
}  // namespace warren::net
