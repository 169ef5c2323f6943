#include "server/net/shards.h"

#include <atomic>
#include <stdexcept>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

namespace warren::net {
namespace {

// Keeps every loop of `shards` running until Done() (a loop without work would return early).
class KeepRunning {
 public:
  explicit KeepRunning(Shards& shards) : shards_(shards) {
    for (uint32_t i = 0; i < shards.count(); ++i) guards_.push_back(asio::make_work_guard(shards.io(i)));
  }
  void Done() { shards_.Stop(); }

 private:
  Shards& shards_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
};

TEST(ShardsTest, PostedWorkRunsOnItsShardInTheOrderPosted) {
  Shards shards(3);
  std::vector<int> order;  // touched only by shard 2
  std::atomic<uint32_t> wrong_shard{0};
  KeepRunning running(shards);
  shards.Post(0, [&] {
    for (int i = 0; i < 100; ++i) {
      shards.Post(2, [&, i] {
        if (Shards::Current() != 2) ++wrong_shard;
        order.push_back(i);
        if (i == 99) running.Done();
      });
    }
  });
  shards.Run();
  EXPECT_EQ(wrong_shard.load(), 0u);
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(Shards::Current(), Shards::kNoShard);
}

TEST(ShardsTest, ACourierCarriesOneTurnsItemsInOneBatchInOrder) {
  Shards shards(2);
  std::vector<std::vector<int>> batches;  // touched only by shard 1
  KeepRunning running(shards);
  ShardCourier<int> courier(shards, 0, 1, [&](std::vector<int>& batch) {
    EXPECT_EQ(Shards::Current(), 1u);
    batches.push_back(batch);
    if (batch.back() == 6) running.Done();
  });
  shards.Post(0, [&] {
    for (int i = 0; i < 5; ++i) courier.Send(i);
    EXPECT_EQ(courier.pending(), 5u);
    // A later turn: its items form a batch of their own.
    shards.Post(0, [&] {
      courier.Send(5);
      courier.Send(6);
    });
  });
  shards.Run();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0], (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(batches[1], (std::vector<int>{5, 6}));
}

TEST(ShardsTest, ItemsSentBothWaysAllArrive) {
  Shards shards(2);
  constexpr int kRounds = 10000;
  int back = 0;  // shard 0
  KeepRunning running(shards);
  std::unique_ptr<ShardCourier<int>> reply;
  ShardCourier<int> request(shards, 0, 1, [&](std::vector<int>& batch) {
    for (int v : batch) reply->Send(v + 1);
  });
  reply = std::make_unique<ShardCourier<int>>(shards, 1, 0, [&](std::vector<int>& batch) {
    for (int v : batch) {
      EXPECT_EQ(v, back + 1);
      back = v;
      if (v < kRounds) request.Send(v);
    }
    if (back == kRounds) running.Done();
  });
  shards.Post(0, [&] { request.Send(0); });
  shards.Run();
  EXPECT_EQ(back, kRounds);
}

TEST(ShardsTest, AHandlerThatThrowsDoesNotEndItsLoop) {
  Shards shards(2);
  bool after = false;
  KeepRunning running(shards);
  shards.Post(1, [] { throw std::runtime_error("boom"); });
  shards.Post(1, [&] {
    after = true;
    running.Done();
  });
  shards.Run();
  EXPECT_TRUE(after);
}

TEST(ShardsTest, StopEndsLoopsThatStillHaveWork) {
  Shards shards(2);
  KeepRunning running(shards);
  shards.Post(1, [&] { running.Done(); });
  shards.Run();  // returns although both loops are kept busy
  bool polled = false;
  shards.Post(1, [&] {
    EXPECT_EQ(Shards::Current(), 1u);
    polled = true;
  });
  shards.PollAll();
  EXPECT_TRUE(polled);
}

}  // namespace
}  // namespace warren::net
