// A queue: an ordered list of ready messages, the consumers attached to it and the count of
// messages delivered but not yet acknowledged (those are held by the consuming channels).
//
// Thread: owned by the broker thread; no method may be called from another thread.
// Messages carry a per-queue sequence number that fixes their order, so a requeued message
// returns to its original position. The store (durable-store issue) keys messages by the same
// (queue id, sequence) pair.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/amqp/field_table.h"
#include "server/broker/message.h"
#include "server/broker/message_stats.h"
#include "server/broker/persister.h"
#include "server/broker/publisher_flow.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/timers.h"

namespace warren::broker {

class Queue;
class QueueFeatures;
class StreamLog;
struct StreamOffset;
class Vhost;

struct QueuedMessage {
  MessageRef msg;
  uint64_t seq = 0;
  uint32_t delivery_count = 0;  // deliveries so far, including the one in progress
  bool redelivered = false;
  bool stored = false;  // has an index entry in the store (persistent message, durable queue)
  bool state_stored = false;  // has a delivery-state record in the store too
  uint8_t priority = 0;       // priority queues: the effective priority, 0..x-max-priority
  MonoMillis expires_at = 0;  // message TTL: when it expires (0: never); see queue_features.h
};

// A subscriber to a queue, implemented by the channel layer. The queue holds a non-owning
// pointer; the owner calls Queue::RemoveConsumer before destroying it.
class Consumer {
 public:
  virtual ~Consumer() = default;
  // Whether the consumer can take one more message now (prefetch window, socket backpressure).
  virtual bool Ready() const = 0;
  virtual bool no_ack() const = 0;
  // Hands a message over. Unless no_ack(), the queue counts it unacked until the channel calls
  // Queue::Settle or Queue::Requeue. Must not add or remove consumers of any queue.
  virtual void Deliver(Queue& queue, QueuedMessage message) = 0;
  // The queue is being deleted; the consumer has already been detached.
  virtual void OnQueueDeleted(Queue& queue) = 0;
  // Consumer priority (basic.consume argument x-priority): higher ones are served first.
  virtual int32_t priority() const { return 0; }
};

struct QueueOptions {
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  uint64_t owner_connection = 0;  // set for exclusive queues
  amqp::FieldTable arguments;
};

class Queue : public std::enable_shared_from_this<Queue>, public DurabilityListener {
 public:
  // `persister` may be null (nothing is stored); `id` keys the queue's messages in the store.
  // A queue declared with x-queue-type=stream is a stream (stream.h) from here on.
  Queue(uint64_t id, std::string name, QueueOptions options, Persister* persister = nullptr);
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }
  void set_persister(Persister* persister) { persister_ = persister; }
  const QueueOptions& options() const { return options_; }
  QueueType type() const { return type_; }
  // x-consumer-timeout, ms: how long a delivery from this queue may stay unacknowledged (nullopt:
  // the server's consumer_timeout applies).
  std::optional<uint64_t> consumer_timeout() const { return consumer_timeout_; }
  // Durable, non-exclusive queues live in the store (exclusive ones die with their connection).
  bool on_disk() const { return options_.durable && !options_.exclusive; }
  bool deleted() const { return deleted_; }
  // A stream (x-queue-type=stream): an append-only log; null for other queues.
  StreamLog* stream() const { return stream_.get(); }
  // Stream consumers start at `offset` (x-stream-offset) and read without removing.
  // REQUIRES: stream() and the consumer is not attached already.
  void AddStreamConsumer(Consumer* consumer, const StreamOffset& offset);

