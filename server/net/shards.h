// The server's event-loop threads ("shards") and the one way work crosses between them.
//
// A shard is an io_context run by one thread: shard 0 by the thread that calls Run (main's),
// shards 1..count-1 by threads Run starts. State is owned by one shard and touched only from its
// thread; another shard asks for something by posting work to the owner (Post) or, on a path
// taken per message, by queueing items on a ShardCourier, which carries everything queued during
// one turn of the sender's loop to the receiver in a single post: the receiver's lock (the
// io_context's queue) is taken once per batch, not per item. Work posted by one thread to one
// shard runs in the order it was posted.
//
// An exception escaping a handler is logged with the shard's number and the loop goes on: a
// handler that throws must not take the server down (connections catch their own; this is the
// net for everything else).
//
// Thread: Post, Stop and io() are safe from any thread; Run from the thread that made the Shards.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

namespace warren::net {

class Shards {
 public:
  static constexpr uint32_t kMaxShards = 256;
  static constexpr uint32_t kNoShard = UINT32_MAX;

  // REQUIRES: 1 <= count <= kMaxShards.
  explicit Shards(uint32_t count);
  ~Shards();
  Shards(const Shards&) = delete;
  Shards& operator=(const Shards&) = delete;

  uint32_t count() const { return static_cast<uint32_t>(loops_.size()); }
  asio::io_context& io(uint32_t shard) { return *loops_[shard]; }
  // The shard whose loop runs on the calling thread (inside Run); kNoShard on any other thread.
  static uint32_t Current();

  // Runs `fn` on `shard`'s thread, after the work this thread posted there before.
  template <typename Fn>
  void Post(uint32_t shard, Fn&& fn) {
    asio::post(*loops_[shard], std::forward<Fn>(fn));
  }

  // Runs every shard until each loop runs out of work or Stop is called: shards 1.. on threads of
  // their own, shard 0 on the calling thread; returns once every thread has ended.
  void Run();
  // Asks every loop to end (Run returns); safe from any thread and from handlers.
  void Stop();
  // After Run returned: runs what is ready on every loop, on the calling thread, shard by shard
  // (the aborted reads and writes a stop leaves queued), as each shard's thread would.
  void PollAll();

 private:
  void RunLoop(uint32_t shard);

  std::vector<std::unique_ptr<asio::io_context>> loops_;
};

// Carries items of type T from one shard to another, batched per turn of the sender's loop: the
// first Send of a turn schedules a flush on the sender's loop (it runs after what that turn has
// queued, so everything sent meanwhile joins the batch), and the flush posts the whole batch to
// the receiver, where `deliver` takes it. Items reach `deliver` in the order they were sent.
//
// Thread: Send only on the `from` shard's thread; `deliver` runs on the `to` shard's thread. The
// courier must outlive both loops' pending work (the server's lifetime).
template <typename T>
class ShardCourier {
 public:
  using Deliver = std::function<void(std::vector<T>& batch)>;

  ShardCourier(Shards& shards, uint32_t from, uint32_t to, Deliver deliver)
      : shards_(shards), from_(from), to_(to), deliver_(std::move(deliver)) {}
  ShardCourier(const ShardCourier&) = delete;
  ShardCourier& operator=(const ShardCourier&) = delete;

  void Send(T item) {
    if (outgoing_.empty()) shards_.Post(from_, [this] { Flush(); });
    outgoing_.push_back(std::move(item));
  }
  // Items sent and not yet handed to the receiver's loop.
  size_t pending() const { return outgoing_.size(); }

 private:
  void Flush() {
    shards_.Post(to_, [this, batch = std::move(outgoing_)]() mutable { deliver_(batch); });
    outgoing_ = {};
  }

  Shards& shards_;
  const uint32_t from_;
  const uint32_t to_;
  Deliver deliver_;
  std::vector<T> outgoing_;
};

}  // namespace warren::net
