#include "server/broker/stream.h"

#include <algorithm>
#include <array>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/amqp/byte_buffer.h"
#include "server/amqp/properties.h"
#include "server/broker/queue.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/vhost.h"

namespace warren::broker {

namespace r = amqp::reply;

namespace {

std::unexpected<Error> InvalidArg(std::string_view key, std::string_view label, std::string_view problem) {
  return Fail(r::kPreconditionFailed, fmt::format("invalid arg '{}' for {}: {}", key, label, problem));
}

std::string ExpectedInteger(const amqp::FieldValue& v) {
  return fmt::format("\"expected integer, got {}\"", FieldTypeName(v));
}

}  // namespace

std::optional<int64_t> ParseStreamInterval(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  int64_t unit = 0;
  switch (text.back()) {
    case 'Y': unit = 365 * 86400; break;
    case 'M': unit = 30 * 86400; break;
    case 'D': unit = 86400; break;
    case 'h': unit = 3600; break;
    case 'm': unit = 60; break;
    case 's': unit = 1; break;
    default: return std::nullopt;
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n > (kMax - 9) / 10 ? kMax : n * 10 + (c - '0');
  }
  return n > kMax / unit ? kMax : n * unit;
}

Result<StreamArguments> ParseStreamArguments(const amqp::FieldTable& arguments, std::string_view label) {
  StreamArguments out;
  if (const amqp::FieldValue* v = arguments.Find("x-max-length-bytes")) {
    // The generic checks already refused other types and negative values.
    if (v->IsInteger()) out.max_length_bytes = static_cast<uint64_t>(*v->AsInt());
  }
  if (const amqp::FieldValue* v = arguments.Find("x-max-age")) {
    const std::string* s = v->AsString();
    if (s == nullptr) return InvalidArg("x-max-age", label, fmt::format("{{unacceptable_type,{}}}", FieldTypeName(*v)));
    auto age = ParseStreamInterval(*s);
    if (!age || *age <= 0) return InvalidArg("x-max-age", label, "invalid_max_age");
    out.max_age_seconds = *age;
  }
  if (const amqp::FieldValue* v = arguments.Find("x-stream-max-segment-size-bytes")) {
    if (!v->IsInteger()) return InvalidArg("x-stream-max-segment-size-bytes", label, ExpectedInteger(*v));
    const int64_t n = *v->AsInt();
    if (n < 0) return InvalidArg("x-stream-max-segment-size-bytes", label, fmt::format("{{value_negative,{}}}", n));
    if (static_cast<uint64_t>(n) > kMaxStreamSegmentBytes) {
      return Fail(r::kPreconditionFailed, "Exceeded max value for x-stream-max-segment-size-bytes");
    }
    out.max_segment_bytes = static_cast<uint64_t>(n);
  }
  if (const amqp::FieldValue* v = arguments.Find("x-initial-cluster-size")) {
    if (!v->IsInteger()) return InvalidArg("x-initial-cluster-size", label, ExpectedInteger(*v));
    const int64_t n = *v->AsInt();
    if (n == 0) return InvalidArg("x-initial-cluster-size", label, "{value_zero,0}");
    if (n < 0) return InvalidArg("x-initial-cluster-size", label, fmt::format("{{value_negative,{}}}", n));
  }
  if (const amqp::FieldValue* v = arguments.Find("x-queue-leader-locator")) {
    const std::string* s = v->AsString();
    if (s == nullptr) {
      return InvalidArg("x-queue-leader-locator", label, fmt::format("{{unacceptable_type,{}}}", FieldTypeName(*v)));
    }
    if (*s != "client-local" && *s != "balanced") {
      return InvalidArg("x-queue-leader-locator", label, "invalid_queue_locator_arg");
    }
  }
  return out;
}

StreamArguments ParseValidStreamArguments(const amqp::FieldTable& arguments) {
  auto parsed = ParseStreamArguments(arguments, "");
  return parsed ? *parsed : StreamArguments{};
}

Result<StreamOffset> ParseStreamOffset(const amqp::FieldTable& arguments, int64_t now_ms, std::string_view label) {
  const amqp::FieldValue* v = arguments.Find("x-stream-offset");
  if (v == nullptr) return StreamOffset{};
  auto invalid = [&] {
    return Fail(r::kPreconditionFailed, fmt::format("invalid arg 'x-stream-offset' for {}: {}", label,
                                                    v->AsString() != nullptr
                                                        ? fmt::format("'{}'", v->AsString()->substr(0, 64))
                                                        : std::string(FieldTypeName(*v))));
  };
  if (v->TypeCode() == 'T') {
    const uint64_t seconds = std::min<uint64_t>(std::get<amqp::Timestamp>(v->v).seconds, INT64_MAX / 1000);
    return StreamOffset{StreamOffset::Kind::kTimestamp, static_cast<int64_t>(seconds) * 1000};
  }
  if (v->IsInteger()) {
    const int64_t n = *v->AsInt();
    if (n < 0) return StreamOffset{StreamOffset::Kind::kFirst, 0};
    return StreamOffset{StreamOffset::Kind::kOffset, n};
  }
  const std::string* s = v->AsString();
  if (s == nullptr) return invalid();
  if (*s == "first") return StreamOffset{StreamOffset::Kind::kFirst, 0};
  if (*s == "last") return StreamOffset{StreamOffset::Kind::kLast, 0};
  if (*s == "next") return StreamOffset{StreamOffset::Kind::kNext, 0};
  auto ago = ParseStreamInterval(*s);
  if (!ago) return invalid();
  const int64_t ago_ms = *ago > INT64_MAX / 1000 ? INT64_MAX : *ago * 1000;
  return StreamOffset{StreamOffset::Kind::kTimestamp, ago_ms >= now_ms ? 0 : now_ms - ago_ms};
}

// ---- the log ----

StreamLog::StreamLog(Queue& queue, StreamArguments arguments) : queue_(queue), arguments_(arguments) {}

StreamLog::~StreamLog() { *alive_ = false; }

void StreamLog::Append(const Message& message) {
  Persister* persister = queue_.persister_;
  const uint64_t offset = next_offset_++;
  TimerService& timers = queue_.vhost_ != nullptr ? queue_.vhost_->timers() : FallbackTimers();
  const int64_t now = timers.UnixMillis();

  // The offset header is put in once, here, so deliveries send the stored properties as they are.
  std::string_view properties = message.raw_properties();
  amqp::BasicProperties decoded;
  if (amqp::DecodeProperties(properties, &decoded)) {
    if (!decoded.headers) decoded.headers.emplace();
    auto& entries = decoded.headers->entries;
    std::erase_if(entries, [](const auto& e) { return e.first == "x-stream-offset"; });
    entries.emplace_back("x-stream-offset", amqp::FieldValue(static_cast<int64_t>(offset)));
    scratch_properties_.clear();
    amqp::ByteWriter w(scratch_properties_);
    amqp::EncodeProperties(decoded, w);
    properties = scratch_properties_;
  }
  if (segments_.empty() || segments_.back().bytes >= std::max<uint64_t>(arguments_.max_segment_bytes, 1)) {
    segments_.push_back(storage::StreamSegment{offset, offset, 0, now, now});
  }
  storage::StreamSegment& segment = segments_.back();
  segment.end = offset + 1;
  segment.bytes += message.body_size();
  segment.last_timestamp = now;
  bytes_ += message.body_size();
  if (persister == nullptr || !persister->enabled()) {
    durable_end_ = next_offset_;  // nothing stored: a unit test without a store
    return;
  }
  storage::WriteBatch& batch = persister->batch();
  batch.PutStreamMessage(queue_.id(), offset, now,
                         storage::MessageData{message.exchange(), message.routing_key(), properties, message.body()});
  batch.PutStreamSegment(queue_.id(), segment);
  const uint64_t ticket = persister->open_ticket();
  if (!pending_.empty() && pending_.back().first == ticket) {
    pending_.back().second = next_offset_;
  } else {
    pending_.emplace_back(ticket, next_offset_);
  }
  if (!waiting_) {
    waiting_ = true;
    persister->WaitForDurable(queue_.weak_from_this());
  }
  if (segment.bytes >= arguments_.max_segment_bytes) EnforceRetention();  // the segment closed
  if (arguments_.max_age_seconds && !retention_timer_) ArmRetentionTimer();
}

void StreamLog::Restore(std::vector<storage::StreamSegment> segments) {
  segments_.assign(segments.begin(), segments.end());
  bytes_ = 0;
  for (const auto& s : segments_) bytes_ += s.bytes;
  if (!segments_.empty()) next_offset_ = std::max(next_offset_, segments_.back().end);
  durable_end_ = next_offset_;
  if (arguments_.max_age_seconds) ArmRetentionTimer();
}

void StreamLog::OnDurable() {
  waiting_ = false;
  Persister* persister = queue_.persister_;
  while (!pending_.empty() && pending_.front().first <= persister->durable_ticket()) {
    durable_end_ = pending_.front().second;
    pending_.pop_front();
  }
  if (!pending_.empty()) {
    waiting_ = true;
    persister->WaitForDurable(queue_.weak_from_this());
  }
}

StreamLog::Start StreamLog::Resolve(const StreamOffset& offset) const {
  switch (offset.kind) {
    case StreamOffset::Kind::kFirst:
      return {first_offset(), 0};
    case StreamOffset::Kind::kLast:
      // RabbitMQ starts at the last chunk (a batch of messages written together); Warren has no
      // chunks, so "last" is the last message.
      return {next_offset_ > first_offset() ? next_offset_ - 1 : next_offset_, 0};
    case StreamOffset::Kind::kNext:
      return {next_offset_, 0};
    case StreamOffset::Kind::kOffset:
      // As RabbitMQ: an offset past the end waits for that offset.
      return {std::max(static_cast<uint64_t>(offset.value), first_offset()), 0};
    case StreamOffset::Kind::kTimestamp:
      for (const auto& s : segments_) {
        if (s.last_timestamp >= offset.value) return {s.first, offset.value};
      }
      return {next_offset_, 0};
  }
  return {next_offset_, 0};
}

void StreamLog::AddConsumer(Consumer* consumer, const StreamOffset& offset) {
  auto cursor = std::make_unique<Cursor>();
  cursor->consumer = consumer;
  const Start start = Resolve(offset);
  cursor->next = start.offset;
  cursor->min_timestamp = start.min_timestamp;
  cursors_.push_back(std::move(cursor));
}

void StreamLog::RemoveConsumer(Consumer* consumer) {
  std::erase_if(cursors_, [&](const auto& c) { return c->consumer == consumer; });
}

void StreamLog::ReadChunk(Cursor& c) {
  Persister* persister = queue_.persister_;
  if (c.next < first_offset()) c.next = first_offset();
  const uint64_t end = durable_end_;
  if (c.next >= end || persister == nullptr || !persister->enabled()) return;
  uint64_t bytes = 0;
  size_t scanned = 0;
  bool reached_end = true;
  MemoryAccount* memory = queue_.vhost_ != nullptr ? queue_.vhost_->memory() : nullptr;
  storage::Status status = persister->journal()->ScanQueue(queue_.id(), c.next, [&](const storage::StoredMessage& m) {
    if (m.seq >= end) return false;
    c.next = m.seq + 1;
    if (m.timestamp >= c.min_timestamp) {
      MessageRef msg = Message::Create(m.exchange, m.routing_key, m.properties, m.body.size(), memory);
      msg->FillBody(m.body);
      bytes += m.body.size();
      c.buffer.push_back(QueuedMessage{std::move(msg), m.seq, 1, false, false});
      c.min_timestamp = 0;  // later messages are newer
    }
    // Skipped messages count too, so a timestamp far into a segment is found in bounded steps.
    if (++scanned >= kReadChunkMessages || bytes >= kReadChunkBytes) {
      reached_end = false;
      return false;
    }
    return true;
  });
  if (!status.ok()) {
    spdlog::error("stream '{}': reading from offset {} failed: {}", queue_.name(), c.next, status.ToString());
    return;
  }
  // Entries dropped by retention meanwhile, or never written (a failed batch), are skipped.
  if (reached_end) c.next = std::max(c.next, end);
}

void StreamLog::Dispatch() {
  if (deleted_) return;
  bool more = false;
  // A consumer may cancel from within Deliver's side effects only through the channel later,
  // but the vector may still grow: iterate by index.
  for (size_t i = 0; i < cursors_.size(); ++i) {
    Cursor& c = *cursors_[i];
    bool read = false;
    while (c.consumer->Ready()) {
      if (c.buffer.empty()) {
        if (read) {
          more = more || c.next < durable_end_;
          break;
        }
        ReadChunk(c);
        read = true;
        if (c.buffer.empty()) {
          more = more || c.next < durable_end_;  // only skipped old messages so far
          break;
        }
      }
      QueuedMessage m = std::move(c.buffer.front());
      c.buffer.pop_front();
      queue_.stats_.AddDelivery(/*by_get=*/false, /*no_ack=*/false, false);
      c.consumer->Deliver(queue_, std::move(m));
    }
  }
  if (more) ScheduleDispatch();
}

void StreamLog::ScheduleDispatch() {
  if (dispatch_posted_ || queue_.vhost_ == nullptr) return;
  dispatch_posted_ = true;
  std::weak_ptr<bool> alive = alive_;
  std::weak_ptr<Queue> queue = queue_.weak_from_this();
  queue_.vhost_->timers().Post([this, alive, queue] {
    auto q = queue.lock();
    if (alive.expired() || q == nullptr) return;
    dispatch_posted_ = false;
    q->Dispatch();
  });
}

void StreamLog::EnforceRetention() {
  Persister* persister = queue_.persister_;
  if (deleted_ || persister == nullptr || !persister->enabled()) return;
  TimerService& timers = queue_.vhost_ != nullptr ? queue_.vhost_->timers() : FallbackTimers();
  const int64_t now = timers.UnixMillis();
  while (segments_.size() > 1) {
    const storage::StreamSegment& oldest = segments_.front();
    const bool too_big = arguments_.max_length_bytes && bytes_ > *arguments_.max_length_bytes;
    const bool too_old = arguments_.max_age_seconds &&
                         now - oldest.last_timestamp > std::min(*arguments_.max_age_seconds, INT64_MAX / 1000) * 1000;
    if (!too_big && !too_old) break;
    persister->batch().DeleteStreamSegment(queue_.id(), oldest);
    bytes_ -= std::min(bytes_, oldest.bytes);
    segments_.pop_front();
  }
}

void StreamLog::Reconfigure(StreamArguments arguments) {
  arguments_ = arguments;
  EnforceRetention();
  if (arguments_.max_age_seconds) {
    ArmRetentionTimer();
  } else if (retention_timer_) {
    retention_timer_->Cancel();
  }
}

void StreamLog::ArmRetentionTimer() {
  if (queue_.vhost_ == nullptr || !arguments_.max_age_seconds) return;
  if (!retention_timer_) {
    retention_timer_ = queue_.vhost_->timers().NewTimer([this] {
      EnforceRetention();
      ArmRetentionTimer();
    });
  }
  // Often enough that a segment outlives its age by at most a tenth of it (1 s to 60 s).
  const int64_t period_ms = std::clamp<int64_t>(std::min<int64_t>(*arguments_.max_age_seconds, 600) * 100, 1000, 60000);
  retention_timer_->ArmAt(queue_.vhost_->timers().Now() + period_ms);
}

void StreamLog::OnDeleted() {
  deleted_ = true;
  cursors_.clear();
  if (retention_timer_) retention_timer_->Cancel();
}

}  // namespace warren::broker
