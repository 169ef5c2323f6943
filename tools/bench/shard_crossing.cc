// warren-shard-crossing: what it costs a message to cross from one shard (event-loop thread) to
// another through ShardCourier, the way a message would go from a publisher's connection to a
// queue on another shard and back to a consumer. Two shards echo items to each other: shard 0
// keeps `window` items in flight, sending what came back in the same turn, so each crossing
// carries the batch one turn gathered. Prints, per batch size, crossings per second and the CPU
// of both threads per crossing; and the round trip of a single item (a wake-up each way).
//
//   warren-shard-crossing [seconds per case, default 2]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <vector>

#include <asio/executor_work_guard.hpp>

#include "server/net/shards.h"

namespace {

using warren::net::ShardCourier;
using warren::net::Shards;

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Result {
  uint64_t crossings = 0;
  double seconds = 0;
  double cpu_seconds = 0;
};

// Echoes `window` items between shards 0 and 1 for `seconds`.
Result Echo(size_t window, double seconds) {
  Shards shards(2);
  auto guard0 = asio::make_work_guard(shards.io(0));
  auto guard1 = asio::make_work_guard(shards.io(1));
  uint64_t crossings = 0;  // shard 0
  bool stopping = false;   // shard 0
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::unique_ptr<ShardCourier<uint64_t>> back;
  ShardCourier<uint64_t> out(shards, 0, 1, [&](std::vector<uint64_t>& batch) {
    for (uint64_t v : batch) back->Send(v + 1);
  });
  back = std::make_unique<ShardCourier<uint64_t>>(shards, 1, 0, [&](std::vector<uint64_t>& batch) {
    crossings += 2 * batch.size();
    if (stopping) return;
    if ((crossings & 0xfff) < 2 * batch.size() && std::chrono::steady_clock::now() >= deadline) {
      stopping = true;
      shards.Stop();
      return;
    }
    for (uint64_t v : batch) out.Send(v);
  });
  const double cpu0 = ProcessCpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  shards.Post(0, [&] {
    for (size_t i = 0; i < window; ++i) out.Send(i);
  });
  shards.Run();
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.cpu_seconds = ProcessCpuSeconds() - cpu0;
  r.crossings = crossings;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  if (seconds <= 0) {
    std::fprintf(stderr, "usage: warren-shard-crossing [seconds per case > 0]\n");
    return 2;
  }
  std::printf("%-8s %14s %14s %14s\n", "window", "crossings/s", "cpu ns/cross", "us/round trip");
  for (size_t window : {1, 16, 256, 4096}) {
    const Result r = Echo(window, seconds);
    const double rate = static_cast<double>(r.crossings) / r.seconds;
    std::printf("%-8zu %14.0f %14.1f ", window, rate, r.cpu_seconds * 1e9 / static_cast<double>(r.crossings));
    if (window == 1) {
      std::printf("%14.2f\n", 2e6 / rate);
    } else {
      std::printf("%14s\n", "-");
    }
  }
  return 0;
}
