#include "storage/format.h"

#include <array>

namespace warren::storage {

namespace {

void AppendVarint32(std::string* out, uint32_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Consumes a varint32 from the front of *in. False when truncated or longer than 5 bytes.
bool GetVarint32(std::string_view* in, uint32_t* v) {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    uint32_t byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool GetLengthPrefixed(std::string_view* in, std::string_view* out) {
  uint32_t n = 0;
  if (!GetVarint32(in, &n) || in->size() < n) return false;
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

void AppendComponent(std::string* out, std::string_view c) {
  for (char ch : c) {
    out->push_back(ch);
    if (ch == '\0') out->push_back('\xff');
  }
  out->push_back('\0');
  out->push_back('\x01');
}

std::string DefKey(DefKind kind, std::initializer_list<std::string_view> parts) {
  std::string key(1, static_cast<char>(kind));
  for (std::string_view p : parts) AppendComponent(&key, p);
  return key;
}

// Shared by index (inline) and bodies values, which differ only in their kind byte.
Status DecodeMessageBody(std::string_view value, MessageView* out, size_t skip = 1) {
  std::string_view in = value.substr(skip);
  if (!GetLengthPrefixed(&in, &out->exchange) || !GetLengthPrefixed(&in, &out->routing_key) ||
      !GetLengthPrefixed(&in, &out->properties)) {
    return Status::Corruption("truncated message header");
  }
  out->body = in;
  return Status::OK();
}

// The kind byte, be64 `stamp`, then the rest of a message header.
void EncodeStampedHeader(uint8_t kind, int64_t stamp, const MessageData& m, std::string* out) {
  const size_t start = out->size();
  EncodeMessageHeader(kInlineMessage, m, out);
  (*out)[start] = static_cast<char>(kind);
  char be[8];
  PutBigEndian64(be, static_cast<uint64_t>(stamp));
  out->insert(start + 1, be, sizeof(be));
}

}  // namespace

const std::string& FamilyName(Family f) {
  // "default" is RocksDB's name for the family every DB has.
  static const std::array<std::string, kNumFamilies> kNames = {
      "default", "definitions", "message_index", "message_bodies", "delivery_state"};
  return kNames[static_cast<uint32_t>(f)];
}

std::string VhostKey(std::string_view name) { return DefKey(DefKind::kVhost, {name}); }
std::string UserKey(std::string_view name) { return DefKey(DefKind::kUser, {name}); }
std::string PermissionKey(std::string_view user, std::string_view vhost) {
  return DefKey(DefKind::kPermission, {user, vhost});
}
std::string TopicPermissionKey(std::string_view user, std::string_view vhost, std::string_view exchange) {
  return DefKey(DefKind::kTopicPermission, {user, vhost, exchange});
}
std::string ExchangeKey(std::string_view vhost, std::string_view name) {
  return DefKey(DefKind::kExchange, {vhost, name});
}
std::string QueueKey(std::string_view vhost, std::string_view name) {
  return DefKey(DefKind::kQueue, {vhost, name});
}
std::string PolicyKey(DefKind kind, std::string_view vhost, std::string_view name) {
  return DefKey(kind, {vhost, name});
}
std::string BindingKey(std::string_view vhost, std::string_view source, std::string_view destination,
                       bool destination_is_exchange, std::string_view routing_key,
                       std::string_view arguments) {
  return DefKey(DefKind::kBinding, {vhost, source, destination_is_exchange ? "e" : "q",
                                    destination, routing_key, arguments});
}

std::string PrintableKey(std::string_view key) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::string DefPrefix(DefKind kind) { return std::string(1, static_cast<char>(kind)); }
std::string DefPrefixEnd(DefKind kind) { return std::string(1, static_cast<char>(kind) + 1); }

void PutBigEndian64(char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t GetBigEndian64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void EncodeMessageKey(uint64_t queue_id, uint64_t seq, char* out) {
  PutBigEndian64(out, queue_id);
  PutBigEndian64(out + 8, seq);
}

std::string MessageKey(uint64_t queue_id, uint64_t seq) {
  std::string key(kMessageKeySize, '\0');
  EncodeMessageKey(queue_id, seq, key.data());
  return key;
}

bool DecodeMessageKey(std::string_view key, uint64_t* queue_id, uint64_t* seq) {
  if (key.size() != kMessageKeySize) return false;
  *queue_id = GetBigEndian64(key.data());
  *seq = GetBigEndian64(key.data() + 8);
  return true;
}

std::string QueueRangeEnd(uint64_t queue_id) {
  if (queue_id == UINT64_MAX) {
    // No 8-byte successor exists; 17 bytes of FF sort after every 16-byte key.
    return std::string(kMessageKeySize + 1, '\xff');
  }
  std::string end(8, '\0');
  PutBigEndian64(end.data(), queue_id + 1);
  return end;
}

std::string BodyKey(uint64_t body_id) {
  std::string key(kBodyKeySize, '\0');
  PutBigEndian64(key.data(), body_id);
  return key;
}

bool DecodeBodyKey(std::string_view key, uint64_t* body_id) {
  if (key.size() != kBodyKeySize) return false;
  *body_id = GetBigEndian64(key.data());
  return true;
}

void EncodeMessageHeader(ValueKind kind, const MessageData& m, std::string* out) {
  out->push_back(static_cast<char>(kind));
  AppendVarint32(out, static_cast<uint32_t>(m.exchange.size()));
  out->append(m.exchange);
  AppendVarint32(out, static_cast<uint32_t>(m.routing_key.size()));
  out->append(m.routing_key);
  AppendVarint32(out, static_cast<uint32_t>(m.properties.size()));
  out->append(m.properties);
}

void EncodeStreamHeader(int64_t timestamp, const MessageData& m, std::string* out) {
  EncodeStampedHeader(kStreamMessage, timestamp, m, out);
}

void EncodeInlineHeader(int64_t expires, const MessageData& m, std::string* out) {
  if (expires == 0) return EncodeMessageHeader(kInlineMessage, m, out);
  EncodeStampedHeader(kInlineMessage | kExpiresFlag, expires, m, out);
}

std::string StreamSegmentKey(uint64_t queue_id, uint64_t first_offset) {
  std::string key(kStreamSegmentPrefix);
  key.resize(kStreamSegmentPrefix.size() + 16);
  PutBigEndian64(key.data() + kStreamSegmentPrefix.size(), queue_id);
  PutBigEndian64(key.data() + kStreamSegmentPrefix.size() + 8, first_offset);
  return key;
}

std::string StreamSegmentRangeEnd(uint64_t queue_id) {
  // Above the queue's largest possible key, below the next queue's first.
  return StreamSegmentKey(queue_id, UINT64_MAX) + '\0';
}

std::string DelayedExchangePrefix(std::string_view vhost, std::string_view exchange) {
  std::string key(kDelayedPrefix);
  AppendComponent(&key, vhost);
  AppendComponent(&key, exchange);
  return key;
}

std::string DelayedRangeEnd(std::string_view prefix) {
  // Both prefixes end in a byte below 0xff ('/' or a component's terminating 01).
  std::string end(prefix);
  ++end.back();
  return end;
}

std::string DelayedKey(std::string_view exchange_prefix, uint64_t due_unix_ms, uint64_t seq) {
  std::string key(exchange_prefix);
  key.resize(exchange_prefix.size() + kDelayedKeySuffixSize);
  PutBigEndian64(key.data() + exchange_prefix.size(), due_unix_ms);
  PutBigEndian64(key.data() + exchange_prefix.size() + 8, seq);
  return key;
}

bool DecodeDelayedKey(std::string_view key, std::string_view* exchange_prefix, uint64_t* due_unix_ms, uint64_t* seq) {
  if (key.size() < kDelayedPrefix.size() + kDelayedKeySuffixSize || !key.starts_with(kDelayedPrefix)) return false;
  const size_t n = key.size() - kDelayedKeySuffixSize;
  *exchange_prefix = key.substr(0, n);
  *due_unix_ms = GetBigEndian64(key.data() + n);
  *seq = GetBigEndian64(key.data() + n + 8);
  return true;
}

bool DecodeStreamSegmentKey(std::string_view key, uint64_t* queue_id, uint64_t* first_offset) {
  if (key.size() != kStreamSegmentPrefix.size() + 16 || !key.starts_with(kStreamSegmentPrefix)) return false;
  *queue_id = GetBigEndian64(key.data() + kStreamSegmentPrefix.size());
  *first_offset = GetBigEndian64(key.data() + kStreamSegmentPrefix.size() + 8);
  return true;
}

std::string EncodeStreamSegment(const StreamSegment& s) {
  std::string v(1 + 4 * 8, '\0');
  v[0] = '\x01';
  PutBigEndian64(v.data() + 1, s.end);
  PutBigEndian64(v.data() + 9, s.bytes);
  PutBigEndian64(v.data() + 17, static_cast<uint64_t>(s.first_timestamp));
  PutBigEndian64(v.data() + 25, static_cast<uint64_t>(s.last_timestamp));
  return v;
}

Status DecodeStreamSegment(std::string_view value, StreamSegment* out) {
  if (value.size() != 1 + 4 * 8 || value[0] != '\x01') return Status::Corruption("bad stream segment record");
  out->end = GetBigEndian64(value.data() + 1);
  out->bytes = GetBigEndian64(value.data() + 9);
  out->first_timestamp = static_cast<int64_t>(GetBigEndian64(value.data() + 17));
  out->last_timestamp = static_cast<int64_t>(GetBigEndian64(value.data() + 25));
  return Status::OK();
}

Status DecodeIndexValue(std::string_view value, MessageView* out) {
  *out = MessageView();
  if (value.empty()) return Status::Corruption("empty message index value");
  uint8_t kind = static_cast<uint8_t>(value[0]);
  size_t skip = 1;
  if (kind & kExpiresFlag) {
    kind &= ~kExpiresFlag;
    if (kind != kInlineMessage && kind != kBodyRef) return Status::Corruption("expiry on a message index value of kind " + std::to_string(kind));
    if (value.size() < 1 + 8) return Status::Corruption("truncated expiry");
    out->expires = static_cast<int64_t>(GetBigEndian64(value.data() + 1));
    if (out->expires == 0) return Status::Corruption("expiry 0");
    skip += 8;
  }
  switch (kind) {
    case kInlineMessage:
      out->kind = kInlineMessage;
      return DecodeMessageBody(value, out, skip);
    case kStreamMessage:
      if (value.size() < 1 + 8) return Status::Corruption("truncated stream entry");
      out->kind = kStreamMessage;
      out->timestamp = static_cast<int64_t>(GetBigEndian64(value.data() + 1));
      return DecodeMessageBody(value, out, 1 + 8);
    case kBodyRef:
      if (value.size() != skip + kBodyKeySize) return Status::Corruption("bad body reference size");
      out->kind = kBodyRef;
      out->body_id = GetBigEndian64(value.data() + skip);
      if (out->body_id == 0) return Status::Corruption("body reference to body id 0");
      return Status::OK();
    default:
      return Status::Corruption("unknown message index value kind " +
                                std::to_string(static_cast<uint8_t>(value[0])));
  }
}

Status DecodeBodyValue(std::string_view value, MessageView* out) {
  *out = MessageView();
  if (value.empty() || static_cast<uint8_t>(value[0]) != kSharedBody) {
    return Status::Corruption("not a shared body value");
  }
  out->kind = kSharedBody;
  return DecodeMessageBody(value, out);
}

std::string EncodeBodyRef(uint64_t body_id, int64_t expires) {
  const size_t skip = expires != 0 ? 1 + 8 : 1;
  std::string v(skip + kBodyKeySize, '\0');
  v[0] = static_cast<char>(expires != 0 ? kBodyRef | kExpiresFlag : kBodyRef);
  if (expires != 0) PutBigEndian64(v.data() + 1, static_cast<uint64_t>(expires));
  PutBigEndian64(v.data() + skip, body_id);
  return v;
}

std::string EncodeDeliveryState(const DeliveryState& d) {
  std::string v(1, '\x01');
  AppendVarint32(&v, d.delivery_count);
  v.push_back(d.redelivered ? '\x01' : '\x00');
  return v;
}

Status DecodeDeliveryState(std::string_view value, DeliveryState* out) {
  if (value.empty() || value[0] != '\x01') return Status::Corruption("unknown delivery state version");
  value.remove_prefix(1);
  if (!GetVarint32(&value, &out->delivery_count) || value.size() != 1 ||
      static_cast<uint8_t>(value[0]) > 1) {
    return Status::Corruption("malformed delivery state");
  }
  out->redelivered = value[0] == '\x01';
  return Status::OK();
}

std::string EncodeDeliveryHorizon(uint64_t horizon) {
  std::string v(1 + 8, '\x02');
  PutBigEndian64(v.data() + 1, horizon);
  return v;
}

Status DecodeDeliveryHorizon(std::string_view value, uint64_t* horizon) {
  if (value.size() != 1 + 8 || value[0] != '\x02') return Status::Corruption("malformed delivery horizon");
  *horizon = GetBigEndian64(value.data() + 1);
  return Status::OK();
}

std::string QuarantineKey(Family family, std::string_view key) {
  std::string out(kQuarantinePrefix);
  out.push_back(static_cast<char>(family));
  out.append(key);
  return out;
}

bool DecodeQuarantineKey(std::string_view qkey, Family* family, std::string_view* key) {
  if (!qkey.starts_with(kQuarantinePrefix) || qkey.size() == kQuarantinePrefix.size()) return false;
  const auto id = static_cast<uint8_t>(qkey[kQuarantinePrefix.size()]);
  if (id >= kNumFamilies) return false;
  *family = static_cast<Family>(id);
  *key = qkey.substr(kQuarantinePrefix.size() + 1);
  return true;
}

std::string EncodeQuarantineValue(std::string_view reason, std::string_view value) {
  std::string out;
  AppendVarint32(&out, static_cast<uint32_t>(reason.size()));
  out.append(reason);
  out.append(value);
  return out;
}

Status DecodeQuarantineValue(std::string_view encoded, std::string_view* reason, std::string_view* value) {
  if (!GetLengthPrefixed(&encoded, reason)) return Status::Corruption("quarantined record: bad reason length");
  *value = encoded;
  return Status::OK();
}

}  // namespace warren::storage