  // Appends a message and delivers what the consumers can take. Returns true when the message
  // was written to the store (its publisher must wait for durability before a confirm).
  bool Enqueue(MessageRef message);
  // Delivery horizon (durable queues): a stored message goes to a consumer only once a store
  // record saying "no message at or above H was delivered", with H above its seq, is durable;
  // H runs kHorizonStep messages ahead of the deliveries, extended every kHorizonStep / 4 of
  // them, so a consumer waits for it only when it outruns the store. After a crash every message
  // below the stored H comes back redelivered=true: nothing that may have reached a consumer is
  // delivered again unflagged, and about kHorizonStep that never left are flagged needlessly.
  static constexpr uint64_t kHorizonStep = 1024;
  // Most paged messages one background page-in reads: the broker thread takes them in one
  // handler, which must stay short for every other client.
  static constexpr size_t kPageInChunk = 1024;
  // Most paged messages a basic.get reads on the broker thread when it finds none in memory.
  static constexpr size_t kGetPageIn = 64;
  // Most of the newest paged-out messages a queue also keeps in memory (at most a quarter of the
  // memory window, in messages and in bytes): once the paged tail is down to them, they move to
  // the ready list without a read and the queue stops paging. Without them a queue that paged
  // once (a burst before its consumers came) would send every later message through the store
  // for as long as its consumers merely keep up.
  static constexpr size_t kRecentPaged = 1024;
  // A new durable queue: its first horizon goes in the batch of its declaration.
  void StartDeliveryHorizon();
  // A clean stop: the delivery states in the store say exactly what was delivered, so the
  // horizon drops to 0 and the next start flags nothing needlessly. No delivery may follow.
  void CloseDeliveryHorizon();
  // Recovery, before any Restore: the horizon the store holds for this queue (0: none).
  void set_recovered_horizon(uint64_t horizon) { recovered_horizon_ = horizon; }
  // Whether a recovered message may have been delivered before the restart.
  bool MayHaveBeenDelivered(uint64_t seq) const { return seq < recovered_horizon_; }
  // Recovery, after the last Restore: new messages get seqs above the old horizon, and `batch`
  // gets this run's first horizon (written before the server takes connections).
  void FinishRecovery(storage::WriteBatch& batch);
  // Recovery: appends a message read from the store, whose TTL ends at `expires` (unix
  // milliseconds, as stored; 0: none). REQUIRES: seq ascends across calls.
  void Restore(QueuedMessage message, int64_t expires = 0);
  // Recovery: the message `seq` stays in the store only (beyond the memory window).
  // REQUIRES: seq ascends across calls and follows every Restore.
  void RestorePaged(uint64_t seq);
  // Whether the next recovered message should stay on disk.
  bool memory_window_full() const;
  // basic.get: takes the head message; counted unacked unless no_ack. nullopt when empty.
  std::optional<QueuedMessage> Get(bool no_ack);
  // A delivered message was acked, or rejected without requeue: it leaves the queue for good.
  void Settle(const QueuedMessage& message);
  // basic.ack: Settle, counted in stats() as an ack.
  void Ack(const QueuedMessage& message);
  // A delivered message goes back to its original position, marked redelivered. Callers
  // requeueing many should go from the newest to the oldest: each insert is then O(1).
  void Requeue(QueuedMessage message);
  // Drops every ready message; returns how many.
  uint32_t Purge();

  // REQUIRES: the consumer is not attached already.
  void AddConsumer(Consumer* consumer, bool exclusive);
  void RemoveConsumer(Consumer* consumer);
  bool has_exclusive_consumer() const { return exclusive_consumer_; }
  // Delivers ready messages round-robin to consumers that are Ready().
  void Dispatch();

  // Publisher flow control: a queue whose consumers fall behind by kFlowHighWatermark messages
  // (paged ones included) pauses its publishers until the backlog is down to kFlowLowWatermark,
  // for as long as the consumers keep taking messages: each kFlowCheckMillis of a pause they must
  // take kFlowTakenPerCheck more. Consumers that do not (stopped ones: prefetch full and no acks,
  // a socket nobody reads; very slow ones) end the pause, and for kFlowUnpacedMillis the queue
  // buffers instead, as a RabbitMQ queue always does. So a stopped consumer holds a publisher up
  // for a second in eleven. The check is long because on a loaded machine a busy consumer's
  // process can go a tenth of a second without reading (seen in scenario g: 64 consumer threads
  // on 2 cores). A queue without consumers never pauses anyone.
  static constexpr size_t kFlowHighWatermark = 4000;
  static constexpr size_t kFlowLowWatermark = 2000;
  static constexpr MonoMillis kFlowCheckMillis = 1000;
  static constexpr size_t kFlowTakenPerCheck = 200;
  static constexpr MonoMillis kFlowUnpacedMillis = 10000;
  // A stream keeps nothing in memory, so only the store's back-pressure paces its publishers.
  bool ShouldPausePublishers() const {
    return stream_ == nullptr && !consumers_.empty() && ready_count() >= kFlowHighWatermark && !Unpaced();
  }
  void PausePublisher(std::weak_ptr<PublisherFlow> publisher);
  // Detaches every consumer (telling each) and drops all messages. The queue is dead after this.
  void MarkDeleted();

  // A stream's ready count is every message it keeps (as RabbitMQ reports streams).
  size_t ready_count() const { return stream_ != nullptr ? StreamMessageCount() : ready_.size() + paged_count_; }
  // Ready messages held only in the store.
  size_t paged_count() const { return paged_count_; }
  // Body bytes of the ready messages held in memory (the byte side of the memory window).
  uint64_t memory_bytes() const { return memory_bytes_; }

  // DurabilityListener: paged-out messages we wait to read back, or the delivery horizon, are
  // now in the store.
  void OnDurable(uint64_t ticket, bool ok) override;
  size_t unacked_count() const { return unacked_; }
  size_t consumer_count() const { return consumers_.size(); }
  // What happened to this queue's messages (publish, deliver, get, ack, ...) and the rates.
  MessageStats& stats() { return stats_; }
  const MessageStats& stats() const { return stats_; }
  // For auto-delete: a queue is deleted when its last consumer goes, not before its first.
  bool had_consumers() const { return had_consumers_; }

