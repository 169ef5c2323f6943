// RabbitMQ's message_stats: what happened to messages since the start (publish, deliver,
// deliver_no_ack, get, get_no_ack, get_empty, ack, redeliver; for the whole broker also confirm,
// return_unroutable, drop_unroutable) and each count's rate per second between the last two
// samples (the management API's `<stat>_details.rate`), and for a queue the rate at which its
// depth changes (messages_ready_details, messages_unacknowledged_details). The broker keeps one
// for all traffic (counted by the channels) and every queue one of its own.
//
// Thread: the broker thread. Counting is one increment; Broker::SampleStats takes the samples
// every collect-statistics interval.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "server/broker/timers.h"

namespace warren::broker {

enum class MessageStat : uint8_t {
  kPublish,
  kDeliver,
  kDeliverNoAck,
  kGet,
  kGetNoAck,
  kGetEmpty,
  kAck,
  kRedeliver,
  kQueueStatCount,  // the stats above are counted per queue too; those below only broker-wide
  kConfirm = kQueueStatCount,
  kReturnUnroutable,
  kDropUnroutable,
  kCount
};

inline constexpr size_t kMessageStatCount = static_cast<size_t>(MessageStat::kCount);
inline constexpr size_t kQueueMessageStatCount = static_cast<size_t>(MessageStat::kQueueStatCount);

// Ready and unacknowledged messages of a queue at a sample.
struct QueueDepth {
  uint64_t ready = 0;
  uint64_t unacked = 0;
};

// The JSON field name RabbitMQ uses for a stat ("publish", "deliver_no_ack", ...).
const char* MessageStatName(MessageStat stat);

class MessageStats {
 public:
  void Add(MessageStat stat, uint64_t n = 1) { counts_[Index(stat)] += n; }
  // A delivery to a consumer (basic.deliver) or to basic.get, counted as RabbitMQ does.
  void AddDelivery(bool by_get, bool no_ack, bool redelivered) {
    Add(by_get ? (no_ack ? MessageStat::kGetNoAck : MessageStat::kGet)
               : (no_ack ? MessageStat::kDeliverNoAck : MessageStat::kDeliver));
    if (redelivered) Add(MessageStat::kRedeliver);
  }

  uint64_t count(MessageStat stat) const { return counts_[Index(stat)]; }
  // RabbitMQ's deliver_get: deliver + deliver_no_ack + get + get_no_ack.
  uint64_t deliver_get() const;

  // Ends a sampling interval at `now`: each rate becomes the change of its count since the
  // previous sample divided by the seconds in between. The first sample takes the counts as
  // having started from zero one `interval` (ms) earlier: a queue created since the last sample
  // shows its first interval's rates.
  // `depth` is the queue's at `now` (ignored for the broker's stats); its first sample only
  // sets the baseline.
  // REQUIRES: interval > 0.
  void Sample(MonoMillis now, MonoMillis interval, QueueDepth depth = {});
  // Per second, over the last complete interval (0 before two samples).
  double rate(MessageStat stat) const { return rates_[Index(stat)]; }
  double deliver_get_rate() const;
  // Change of the queue's ready / unacked messages per second over the last interval.
  double ready_rate() const { return ready_rate_; }
  double unacked_rate() const { return unacked_rate_; }

 private:
  static constexpr size_t Index(MessageStat stat) { return static_cast<size_t>(stat); }

  std::array<uint64_t, kMessageStatCount> counts_{};
  std::array<uint64_t, kMessageStatCount> sampled_counts_{};
  std::array<double, kMessageStatCount> rates_{};
  QueueDepth sampled_depth_;
  double ready_rate_ = 0;
  double unacked_rate_ = 0;
  MonoMillis sampled_at_ = 0;
  bool sampled_ = false;  // sampled_counts_, sampled_depth_ and sampled_at_ hold a sample
};

}  // namespace warren::broker
