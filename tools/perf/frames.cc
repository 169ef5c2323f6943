#include "tools/perf/frames.h"

#include <algorithm>

#include "server/amqp/constants.h"
#include "server/amqp/properties.h"

namespace warren::perf {

namespace {

void PutBE(char* at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
}

uint64_t GetBE(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

// Skips a shortstr at *at; false when the payload ends inside it.
bool SkipShortStr(std::string_view s, size_t* at) {
  if (*at >= s.size()) return false;
  *at += 1 + static_cast<uint8_t>(s[*at]);
  return *at <= s.size();
}

constexpr uint16_t kBasic = amqp::method::BasicPublish::kClassId;

}  // namespace

void AppendFrame(std::string& out, uint8_t type, uint16_t channel, std::string_view payload) {
  amqp::ByteWriter w(out);
  w.WriteU8(type);
  w.WriteU16(channel);
  w.WriteU32(static_cast<uint32_t>(payload.size()));
  w.WriteBytes(payload);
  w.WriteU8(amqp::kFrameEnd);
}

void AppendMethod(std::string& out, uint16_t channel, const amqp::Method& m) {
  std::string payload;
  amqp::ByteWriter w(payload);
  amqp::EncodeMethod(m, w);
  AppendFrame(out, amqp::kFrameMethod, channel, payload);
}

PublishTemplate::PublishTemplate(uint16_t channel, std::string_view exchange, std::string_view routing_key,
                                 bool mandatory, bool persistent, size_t body_size, uint32_t frame_max) {
  amqp::method::BasicPublish publish;
  publish.exchange = exchange;
  publish.routing_key = routing_key;
  publish.mandatory = mandatory;
  AppendMethod(frames_, channel, publish);

  amqp::BasicProperties properties;
  if (persistent) properties.delivery_mode = 2;
  std::string raw_properties, header;
  amqp::ByteWriter pw(raw_properties);
  amqp::EncodeProperties(properties, pw);
  amqp::ByteWriter hw(header);
  amqp::EncodeContentHeader(kBasic, body_size, raw_properties, hw);
  AppendFrame(frames_, amqp::kFrameHeader, channel, header);

  const size_t max_chunk = frame_max == 0 ? body_size : frame_max - amqp::kFrameOverhead;
  stamp_offset_ = frames_.size() + amqp::kFrameHeaderSize;  // the first body frame's payload
  const std::string zeros(std::min(body_size, max_chunk), '\0');
  for (size_t left = body_size; left > 0;) {
    size_t chunk = std::min(left, max_chunk);
    AppendFrame(frames_, amqp::kFrameBody, channel, std::string_view(zeros).substr(0, chunk));
    left -= chunk;
  }
}

void PublishTemplate::AppendTo(std::string& out, uint64_t send_ns) const {
  size_t start = out.size();
  out.append(frames_);
  PutBE(out.data() + start + stamp_offset_, send_ns, 8);
}

AckTemplate::AckTemplate(uint16_t channel) {
  AppendMethod(frame_, channel, amqp::method::BasicAck{});
}

void AckTemplate::AppendTo(std::string& out, uint64_t delivery_tag, bool multiple) const {
  size_t start = out.size();
  out.append(frame_);
  // After class and method ids: delivery-tag, then the multiple bit.
  const size_t tag = start + amqp::kFrameHeaderSize + 4;
  PutBE(out.data() + tag, delivery_tag, 8);
  out[tag + 8] = multiple ? 1 : 0;
}

HotMethod ParseHotMethod(std::string_view payload) {
  HotMethod hot;
  if (payload.size() < 4 || GetBE(payload, 0, 2) != kBasic) return hot;
  const auto method_id = static_cast<uint16_t>(GetBE(payload, 2, 2));
  size_t at = 4;
  switch (method_id) {
    case amqp::method::BasicDeliver::kMethodId:  // consumer-tag, delivery-tag, ...
      if (!SkipShortStr(payload, &at) || payload.size() < at + 8) return hot;
      hot.kind = HotMethod::kDeliver;
      hot.delivery_tag = GetBE(payload, at, 8);
      return hot;
    case amqp::method::BasicAck::kMethodId:
    case amqp::method::BasicNack::kMethodId:  // delivery-tag, then multiple as bit 0
      if (payload.size() < at + 9) return hot;
      hot.kind = method_id == amqp::method::BasicAck::kMethodId ? HotMethod::kAck : HotMethod::kNack;
      hot.delivery_tag = GetBE(payload, at, 8);
      hot.multiple = (payload[at + 8] & 1) != 0;
      return hot;
    case amqp::method::BasicReturn::kMethodId:
      hot.kind = HotMethod::kReturn;
      return hot;
    default:
      return hot;
  }
}

bool ParseBodySize(std::string_view header_payload, uint64_t* body_size) {
  if (header_payload.size() < 12) return false;  // class-id, weight, body-size
  *body_size = GetBE(header_payload, 4, 8);
  return true;
}

bool ParseSendTime(std::string_view body, uint64_t* send_ns) {
  if (body.size() < PublishTemplate::kMinBodySize) return false;
  *send_ns = GetBE(body, 0, 8);
  return true;
}

}  // namespace warren::perf
