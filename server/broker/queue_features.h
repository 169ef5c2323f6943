// What RabbitMQ's queue arguments, per-message TTL and consumer priorities add to a Queue:
//
//   message TTL     x-message-ttl and the `expiration` property. A message's deadline is fixed
//                   when it is enqueued (the smaller of the two TTLs) and stored with it, so
//                   paging and restarts keep it; expired messages are dropped
//                   (or dead-lettered, reason "expired") only at the head of the queue, as in
//                   RabbitMQ: lazily when dispatching or on basic.get, and by a timer armed for the
//                   head's deadline so a queue without consumers expires on time. TTL 0: delivered
//                   if a consumer can take it at once, else expired right away.
//   length limits   x-max-length / x-max-length-bytes over the ready messages. drop-head drops
//                   (dead-letters, "maxlen") from the head after an enqueue or requeue;
//                   reject-publish(-dlx) refuses the publish (Queue::RejectsPublish).
//   dead-lettering  x-dead-letter-exchange / -routing-key, through the vhost's DeadLetterRouter.
//   x-delivery-limit  a message returned to the queue (nack/reject with requeue, recover, channel
//                   or connection closed) after more than `limit` deliveries is dead-lettered
//                   (reason delivery_limit) or dropped, as RabbitMQ 3.10's quorum queues do; the
//                   count is the stored delivery count. Messages recovered or paged in over the
//                   limit (returned by a crash) are dropped when they reach the head.
//   x-expires       the queue is deleted once it had no consumer, basic.get or declare for that
//                   long.
//   x-max-priority  a priority queue: ready messages ordered by priority (highest first), then by
//                   sequence; such a queue is never paged out.
//   consumers       single active consumer (x-single-active-consumer: the earliest consumer gets
//                   everything) and consumer priorities (x-priority: the highest-priority consumers
//                   that are ready, round-robin among equals).
//
// A plain queue has no QueueFeatures (Queue::features() is null), so its per-message path stays
// as it was: no clock read, no property decode. A queue gets one when declared with such
// arguments, or on its first message with an expiration or consumer with a priority.
//
// Thread: the broker thread, like its Queue.
#pragma once

#include <cstdint>
#include <memory>

#include "server/broker/dead_letter.h"
#include "server/broker/queue.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/timers.h"

namespace warren::broker {

class QueueFeatures {
 public:
  // Parses the queue's (already validated) effective arguments and starts its x-expires lease.
  explicit QueueFeatures(Queue& queue);
  // The effective arguments changed (a policy): parses them again and applies the new limits now.
  void Reconfigure();
  QueueFeatures(const QueueFeatures&) = delete;
  QueueFeatures& operator=(const QueueFeatures&) = delete;
  ~QueueFeatures();

  const QueueArguments& arguments() const { return args_; }
  bool priority_queue() const { return args_.max_priority.has_value() && *args_.max_priority > 0; }
  // Paging keeps a seq-ordered tail on disk: a priority queue keeps everything in memory.
  bool can_page() const { return !priority_queue(); }
  // Body bytes of the ready messages (x-max-length-bytes).
  uint64_t ready_bytes() const { return ready_bytes_; }

  // ---- hooks called by Queue (queue.cc) ----
  // A message is about to be enqueued: counts its bytes, reads the clock when it has a TTL.
  // Returns when its TTL ends in unix milliseconds (0: none), for the store.
  int64_t BeforeEnqueue(const Message& message);
  // Adds the new message to the ready list (TTL deadline, priority order).
  void AddReady(QueuedMessage message);
  // After the enqueue dispatched: expires a TTL-0 head, applies drop-head, arms the TTL timer.
  void AfterEnqueue();
  // A message read back from the store at recovery or by paging; `expires` is its stored TTL end
  // (unix milliseconds; 0: none stored, so a TTL restarts now).
  void Restore(QueuedMessage message, int64_t expires);
  void OnPagedIn(QueuedMessage& message, int64_t expires);
  void Requeue(QueuedMessage message);
  // A delivered message comes back: past the delivery limit it is dead-lettered (or dropped) and
  // leaves the queue instead. True when it did.
  bool DropIfOverDeliveryLimit(const QueuedMessage& message);
  // A ready message was taken by a consumer or basic.get.
  void OnLeftReady(const QueuedMessage& message);
  void OnPurged();
  void OnDeleted();
  void BeforeGet();
  // Dispatch: drops messages at the head whose TTL has passed, or that came back from the store
  // past the delivery limit.
  void DropExpiredHead();
  // Dispatch: *chosen = the consumer for the next message (nullptr: none ready). False when the
  // queue's plain round-robin applies.
  bool PickConsumer(Consumer** chosen);
  void OnConsumerAdded(Consumer* consumer);
  void OnConsumerRemoved(Consumer* consumer);
  // Drops what is due and re-arms the TTL timer: the timer's work, also run when a page-in that
  // waited for the store can go on.
  void ExpireDue();
  // Renews the x-expires lease (declare, basic.get, last consumer gone).
  void Touch();
  bool RejectsPublish(const MessageRef& message);
  // Republishes `message` to the dead-letter exchange, if the queue has one.
  void DeadLetter(const Message& message, DeathReason reason);

 private:
  TimerService& timers() const;
  MonoMillis Now() const { return timers().Now(); }
  // The message's TTL here: the smaller of x-message-ttl and its expiration.
  std::optional<uint32_t> TtlOf(const Message& m) const;
  // Sets the TTL deadline (from `now`, or from `expires`, a stored unix-ms end, when not 0) and the
  // priority of a message entering the queue.
  void Stamp(QueuedMessage& m, MonoMillis now, int64_t expires = 0) const;
  // Inserts in (priority desc, seq asc) order; for a plain queue that is seq order.
  void Insert(QueuedMessage m);
  QueuedMessage PopHead();
  void Drop(QueuedMessage m, DeathReason reason);
  // Drops head messages whose deadline is before `now` (or at it, when `inclusive`).
  bool DropExpired(MonoMillis now, bool inclusive);
  bool OverDeliveryLimit(const QueuedMessage& m) const {
    return args_.delivery_limit && m.delivery_count > *args_.delivery_limit;
  }
  // A message read from the store already over the limit counts towards recovered_over_limit_.
  void NoteRecovered(const QueuedMessage& m);
  void DropOverLimitHead();
  bool OverLengthLimit() const;
  void EnforceLengthLimit();
  void ArmTtlTimer();
  void OnTtlTimer();
  void OnExpiryTimer();

  Queue& queue_;
  QueueArguments args_;
  bool ttl_ = false;  // messages may carry deadlines (x-message-ttl, or an expiration seen)
  uint64_t ready_bytes_ = 0;
  size_t recovered_over_limit_ = 0;  // ready messages read from the store past the delivery limit
  size_t prioritized_consumers_ = 0;  // attached consumers with a non-zero x-priority
  MonoMillis pinned_now_ = 0;         // the current enqueue's clock reading (0: none)
  MonoMillis ttl_timer_at_ = 0;       // when the TTL timer fires (0: not armed)
  std::unique_ptr<Timer> ttl_timer_;
  std::unique_ptr<Timer> expiry_timer_;
};

}  // namespace warren::broker
