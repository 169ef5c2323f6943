// Streams (x-queue-type=stream) over AMQP 0-9-1, as RabbitMQ 3.10 defines them on one node: an
// append-only log in the store that consumers read without removing. Every message gets the next
// offset (0, 1, 2, ...) and is written to the store at once (whatever its delivery mode); nothing
// of the log is held in memory: each consumer has a cursor that reads forward from the store in
// bounded chunks. Offsets are grouped in segments (x-stream-max-segment-size-bytes) and retention
// (x-max-length-bytes, x-max-age) drops whole segments, each with one range delete.
//
// Thread: owned by the broker thread, inside its Queue.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "server/amqp/field_table.h"
#include "server/broker/error.h"
#include "server/broker/queue.h"
#include "server/broker/timers.h"
#include "storage/format.h"

namespace warren::broker {

// RabbitMQ's default and largest x-stream-max-segment-size-bytes.
inline constexpr uint64_t kDefaultStreamSegmentBytes = 500'000'000;
inline constexpr uint64_t kMaxStreamSegmentBytes = 3'000'000'000;

struct StreamArguments {
  std::optional<uint64_t> max_length_bytes;  // x-max-length-bytes
  std::optional<int64_t> max_age_seconds;    // x-max-age
  uint64_t max_segment_bytes = kDefaultStreamSegmentBytes;
};

// The stream arguments' values, checked as RabbitMQ 3.10 does after the generic argument checks
// (ParseQueueArguments, which refuses other types' arguments) and before the queue's properties
// (CheckQueueTypeProperties): x-max-age, x-stream-max-segment-size-bytes, x-initial-cluster-size
// and x-queue-leader-locator.
Result<StreamArguments> ParseStreamArguments(const amqp::FieldTable& arguments, std::string_view queue_label);
// Arguments checked at declaration (recovery): anything invalid is treated as absent.
StreamArguments ParseValidStreamArguments(const amqp::FieldTable& arguments);
// RabbitMQ's interval syntax of x-max-age and x-stream-offset: digits and one unit, Y (365 days),
// M (30 days), D, h, m or s; in seconds (saturating). nullopt when malformed.
std::optional<int64_t> ParseStreamInterval(std::string_view text);

// Where a stream consumer starts (basic.consume argument x-stream-offset).
struct StreamOffset {
  enum class Kind : uint8_t { kFirst, kLast, kNext, kOffset, kTimestamp };
  Kind kind = Kind::kNext;
  int64_t value = 0;  // kOffset: the offset; kTimestamp: unix milliseconds
};
// Parses x-stream-offset: "first", "last", "next", an interval string ("1h": that long ago, as
// RabbitMQ), any integer type (an offset; negative means first) or an AMQP timestamp. RabbitMQ
// fails other values with 541 INTERNAL_ERROR (a crash of its channel); Warren answers 406.
Result<StreamOffset> ParseStreamOffset(const amqp::FieldTable& consumer_arguments, int64_t now_unix_millis,
                                       std::string_view queue_label);

class StreamLog {
 public:
  // A consumer's cursor reads at most this many messages, and this many body bytes (plus one
  // message), from the store per read; and reads once per call of Dispatch, so a consumer reading
  // a long backlog shares the event loop with everyone else.
  static constexpr size_t kReadChunkMessages = 256;
  static constexpr uint64_t kReadChunkBytes = 1ull << 20;

  StreamLog(Queue& queue, StreamArguments arguments);
  StreamLog(const StreamLog&) = delete;
  StreamLog& operator=(const StreamLog&) = delete;
  ~StreamLog();

  const StreamArguments& arguments() const { return arguments_; }
  // The first offset still kept and the offset the next message gets.
  uint64_t first_offset() const { return segments_.empty() ? next_offset_ : segments_.front().first; }
  uint64_t next_offset() const { return next_offset_; }
  uint64_t message_count() const { return next_offset_ - first_offset(); }
  uint64_t bytes() const { return bytes_; }
  const std::deque<storage::StreamSegment>& segments() const { return segments_; }

  // Appends a message (into the turn's batch) with the x-stream-offset header added to its
  // properties, so every delivery of it carries its offset without re-encoding.
  void Append(const Message& message);
  // Recovery: the stored segments, in offset order.
  void Restore(std::vector<storage::StreamSegment> segments);

  // Where a consumer starting at `offset` begins, and from which timestamp on it takes messages.
  struct Start {
    uint64_t offset = 0;
    int64_t min_timestamp = 0;  // unix ms: messages appended before it (in the first segment) are skipped
  };
  Start Resolve(const StreamOffset& offset) const;

  void AddConsumer(Consumer* consumer, const StreamOffset& offset);
  void RemoveConsumer(Consumer* consumer);
  bool has_consumers() const { return !cursors_.empty(); }
  // Delivers to each consumer that is Ready(), reading each cursor's next chunk at most once.
  void Dispatch();
  // A batch became durable: appended messages up to it may be read back.
  void OnDurable();
  // Drops the oldest segments past x-max-length-bytes or x-max-age; never the last (open) one.
  void EnforceRetention();
  // A policy changed the stream's effective arguments: retention applies at once, the segment
  // size from the next segment on.
  void Reconfigure(StreamArguments arguments);
  // The queue is deleted (its key range goes with it).
  void OnDeleted();

 private:
  struct Cursor {
    Consumer* consumer = nullptr;
    uint64_t next = 0;
    int64_t min_timestamp = 0;
    std::deque<QueuedMessage> buffer;  // read from the store, not yet delivered
  };
  void ReadChunk(Cursor& cursor);
  void ArmRetentionTimer();
  void ScheduleDispatch();

  Queue& queue_;
  StreamArguments arguments_;
  std::deque<storage::StreamSegment> segments_;
  uint64_t next_offset_ = 0;
  uint64_t bytes_ = 0;  // body bytes kept
  // Appended offsets waiting for their batch: (ticket, end offset).
  std::deque<std::pair<uint64_t, uint64_t>> pending_;
  uint64_t durable_end_ = 0;  // offsets below it are in the store
  bool waiting_ = false;
  bool dispatch_posted_ = false;
  bool deleted_ = false;
  std::vector<std::unique_ptr<Cursor>> cursors_;
  std::unique_ptr<Timer> retention_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for posted dispatches
  std::string scratch_properties_;
};

}  // namespace warren::broker
