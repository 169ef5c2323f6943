// The on-disk layout of a Warren store: column families, keys and hand-encoded values.
//
// Column families (their RocksDB ids are fixed: the store creates them in this order, and
// WriteBatch encodes ids without a DB at hand — Store::Open checks the ids match):
//   0 "default"        kMetaKey -> proto::StoreMeta (magic + format version)
//                      kQuarantinePrefix, u8 family, original key -> quarantined record
//                      kStreamSegmentPrefix, be64(queue id), be64(first offset) -> stream segment
//                      kDelayedPrefix, escaped vhost, escaped exchange, be64(due unix ms), be64(seq)
//                      -> a delayed message (x-delayed-message exchange), as an inline message
//   1 "definitions"    kind byte + escaped components -> proto::*Record
//   2 "message_index"  be64(queue id) be64(seq) -> inline message | body reference | stream entry
//                      (a stream's seq is the message's offset)
//   3 "message_bodies" be64(body id) -> shared body
//   4 "delivery_state" be64(queue id) be64(seq) -> delivery count + redelivered
//
// Big-endian ids make a queue one contiguous, seq-ordered key range, and make the bodies CF
// ordered by allocation, so both are scanned with plain iterator bounds.
//
// Definition keys: one kind byte, then each component with 0x00 escaped as 00 FF and terminated
// by 00 01. The encoding is unambiguous (a component may hold any byte) and preserves the
// lexicographic order of the components, so listings come out sorted by vhost, then name.
//
// Message values (message_index kind 1, message_bodies kind 3):
//   u8 kind | varint32 len, exchange | varint32 len, routing key | varint32 len, properties | body
// The body is the rest of the value, so [header][body] is written from two slices without
// concatenating them and read back as a view. Protobuf would force a copy of the body into a
// std::string on both paths.
// Body reference (message_index kind 2): u8 kind | be64 body id.
// A message with a TTL (kinds 1 and 2 with kExpiresFlag set): the kind byte, then be64 unix
// milliseconds when the TTL ends, then the rest as without the flag. The deadline survives paging
// and restarts, so a message's TTL counts from its enqueue, not from when it was last read.
// Stream entry (message_index kind 4): u8 kind | be64 unix milliseconds (when appended) | then
// as an inline message. The timestamp serves x-stream-offset timestamps and x-max-age.
// Stream segment: u8 version (1) | be64 end offset (exclusive) | be64 body bytes | be64 first
// timestamp | be64 last timestamp. A segment is a run of offsets deleted as one range when
// retention drops it; the open (last) segment's record is rewritten with each append.
// Delivery state: u8 version (1) | varint32 delivery count | u8 redelivered (0/1).
//
// Thread-safety: free functions over caller-owned buffers; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/message.h"
#include "storage/status.h"

