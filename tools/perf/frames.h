// warren-perf's hot path on the wire: prebuilt frames for what it sends per message (a publish,
// an ack) with only the varying fields patched, and a minimal parser for what it receives per
// message (basic.deliver, basic.ack/nack/return, content frames). No allocation per message;
// everything else goes through the warren_amqp codec.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/amqp/methods.h"

namespace warren::perf {

// Appends a whole frame (header, payload, frame-end) to out.
void AppendFrame(std::string& out, uint8_t type, uint16_t channel, std::string_view payload);
// Appends the method frame of m on `channel`.
void AppendMethod(std::string& out, uint16_t channel, const amqp::Method& m);

// basic.publish + content header + body frame(s), split at frame_max. The body is zeros except
// its first 8 bytes: the send time (CLOCK_MONOTONIC ns, big-endian).
class PublishTemplate {
 public:
  static constexpr size_t kMinBodySize = 8;

  // REQUIRES: body_size >= kMinBodySize; frame_max is 0 (no limit) or at least amqp::kFrameMinSize.
  PublishTemplate(uint16_t channel, std::string_view exchange, std::string_view routing_key,
                  bool mandatory, bool persistent, size_t body_size, uint32_t frame_max);

  void AppendTo(std::string& out, uint64_t send_ns) const;
  size_t size() const { return frames_.size(); }

 private:
  std::string frames_;
  size_t stamp_offset_ = 0;
};

// basic.ack frames from a consumer.
class AckTemplate {
 public:
  explicit AckTemplate(uint16_t channel);
  void AppendTo(std::string& out, uint64_t delivery_tag, bool multiple) const;

 private:
  std::string frame_;
};

// The methods that arrive per message, read from a method frame's payload without decoding the
// rest. kOther: anything else (or malformed), for the codec to decode.
struct HotMethod {
  enum Kind { kOther, kDeliver, kAck, kNack, kReturn } kind = kOther;
  uint64_t delivery_tag = 0;
  bool multiple = false;
};
HotMethod ParseHotMethod(std::string_view payload);

// The body size of a content header frame's payload; false when too short.
bool ParseBodySize(std::string_view header_payload, uint64_t* body_size);
// The send time at the start of a body; false when the body is too short to carry one.
bool ParseSendTime(std::string_view body, uint64_t* send_ns);

}  // namespace warren::perf