  // ---- RabbitMQ queue arguments, message TTL, consumer priorities: see queue_features.h ----
  // The vhost the queue lives in (timers, dead-lettering, x-expires); set by the vhost.
  void set_vhost(Vhost* vhost) { vhost_ = vhost; }
  Vhost* vhost() const { return vhost_; }
  // The queue's extra state; null for a plain queue until a feature needs it.
  QueueFeatures* features() const { return features_.get(); }
  QueueFeatures& EnableFeatures();
  // x-overflow=reject-publish(-dlx): the queue is full and refuses `message` (dead-lettering it
  // for reject-publish-dlx); its publisher gets a basic.nack. Asked before Enqueue.
  bool RejectsPublish(const MessageRef& message) { return features_ != nullptr && RejectsPublishSlow(message); }
  // The x-delivery-count header a delivery of `message` (delivery_count already counting it)
  // carries, or nullopt for none. Quorum queues as RabbitMQ 3.10: the deliveries before this one,
  // on every basic.get and on redeliveries to consumers; classic queues with a delivery limit the
  // same (Warren's extension); other queues none, so their properties go out untouched.
  std::optional<int64_t> DeliveryCountHeader(const QueuedMessage& message, bool by_get) const {
    if (type_ != QueueType::kQuorum && features_ == nullptr) return std::nullopt;
    return DeliveryCountHeaderSlow(message, by_get);
  }
  // basic.reject / basic.nack without requeue: Settle, dead-lettering the message first when the
  // queue has a dead-letter exchange.
  void Reject(const QueuedMessage& message);
  // A queue.declare of the existing queue: renews its x-expires lease.
  void Touch();
  // The arguments the queue behaves by: its declared ones with its policies' keys resolved in
  // (EffectiveQueueArguments, policy.h). Equal to options().arguments without policies.
  const amqp::FieldTable& effective_arguments() const {
    return effective_arguments_ ? *effective_arguments_ : options_.arguments;
  }
  // The applying policy and operator policy (empty: none).
  const std::string& policy() const { return policy_; }
  const std::string& operator_policy() const { return operator_policy_; }
  // Vhost::ApplyPolicies: takes the policies' names and the resulting arguments, and applies
  // them at once (TTL for messages enqueued from now, length limits, dead-lettering, delivery
  // limit, x-expires). Streams keep their declared arguments.
  void ApplyPolicies(std::string policy, std::string operator_policy, amqp::FieldTable effective);
  // Vhost::Route's de-duplication mark: true the first time it is called with `pass`.
  bool MarkRouted(uint64_t pass) {
    if (route_pass_ == pass) return false;
    route_pass_ = pass;
    return true;
  }

 private:
  friend class QueueFeatures;
  friend class StreamLog;
  bool RejectsPublishSlow(const MessageRef& message);
  std::optional<int64_t> DeliveryCountHeaderSlow(const QueuedMessage& message, bool by_get) const;
  size_t StreamMessageCount() const;

