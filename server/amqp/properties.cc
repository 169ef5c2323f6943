// Basic properties and content header codec (contract in properties.h).
#include "server/amqp/properties.h"

#include <algorithm>
#include <utility>

namespace warren::amqp {
namespace {

// Property flag bits of the first flags word.
constexpr uint16_t kContentType = 1 << 15;
constexpr uint16_t kContentEncoding = 1 << 14;
constexpr uint16_t kHeaders = 1 << 13;
constexpr uint16_t kDeliveryMode = 1 << 12;
constexpr uint16_t kPriority = 1 << 11;
constexpr uint16_t kCorrelationId = 1 << 10;
constexpr uint16_t kReplyTo = 1 << 9;
constexpr uint16_t kExpiration = 1 << 8;
constexpr uint16_t kMessageId = 1 << 7;
constexpr uint16_t kTimestamp = 1 << 6;
constexpr uint16_t kType = 1 << 5;
constexpr uint16_t kUserId = 1 << 4;
constexpr uint16_t kAppId = 1 << 3;
constexpr uint16_t kClusterId = 1 << 2;
constexpr uint16_t kUnknownBit = 1 << 1;
constexpr uint16_t kContinuation = 1 << 0;

constexpr int kFirstPropertyBit = 15;
constexpr int kLastPropertyBit = 2;

constexpr size_t kContentHeaderFixedSize = 2 + 2 + 8;

// Reads the flags words and returns the first one. Later words must carry no property bits.
bool ReadFlags(ByteReader& r, uint16_t* flags) {
  uint16_t word = r.ReadU16();
  *flags = word;
  if (!r.ok() || (word & kUnknownBit)) return false;
  while (word & kContinuation) {
    word = r.ReadU16();
    if (!r.ok() || (word & ~kContinuation)) return false;
  }
  return true;
}

// Skips the value of the property with flag bit `bit` (kLastPropertyBit..kFirstPropertyBit).
void SkipProperty(ByteReader& r, int bit) {
  switch (uint16_t{1} << bit) {
    case kHeaders:
      SkipFieldTable(r);
      break;
    case kDeliveryMode:
    case kPriority:
      r.ReadU8();
      break;
    case kTimestamp:
      r.ReadU64();
      break;
    default:  // every other property is a shortstr
      r.ReadShortStr();
      break;
  }
}

// Skips every present property whose bit is above `stop_bit`.
bool SkipPropertiesAbove(ByteReader& r, uint16_t flags, int stop_bit) {
  for (int bit = kFirstPropertyBit; bit > stop_bit && r.ok(); --bit) {
    if (flags & (uint16_t{1} << bit)) SkipProperty(r, bit);
  }
  return r.ok();
}

void ReadStr(ByteReader& r, uint16_t flags, uint16_t bit, std::optional<std::string>* out) {
  if (flags & bit) out->emplace(r.ReadShortStr());
}

void WriteStr(const std::optional<std::string>& s, ByteWriter& w) {
  if (s) w.WriteShortStr(*s);
}

}  // namespace

bool SetHeader(std::string_view raw, std::string_view key, FieldValue value, std::string* out) {
  BasicProperties props;
  if (!DecodeProperties(raw, &props)) return false;
  FieldTable& headers = props.headers ? *props.headers : props.headers.emplace();
  auto it = std::find_if(headers.entries.begin(), headers.entries.end(), [&](const auto& e) { return e.first == key; });
  if (it != headers.entries.end()) {
    it->second = std::move(value);
  } else {
    headers.entries.emplace_back(std::string(key), std::move(value));
  }
  out->clear();
  ByteWriter w(*out);
  EncodeProperties(props, w);
  return true;
}

bool DecodeProperties(std::string_view raw, BasicProperties* out) {
  ByteReader r(raw);
  uint16_t flags = 0;
  if (!ReadFlags(r, &flags)) return false;
  BasicProperties p;
  ReadStr(r, flags, kContentType, &p.content_type);
  ReadStr(r, flags, kContentEncoding, &p.content_encoding);
  if (flags & kHeaders) {
    if (!DecodeFieldTable(r, &p.headers.emplace())) return false;
  }
  if (flags & kDeliveryMode) p.delivery_mode = r.ReadU8();
  if (flags & kPriority) p.priority = r.ReadU8();
  ReadStr(r, flags, kCorrelationId, &p.correlation_id);
  ReadStr(r, flags, kReplyTo, &p.reply_to);
  ReadStr(r, flags, kExpiration, &p.expiration);
  ReadStr(r, flags, kMessageId, &p.message_id);
  if (flags & kTimestamp) p.timestamp = r.ReadU64();
  ReadStr(r, flags, kType, &p.type);
  ReadStr(r, flags, kUserId, &p.user_id);
  ReadStr(r, flags, kAppId, &p.app_id);
  ReadStr(r, flags, kClusterId, &p.cluster_id);
  if (!r.ok() || !r.empty()) return false;
  *out = std::move(p);
  return true;
}

void EncodeProperties(const BasicProperties& p, ByteWriter& w) {
  uint16_t flags = 0;
  if (p.content_type) flags |= kContentType;
  if (p.content_encoding) flags |= kContentEncoding;
  if (p.headers) flags |= kHeaders;
  if (p.delivery_mode) flags |= kDeliveryMode;
  if (p.priority) flags |= kPriority;
  if (p.correlation_id) flags |= kCorrelationId;
  if (p.reply_to) flags |= kReplyTo;
  if (p.expiration) flags |= kExpiration;
  if (p.message_id) flags |= kMessageId;
  if (p.timestamp) flags |= kTimestamp;
  if (p.type) flags |= kType;
  if (p.user_id) flags |= kUserId;
  if (p.app_id) flags |= kAppId;
  if (p.cluster_id) flags |= kClusterId;
  w.WriteU16(flags);

  WriteStr(p.content_type, w);
  WriteStr(p.content_encoding, w);
  if (p.headers) EncodeFieldTable(*p.headers, w);
  if (p.delivery_mode) w.WriteU8(*p.delivery_mode);
  if (p.priority) w.WriteU8(*p.priority);
  WriteStr(p.correlation_id, w);
  WriteStr(p.reply_to, w);
  WriteStr(p.expiration, w);
  WriteStr(p.message_id, w);
  if (p.timestamp) w.WriteU64(*p.timestamp);
  WriteStr(p.type, w);
  WriteStr(p.user_id, w);
  WriteStr(p.app_id, w);
  WriteStr(p.cluster_id, w);
}

std::optional<uint8_t> PeekDeliveryMode(std::string_view raw) {
  ByteReader r(raw);
  uint16_t flags = 0;
  if (!ReadFlags(r, &flags) || !(flags & kDeliveryMode)) return std::nullopt;
  if (!SkipPropertiesAbove(r, flags, 12)) return std::nullopt;
  const uint8_t mode = r.ReadU8();
  if (!r.ok()) return std::nullopt;
  return mode;
}

std::optional<uint8_t> PeekPriority(std::string_view raw) {
  ByteReader r(raw);
  uint16_t flags = 0;
  if (!ReadFlags(r, &flags) || !(flags & kPriority)) return std::nullopt;
  if (!SkipPropertiesAbove(r, flags, 11)) return std::nullopt;
  const uint8_t priority = r.ReadU8();
  if (!r.ok()) return std::nullopt;
  return priority;
}

namespace {

// A shortstr property (flag bit `bit`) as a view into raw.
std::optional<std::string_view> PeekShortStr(std::string_view raw, int bit) {
  ByteReader r(raw);
  uint16_t flags = 0;
  if (!ReadFlags(r, &flags) || !(flags & (uint16_t{1} << bit))) return std::nullopt;
  if (!SkipPropertiesAbove(r, flags, bit)) return std::nullopt;
  std::string_view value = r.ReadShortStr();
  if (!r.ok()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::string_view> PeekExpiration(std::string_view raw) { return PeekShortStr(raw, 8); }

std::optional<std::string_view> PeekReplyTo(std::string_view raw) { return PeekShortStr(raw, 9); }

std::optional<std::string_view> PeekUserId(std::string_view raw) { return PeekShortStr(raw, 4); }

bool PeekHeaders(std::string_view raw, std::optional<FieldTable>* headers) {
  headers->reset();
  ByteReader r(raw);
  uint16_t flags = 0;
  if (!ReadFlags(r, &flags)) return false;
  if (!SkipPropertiesAbove(r, flags, 13)) return false;
  if (!(flags & kHeaders)) return true;
  if (!DecodeFieldTable(r, &headers->emplace())) {
    headers->reset();
    return false;
  }
  return true;
}

bool ValidateProperties(std::string_view raw) {
  ByteReader r(raw);
  uint16_t flags = 0;
  if (!ReadFlags(r, &flags)) return false;
  return SkipPropertiesAbove(r, flags, kLastPropertyBit - 1) && r.empty();
}

bool DecodeContentHeader(std::string_view payload, ContentHeader* out) {
  ByteReader r(payload);
  ContentHeader h;
  h.class_id = r.ReadU16();
  h.weight = r.ReadU16();
  h.body_size = r.ReadU64();
  if (!r.ok()) return false;
  h.raw_properties = payload.substr(kContentHeaderFixedSize);
  if (!ValidateProperties(h.raw_properties)) return false;
  *out = h;
  return true;
}

void EncodeContentHeader(uint16_t class_id, uint64_t body_size, std::string_view raw_properties,
                         ByteWriter& w) {
  w.WriteU16(class_id);
  w.WriteU16(0);  // weight, always zero
  w.WriteU64(body_size);
  w.WriteBytes(raw_properties);
}

}  // namespace warren::amqp
