// Basic-class content properties and content header frames.
//
// "raw properties" means the property flags (u16 words; bit 0 of each word says another flags
// word follows) followed by the property list, exactly as they appear in a content header frame
// after class-id, weight and body-size. Flag bits, high to low in the first word:
//   content-type 15, content-encoding 14, headers 13, delivery-mode 12, priority 11,
//   correlation-id 10, reply-to 9, expiration 8, message-id 7, timestamp 6, type 5, user-id 4,
//   app-id 3, cluster-id 2.
// Raw properties are malformed when truncated, when followed by trailing bytes, or when they set
// a flag with no known property (bit 1 of the first word, or any property bit of a later word),
// since such a property's size cannot be known.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/amqp/byte_buffer.h"
#include "server/amqp/field_table.h"

namespace warren::amqp {

struct BasicProperties {
  std::optional<std::string> content_type, content_encoding;
  std::optional<FieldTable> headers;
  std::optional<uint8_t> delivery_mode, priority;
  std::optional<std::string> correlation_id, reply_to, expiration, message_id;
  std::optional<uint64_t> timestamp;
  std::optional<std::string> type, user_id, app_id, cluster_id;

  bool operator==(const BasicProperties&) const = default;
};

// Calls visit(name, value) for each property present, in flag order, with the AMQP name in
// snake_case ("content_type", ...) and the value as stored (std::string, FieldTable, uint8_t or
// uint64_t), so renderings (the management API, warren-dump) share one list of properties.
template <typename F>
void ForEachProperty(const BasicProperties& p, F&& visit) {
  auto put = [&visit](const char* name, const auto& field) {
    if (field) visit(name, *field);
  };
  put("content_type", p.content_type);
  put("content_encoding", p.content_encoding);
  put("headers", p.headers);
  put("delivery_mode", p.delivery_mode);
  put("priority", p.priority);
  put("correlation_id", p.correlation_id);
  put("reply_to", p.reply_to);
  put("expiration", p.expiration);
  put("message_id", p.message_id);
  put("timestamp", p.timestamp);
  put("type", p.type);
  put("user_id", p.user_id);
  put("app_id", p.app_id);
  put("cluster_id", p.cluster_id);
}

// Decodes raw properties into *out (absent properties become nullopt). False when malformed.
bool DecodeProperties(std::string_view raw, BasicProperties* out);
// Appends raw properties: one flags word, then the present properties in flag order. Strings
// longer than 255 bytes are truncated (ByteWriter::WriteShortStr).
void EncodeProperties(const BasicProperties& p, ByteWriter& w);

// *out = raw with the header `key` set to `value` (replaced where present, else appended last,
// as RabbitMQ's rabbit_basic:add_header does). False when raw is malformed.
bool SetHeader(std::string_view raw, std::string_view key, FieldValue value, std::string* out);

// Fast paths used per message without a full decode. They only parse the properties up to the
// one they need (skipping earlier ones without allocating); the rest is not validated.
// Delivery mode: nullopt when absent or when raw is malformed up to that point.
std::optional<uint8_t> PeekDeliveryMode(std::string_view raw);
// Headers table: *headers = the table, or nullopt when absent. False when malformed.
bool PeekHeaders(std::string_view raw, std::optional<FieldTable>* headers);
// Priority, expiration, reply-to and user_id, the last three as views into raw: nullopt when absent or
// when raw is malformed up to that property.
std::optional<uint8_t> PeekPriority(std::string_view raw);
std::optional<std::string_view> PeekExpiration(std::string_view raw);
std::optional<std::string_view> PeekReplyTo(std::string_view raw);
std::optional<std::string_view> PeekUserId(std::string_view raw);

// Validates raw properties without building them (no allocation). Same verdict as
// DecodeProperties.
bool ValidateProperties(std::string_view raw);

struct ContentHeader {
  uint16_t class_id = 0;
  uint16_t weight = 0;
  uint64_t body_size = 0;
  std::string_view raw_properties;  // views into the decoded payload
};

// payload = content header frame payload (class-id u16, weight u16, body-size u64, raw
// properties). raw_properties views into payload. False when truncated or properties malformed
// (validated as basic-class properties, the only content class in 0-9-1).
bool DecodeContentHeader(std::string_view payload, ContentHeader* out);
// Appends a content header frame payload with weight 0.
void EncodeContentHeader(uint16_t class_id, uint64_t body_size, std::string_view raw_properties,
                         ByteWriter& w);

}  // namespace warren::amqp