  uint64_t id_;
  std::string name_;
  QueueOptions options_;
  std::optional<amqp::FieldTable> effective_arguments_;  // set only when it differs from options_.arguments
  std::string policy_;
  std::string operator_policy_;
  Persister* persister_;
  QueueType type_;
  std::optional<uint64_t> consumer_timeout_;
  std::deque<QueuedMessage> ready_;  // ascending seq
  void ResumePublishersIfDrained();
  // The flow timer: keeps the pause while the consumers took kFlowTakenPerCheck since the last
  // check, or ends it.
  void CheckFlow();
  void ArmFlowCheck();
  void ResumePausedPublishers();
  bool Unpaced() const;
  // Writes the message's index entry (paged out, or persistent in a durable queue).
  void WriteMessage(uint64_t seq, const Message& message, int64_t expires);
  // Store bookkeeping for a message leaving the queue's hands: delivered, settled, dropped.
  void OnDelivered(QueuedMessage& m, bool no_ack);
  void Forget(const QueuedMessage& m);
  static void DeleteStored(Persister& persister, uint64_t queue_id, uint64_t seq, bool state_stored);
  // Quorum queues and queues with a delivery limit: deliveries are counted for the client.
  bool CountsDeliveries() const;
  // Paging: a queue whose in-memory backlog reached the window (messages or bytes) writes new
  // messages to the store only, and reads them back in chunks as the head drains.
  bool ShouldPageOut() const;
  bool MemoryWindowFull() const;
  // Keeps memory_bytes_ in step with ready_ (every insert and removal goes through these).
  void AddedReady(const QueuedMessage& m) { memory_bytes_ += m.msg->body_size(); }
  void RemovedReady(const QueuedMessage& m) { memory_bytes_ -= std::min(memory_bytes_, m.msg->body_size()); }
  // Starts reading the head of the paged tail back on the store's reader thread once the memory
  // window is half empty; the broker thread goes on meanwhile.
  void MaybePageIn();
  // Keeps a just paged-out message in recent_paged_ too, within its bounds.
  void KeepRecentPaged(QueuedMessage m);
  void PopRecentPaged();
  void DropRecentPaged();
  // Moves recent_paged_ to the ready list when it holds the whole paged tail; whether it did.
  bool TakeRecentPaged();
  // A message just paged out is not written until the open batch is durable.
  void CountUnwrittenPaged();
  // How many of the paged messages, from the head of the tail, the store has written.
  size_t WrittenPagedCount();
  // The paged tail is gone (read back, purged, deleted): so is what tracks it.
  void EndPagedTail();
  // Reads up to `want` paged messages on the broker thread: only for a basic.get that found
  // nothing in memory (it is answered at once, and must not be answered empty).
  void PageInNow(size_t want);
  struct PagedRead {
    std::vector<storage::StoredMessage> messages;
    storage::Status status;
    bool ended = true;  // the scan found no more messages
  };
  // Reads paged messages from from_seq on until `want` of them or byte_budget of their bodies.
  static PagedRead ReadPaged(Journal& journal, uint64_t queue_id, uint64_t from_seq, size_t want,
                             uint64_t byte_budget);
  // Moves messages read back from the store into ready_.
  void TakePagedIn(const PagedRead& read, size_t want);
  void DropPaged();
  // Whether `m`, the next message to leave, may go to a consumer now (the delivery horizon);
  // when not, Dispatch resumes once the horizon is durable.
  bool MayDeliver(const QueuedMessage& m);
  void PutHorizon(uint64_t horizon);
  // About the seq of the message `ahead` places behind the head: exact within the memory window,
  // counted on from the last known seq beyond it.
  uint64_t SeqAhead(size_t ahead) const;

  std::vector<Consumer*> consumers_;
  std::vector<std::weak_ptr<PublisherFlow>> paused_publishers_;
  std::unique_ptr<Timer> flow_timer_;  // made at the first pause
  uint64_t flow_taken_at_check_ = 0;   // stats_.deliver_get() when the flow timer was armed
  MonoMillis unpaced_until_ = 0;       // a check found the consumers too slow to wait for
  size_t next_consumer_ = 0;  // round-robin cursor
  uint64_t next_seq_ = 1;
  size_t unacked_ = 0;
  MessageStats stats_;
  bool exclusive_consumer_ = false;
  bool had_consumers_ = false;
  bool dispatching_ = false;
  bool deleted_ = false;
  size_t paged_count_ = 0;      // messages in the store only: the tail of the queue
  uint64_t paged_next_seq_ = 0;  // where reading the paged tail back resumes
  // The paged messages not yet durable, by the store batch that writes them, oldest first: a
  // page-in reads the durable ones while publishers go on paging out newer ones.
  struct UnwrittenPaged {
    uint64_t ticket;
    size_t count;
  };
  std::deque<UnwrittenPaged> unwritten_paged_;
  size_t unwritten_paged_count_ = 0;
  bool page_in_waiting_ = false;
  bool page_in_running_ = false;  // a read of the paged tail is on the store's reader thread
  // Bumped whenever the paged tail changes but by a background page-in (purge, deletion, a get's
  // own read): a page-in that started before has read a stale tail and its result is dropped.
  uint64_t paged_generation_ = 0;
  // The newest paged messages, ascending and contiguous up to the newest (see kRecentPaged); only
  // for queues without QueueFeatures, whose tail has no gaps.
  std::deque<QueuedMessage> recent_paged_;
  uint64_t recent_paged_bytes_ = 0;
  bool ever_paged_ = false;  // a queue not on disk has index entries to remove when deleted
  uint64_t horizon_durable_ = 0;    // stored messages below it may be delivered
  uint64_t horizon_written_ = 0;    // the newest horizon put in a batch
  uint64_t horizon_ticket_ = 0;     // that batch
  bool horizon_waiting_ = false;
  uint64_t recovered_horizon_ = 0;  // recovery: messages below it may have been delivered
  uint64_t memory_bytes_ = 0;
  Vhost* vhost_ = nullptr;
  uint64_t route_pass_ = 0;
  struct FeaturesDeleter {
    void operator()(QueueFeatures* features) const;  // in queue_features.cc
  };
  std::unique_ptr<QueueFeatures, FeaturesDeleter> features_;
  struct StreamDeleter {
    void operator()(StreamLog* stream) const;  // in queue.cc
  };
  std::unique_ptr<StreamLog, StreamDeleter> stream_;
};

}  // namespace warren::broker
