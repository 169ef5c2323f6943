// RabbitMQ's optional queue arguments (x-message-ttl, x-expires, x-max-length, x-overflow,
// x-dead-letter-*, x-max-priority, x-single-active-consumer, ...), consumer arguments
// (x-priority) and the per-message `expiration` property: parsing and validation with
// RabbitMQ 3.10's checks and PRECONDITION_FAILED texts.
//
// Pure functions; no broker state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/amqp/field_table.h"
#include "server/broker/error.h"

namespace warren::broker {

// x-queue-type. A quorum queue is a durable queue with RabbitMQ's quorum-queue rules (on one node);
// a stream is an append-only log that consumers read without removing.
enum class QueueType : uint8_t { kClassic, kQuorum, kStream };
std::string_view QueueTypeName(QueueType type);

// The type x-queue-type names (classic when absent or not a known type).
QueueType QueueTypeOf(const amqp::FieldTable& arguments);

// RabbitMQ's module name for a queue type ("rabbit_quorum_queue"), as its error texts print it.
std::string_view QueueTypeModule(QueueType type);

// x-dead-letter-strategy (quorum queues). Warren dead-letters at most once either way: see
// docs/ARCHITECTURE.md, "Quorum queues".
enum class DeadLetterStrategy : uint8_t { kAtMostOnce, kAtLeastOnce };

// What a queue over its length limit does with the next message.
enum class Overflow : uint8_t { kDropHead, kRejectPublish, kRejectPublishDlx };

// The largest TTL or expiry RabbitMQ accepts, in milliseconds.
inline constexpr uint64_t kMaxExpiry = 4294967295ull;
// The highest x-max-priority.
inline constexpr int64_t kMaxSupportedPriority = 255;

struct QueueArguments {
  QueueType type = QueueType::kClassic;
  std::optional<uint32_t> message_ttl;  // x-message-ttl, ms
  std::optional<uint32_t> expires;      // x-expires, ms (> 0)
  std::optional<uint64_t> max_length;
  std::optional<uint64_t> max_length_bytes;
  Overflow overflow = Overflow::kDropHead;
  std::optional<std::string> dead_letter_exchange;
  std::optional<std::string> dead_letter_routing_key;
  std::optional<uint8_t> max_priority;  // set: a priority queue with levels 0..max
  bool single_active_consumer = false;
  // x-delivery-limit: a message returned to the queue (nack/reject with requeue, channel or
  // connection closed, crash) after more than this many deliveries is dead-lettered (reason
  // delivery_limit) or dropped; 0: after its first delivery.
  std::optional<uint32_t> delivery_limit;
  DeadLetterStrategy dead_letter_strategy = DeadLetterStrategy::kAtMostOnce;
  // x-consumer-timeout (RabbitMQ 3.12's), ms: replaces the server's consumer_timeout for this
  // queue's deliveries. Left out of any(): the channels apply it, the queue's messages need
  // nothing for it.
  std::optional<uint64_t> consumer_timeout;

  // Whether a queue with these arguments behaves differently from a plain queue.
  bool any() const {
    return message_ttl || expires || max_length || max_length_bytes || dead_letter_exchange ||
           (max_priority && *max_priority > 0) || single_active_consumer || delivery_limit;
  }
};

// Validates and parses queue.declare arguments, in RabbitMQ's order of checks. `queue_label`
// names the queue in error texts ("queue 'q' in vhost '/'"). Arguments of another queue type are
// refused ("invalid arg 'x-max-priority' for queue 'q' in vhost '/' of queue type
// rabbit_quorum_queue"); arguments no type knows are ignored.
Result<QueueArguments> ParseQueueArguments(const amqp::FieldTable& arguments, std::string_view queue_label);

// RabbitMQ's quorum and stream queue rules at creation (406): no server-named, auto-delete,
// exclusive or non-durable queue, checked in its order. Classic queues pass.
Result<> CheckQueueTypeProperties(QueueType type, bool durable, bool exclusive, bool auto_delete, bool server_named,
                                  std::string_view queue_label);

// Parses arguments that were validated when the queue was declared (recovery, lazily built
// queue state): anything invalid is treated as absent.
QueueArguments ParseValidQueueArguments(const amqp::FieldTable& arguments);

// basic.consume arguments: the consumer priority (x-priority, 0 by default).
Result<int32_t> ParseConsumerPriority(const amqp::FieldTable& arguments, std::string_view queue_label);

// The `expiration` property as a TTL in milliseconds, or 406 with RabbitMQ's text
// ("invalid expiration 'soon': no_integer").
Result<uint32_t> ParseExpiration(std::string_view expiration);

// RabbitMQ's name of a field value's type ("longstr", "signedint", ...), used in error texts.
std::string_view FieldTypeName(const amqp::FieldValue& value);

}  // namespace warren::broker
