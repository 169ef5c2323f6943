// Dead-lettering: a message rejected without requeue, expired, dropped by a length limit or
// returned past its queue's delivery limit (reason delivery_limit) is
// republished to its queue's dead-letter exchange, as RabbitMQ does:
//   - exchange = the dead-letter exchange; routing key = x-dead-letter-routing-key if set (the CC
//     header is then removed), else the message's own;
//   - the `expiration` property is removed (recorded as original-expiration);
//   - the x-death header (an array of tables, newest first) gets an entry {count, reason, queue,
//     time, exchange, routing-keys[, original-expiration]}, or the entry for the same queue and
//     reason has its count incremented and moves to the front; the first event also adds
//     x-first-death-reason/-queue/-exchange; the headers table is sorted by key;
//   - a message that would reach a queue it was already dead-lettered from, with no rejection in
//     between ("fully automatic" cycle), is not delivered there.
// A missing dead-letter exchange drops the message.
//
// Publishing is deferred to a fresh turn of the event loop (DeadLetterRouter), so a queue that
// drops a message never re-enters another queue's (or its own) operations. Like RabbitMQ's
// classic queues, dead-lettering is at-most-once: the original leaves its queue (and the store)
// at once.
//
// Thread: the broker thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/amqp/field_table.h"
#include "server/broker/message.h"

namespace warren::broker {

class Vhost;

enum class DeathReason : uint8_t { kRejected, kExpired, kMaxLen, kDeliveryLimit };

std::string_view DeathReasonName(DeathReason reason);

// The republished copy of `original`, dead-lettered from `queue` to exchange `dlx` with
// `routing_key` (null: keep the message's own) at `unix_seconds`. Null when the original's
// properties cannot be decoded.
MessageRef MakeDeadLetter(const Message& original, DeathReason reason, std::string_view queue, std::string_view dlx,
                          const std::string* routing_key, int64_t unix_seconds);

// Whether a dead-lettered message with these headers (x-death already updated) must not be
// delivered to `queue`: it was dead-lettered from there before and no entry up to that one is a
// rejection.
bool IsDeadLetterCycle(const amqp::FieldTable& headers, std::string_view queue);

class DeadLetterRouter {
 public:
  explicit DeadLetterRouter(Vhost& vhost) : vhost_(vhost) {}
  DeadLetterRouter(const DeadLetterRouter&) = delete;
  DeadLetterRouter& operator=(const DeadLetterRouter&) = delete;

  // Builds the dead letter now and schedules its routing (see Flush).
  void Publish(const Message& original, DeathReason reason, std::string_view queue, const std::string& dlx,
               const std::string* routing_key);
  // Routes every pending dead letter to the queues its exchange reaches. Runs posted on the event
  // loop; tests may call it directly.
  void Flush();
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    MessageRef message;
    DeathReason reason;
  };
  Vhost& vhost_;
  std::vector<Pending> pending_;
  bool flush_posted_ = false;
};

}  // namespace warren::broker
