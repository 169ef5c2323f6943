#include "server/net/shards.h"

#include <exception>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/dcheck.h"

namespace warren::net {

namespace {
thread_local uint32_t current_shard = Shards::kNoShard;
}  // namespace

Shards::Shards(uint32_t count) {
  WARREN_DCHECK(count >= 1 && count <= kMaxShards);
  loops_.reserve(count);
  for (uint32_t i = 0; i < count; ++i) loops_.push_back(std::make_unique<asio::io_context>(1));
}

Shards::~Shards() = default;

uint32_t Shards::Current() { return current_shard; }

void Shards::RunLoop(uint32_t shard) {
  const uint32_t outer = current_shard;
  current_shard = shard;
  for (;;) {
    try {
      loops_[shard]->run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("unexpected error in the event loop of shard {}, continuing: {}", shard, e.what());
    } catch (...) {
      spdlog::error("unexpected error in the event loop of shard {}, continuing: unknown exception", shard);
    }
  }
  current_shard = outer;
}

void Shards::Run() {
  std::vector<std::thread> threads;
  threads.reserve(loops_.size() - 1);
  for (uint32_t i = 1; i < count(); ++i) threads.emplace_back([this, i] { RunLoop(i); });
  RunLoop(0);
  for (std::thread& t : threads) t.join();
}

void Shards::Stop() {
  for (auto& loop : loops_) loop->stop();
}

void Shards::PollAll() {
  for (uint32_t i = 0; i < count(); ++i) {
    const uint32_t outer = current_shard;
    current_shard = i;
    loops_[i]->restart();
    loops_[i]->poll();
    current_shard = outer;
  }
}

}  // namespace warren::net
