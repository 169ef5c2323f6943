#include "server/broker/message_stats.h"

#include "common/dcheck.h"

namespace warren::broker {

const char* MessageStatName(MessageStat stat) {
  switch (stat) {
    case MessageStat::kPublish:
      return "publish";
    case MessageStat::kDeliver:
      return "deliver";
    case MessageStat::kDeliverNoAck:
      return "deliver_no_ack";
    case MessageStat::kGet:
      return "get";
    case MessageStat::kGetNoAck:
      return "get_no_ack";
    case MessageStat::kGetEmpty:
      return "get_empty";
    case MessageStat::kAck:
      return "ack";
    case MessageStat::kRedeliver:
      return "redeliver";
    case MessageStat::kConfirm:
      return "confirm";
    case MessageStat::kReturnUnroutable:
      return "return_unroutable";
    case MessageStat::kDropUnroutable:
      return "drop_unroutable";
    case MessageStat::kCount:
      break;
  }
  return "unknown";
}

uint64_t MessageStats::deliver_get() const {
  return count(MessageStat::kDeliver) + count(MessageStat::kDeliverNoAck) + count(MessageStat::kGet) +
         count(MessageStat::kGetNoAck);
}

double MessageStats::deliver_get_rate() const {
  return rate(MessageStat::kDeliver) + rate(MessageStat::kDeliverNoAck) + rate(MessageStat::kGet) +
         rate(MessageStat::kGetNoAck);
}

void MessageStats::Sample(MonoMillis now, MonoMillis interval, QueueDepth depth) {
  WARREN_DCHECK(interval > 0);
  if (!sampled_) {
    sampled_at_ = now - interval;
    sampled_depth_ = depth;
    sampled_ = true;
  }
  if (now <= sampled_at_) return;
  const double seconds = static_cast<double>(now - sampled_at_) / 1000.0;
  for (size_t i = 0; i < kMessageStatCount; ++i) {
    rates_[i] = static_cast<double>(counts_[i] - sampled_counts_[i]) / seconds;
  }
  ready_rate_ = (static_cast<double>(depth.ready) - static_cast<double>(sampled_depth_.ready)) / seconds;
  unacked_rate_ = (static_cast<double>(depth.unacked) - static_cast<double>(sampled_depth_.unacked)) / seconds;
  sampled_counts_ = counts_;
  sampled_depth_ = depth;
  sampled_at_ = now;
}

}  // namespace warren::broker