namespace warren::storage {

// Bumped when a change could not be read safely by an older Warren. Open refuses a store whose
// version is newer than this.
// Version 2: index entries may carry an expiry (kExpiresFlag). Open upgrades a version 1 store
// by rewriting the marker only.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr std::string_view kMetaKey = "warren.meta";
inline constexpr std::string_view kMagic = "warren";

enum class Family : uint32_t {
  kMeta = 0,
  kDefinitions = 1,
  kIndex = 2,
  kBodies = 3,
  kDelivery = 4,
};
inline constexpr int kNumFamilies = 5;
const std::string& FamilyName(Family f);

// ---- Definition keys ----
enum class DefKind : char {
  kVhost = 'v',
  kUser = 'u',
  kPermission = 'p',
  kTopicPermission = 't',
  kExchange = 'e',
  kQueue = 'q',
  kBinding = 'b',
  kPolicy = 'y',
  kOperatorPolicy = 'o',
};
std::string VhostKey(std::string_view name);
std::string UserKey(std::string_view name);
std::string PermissionKey(std::string_view user, std::string_view vhost);
std::string TopicPermissionKey(std::string_view user, std::string_view vhost, std::string_view exchange);
std::string ExchangeKey(std::string_view vhost, std::string_view name);
std::string QueueKey(std::string_view vhost, std::string_view name);
std::string BindingKey(std::string_view vhost, std::string_view source, std::string_view destination,
                       bool destination_is_exchange, std::string_view routing_key,
                       std::string_view arguments);
// kind: kPolicy or kOperatorPolicy.
std::string PolicyKey(DefKind kind, std::string_view vhost, std::string_view name);
// [DefPrefix(kind), DefPrefixEnd(kind)) holds every key of that kind.
std::string DefPrefix(DefKind kind);
std::string DefPrefixEnd(DefKind kind);

// A key for error messages: printable ASCII kept, other bytes as \xNN.
std::string PrintableKey(std::string_view key);

// ---- Message keys (message_index and delivery_state) ----
inline constexpr size_t kMessageKeySize = 16;
inline constexpr size_t kBodyKeySize = 8;

void PutBigEndian64(char* out, uint64_t v);
uint64_t GetBigEndian64(const char* in);

// out must hold kMessageKeySize bytes.
void EncodeMessageKey(uint64_t queue_id, uint64_t seq, char* out);
std::string MessageKey(uint64_t queue_id, uint64_t seq);
bool DecodeMessageKey(std::string_view key, uint64_t* queue_id, uint64_t* seq);
// The smallest key after every key of queue_id (an exclusive upper bound).
std::string QueueRangeEnd(uint64_t queue_id);

std::string BodyKey(uint64_t body_id);
bool DecodeBodyKey(std::string_view key, uint64_t* body_id);

// ---- Values ----
enum ValueKind : uint8_t {
  kInlineMessage = 1,
  kBodyRef = 2,
  kSharedBody = 3,
  kStreamMessage = 4,
};
// Or'ed into kInlineMessage / kBodyRef: a be64 expiry follows the kind byte.
inline constexpr uint8_t kExpiresFlag = 0x80;

// Appends the header of a message value (everything but the body) to *out.
void EncodeMessageHeader(ValueKind kind, const MessageData& m, std::string* out);
// The header of an inline index entry, with an expiry when `expires` (unix ms) is not 0.
void EncodeInlineHeader(int64_t expires, const MessageData& m, std::string* out);

// A decoded message_index or message_bodies value; views into the value.
struct MessageView {
  ValueKind kind = kInlineMessage;
  uint64_t body_id = 0;  // kBodyRef only
  int64_t timestamp = 0;  // kStreamMessage only: unix milliseconds
  int64_t expires = 0;    // kInlineMessage / kBodyRef: unix milliseconds the TTL ends; 0: none
  std::string_view exchange, routing_key, properties, body;
};
// Appends the header of a stream entry (kStreamMessage: the timestamp, then as EncodeMessageHeader).
void EncodeStreamHeader(int64_t timestamp, const MessageData& m, std::string* out);
// Decodes a message_index value (kInlineMessage, kBodyRef or kStreamMessage).
Status DecodeIndexValue(std::string_view value, MessageView* out);
// Decodes a message_bodies value (kSharedBody).
Status DecodeBodyValue(std::string_view value, MessageView* out);

// `expires`: unix milliseconds the message's TTL ends, 0 for none.
std::string EncodeBodyRef(uint64_t body_id, int64_t expires = 0);

// ---- Quarantine (in the default family) ----
// A record recovery could not use, moved aside (so it is neither lost nor read again at the next
// start): the key is kQuarantinePrefix, the family's id byte and the original key; the value is
// varint32 reason length, reason, original value.
inline constexpr std::string_view kQuarantinePrefix = "quarantine/";
std::string QuarantineKey(Family family, std::string_view key);
// False when `qkey` is not a quarantine key.
bool DecodeQuarantineKey(std::string_view qkey, Family* family, std::string_view* key);
std::string EncodeQuarantineValue(std::string_view reason, std::string_view value);
Status DecodeQuarantineValue(std::string_view encoded, std::string_view* reason, std::string_view* value);

// ---- Streams (segments in the default family) ----
inline constexpr std::string_view kStreamSegmentPrefix = "stream/";
struct StreamSegment {
  uint64_t first = 0;  // first offset
  uint64_t end = 0;    // one past the last offset
  uint64_t bytes = 0;  // body bytes
  int64_t first_timestamp = 0, last_timestamp = 0;  // unix milliseconds
  bool operator==(const StreamSegment&) const = default;
};
std::string StreamSegmentKey(uint64_t queue_id, uint64_t first_offset);
// [StreamSegmentKey(queue_id, 0), StreamSegmentRangeEnd(queue_id)) holds the queue's segments.
std::string StreamSegmentRangeEnd(uint64_t queue_id);
bool DecodeStreamSegmentKey(std::string_view key, uint64_t* queue_id, uint64_t* first_offset);
std::string EncodeStreamSegment(const StreamSegment& s);
Status DecodeStreamSegment(std::string_view value, StreamSegment* out);

// ---- Delayed messages (in the default family) ----
// An x-delayed-message exchange's pending messages: one contiguous range per exchange (its
// prefix: kDelayedPrefix and the escaped vhost and exchange names, as definition components),
// ordered by due time, then by the exchange's publish sequence. The value is an inline message
// value (kInlineMessage; DecodeIndexValue reads it).
inline constexpr std::string_view kDelayedPrefix = "delayed/";
inline constexpr size_t kDelayedKeySuffixSize = 16;
std::string DelayedExchangePrefix(std::string_view vhost, std::string_view exchange);
// The smallest key after every key starting with `prefix` (a DelayedExchangePrefix or kDelayedPrefix).
std::string DelayedRangeEnd(std::string_view prefix);
std::string DelayedKey(std::string_view exchange_prefix, uint64_t due_unix_ms, uint64_t seq);
// Splits a delayed key into its exchange prefix and suffix; false when it is too short.
bool DecodeDelayedKey(std::string_view key, std::string_view* exchange_prefix, uint64_t* due_unix_ms, uint64_t* seq);

struct DeliveryState {
  uint32_t delivery_count = 0;
  bool redelivered = false;
};
std::string EncodeDeliveryState(const DeliveryState& d);
Status DecodeDeliveryState(std::string_view value, DeliveryState* out);

// A durable queue's delivery horizon: no message with this seq or a higher one has ever been
// delivered, so recovery flags every message below it redelivered (docs/ARCHITECTURE.md,
// "Redelivered after a crash"). Kept in delivery_state under the queue's last key, seq
// kHorizonSeq (never a message's), so a queue's range delete removes it with the rest.
inline constexpr uint64_t kHorizonSeq = UINT64_MAX;
std::string EncodeDeliveryHorizon(uint64_t horizon);
Status DecodeDeliveryHorizon(std::string_view value, uint64_t* horizon);

}  // namespace warren::storage
