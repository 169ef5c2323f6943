// WriteBatch: a set of updates the store applies atomically (all or none, also across a crash).
//
// Built by one thread (the broker thread), then moved into Store::Submit or Store::Write; it is
// not thread-safe and needs no Store to be built. Every Put copies its arguments into the batch
// once (a message body goes straight from the caller's buffer into the batch), so views passed
// in need only outlive the call.
//
// Deletes do not cascade: DeleteVhost does not delete the vhost's exchanges, DeleteExchange does
// not delete its bindings. The broker deletes what it deletes. The one exception is DeleteQueue,
// which also drops the queue's messages because it can do so with one range tombstone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "storage/format.h"
#include "storage/message.h"

// Only named here, so that what builds batches (the broker) does not pull in RocksDB and protobuf.
namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb
namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf
namespace warren::proto {
class BindingRecord;
class ExchangeRecord;
class PermissionRecord;
class PolicyRecord;
class QueueRecord;
class TopicPermissionRecord;
class UserRecord;
class VhostRecord;
}  // namespace warren::proto

namespace warren::storage {

class WriteBatch {
 public:
  WriteBatch();
  ~WriteBatch();
  WriteBatch(WriteBatch&&) noexcept;
  WriteBatch& operator=(WriteBatch&&) noexcept;
  // Not copyable: a copy would duplicate every body in the batch.
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // ---- Definitions (replace any record with the same identity) ----
  void PutVhost(const proto::VhostRecord& r);
  void DeleteVhost(std::string_view name);
  void PutUser(const proto::UserRecord& r);
  void DeleteUser(std::string_view name);
  void PutPermission(const proto::PermissionRecord& r);
  void DeletePermission(std::string_view user, std::string_view vhost);
  void PutTopicPermission(const proto::TopicPermissionRecord& r);
  void DeleteTopicPermission(std::string_view user, std::string_view vhost, std::string_view exchange);
  void PutExchange(const proto::ExchangeRecord& r);
  void DeleteExchange(std::string_view vhost, std::string_view name);
  // REQUIRES: r.id() != 0 and never used by another queue of this store.
  void PutQueue(const proto::QueueRecord& r);
  // Deletes the queue record and every index entry, delivery state and stream segment of queue_id. Shared bodies
  // the queue referenced stay; the caller deletes those whose last reference this was (or the
  // next Recover does).
  void DeleteQueue(std::string_view vhost, std::string_view name, uint64_t queue_id);
  // Deletes every index entry and delivery state of queue_id (a queue without a record whose
  // messages were paged out).
  void DeleteQueueMessages(uint64_t queue_id);
  // Identity: vhost, source, destination and its kind, routing key, arguments bytes.
  void PutBinding(const proto::BindingRecord& r);
  void DeleteBinding(const proto::BindingRecord& r);
  // kind: kPolicy or kOperatorPolicy.
  void PutPolicy(DefKind kind, const proto::PolicyRecord& r);
  void DeletePolicy(DefKind kind, std::string_view vhost, std::string_view name);

  // ---- Messages ----
  // A message in one queue, body inlined in its index entry (one key per message).
  // REQUIRES: (queue_id, seq) is written at most once (by PutMessage or PutMessageRef) for the
  // life of the queue: index entries are removed with RocksDB SingleDelete, which lets a put and
  // its delete cancel out in a memtable flush instead of leaving a tombstone on disk.
  // `expires`: unix milliseconds the message's TTL ends (0: none), kept across paging and restarts.
  void PutMessage(uint64_t queue_id, uint64_t seq, const MessageData& m, int64_t expires = 0);
  // A body shared by several queues, stored once. REQUIRES: body_id != 0, not reused.
  void PutBody(uint64_t body_id, const MessageData& m);
  // An index entry pointing at a body written by PutBody (in this batch or an earlier one).
  // Same REQUIRES and `expires` as PutMessage.
  void PutMessageRef(uint64_t queue_id, uint64_t seq, uint64_t body_id, int64_t expires = 0);
  // A stream entry at `offset`, appended at `timestamp` (unix milliseconds); see format.h.
  // Same REQUIRES as PutMessage.
  void PutStreamMessage(uint64_t queue_id, uint64_t offset, int64_t timestamp, const MessageData& m);
  // A stream segment's record (replaces the one with the same first offset).
  void PutStreamSegment(uint64_t queue_id, const StreamSegment& segment);
  // Retention: deletes a segment's entries (one range tombstone) and its record.
  void DeleteStreamSegment(uint64_t queue_id, const StreamSegment& segment);
  // A delayed message under `key` (format.h, DelayedKey). DeleteDelayed is a full Delete: an
  // exchange deleted and declared again may write a key of the old one again.
  void PutDelayed(std::string_view key, const MessageData& m);
  void DeleteDelayed(std::string_view key);
  // Every delayed message of one exchange (its DelayedExchangePrefix): one range tombstone.
  void DeleteDelayedRange(std::string_view exchange_prefix);
  // Deletes a shared body; the caller does so when its last index entry goes.
  void DeleteBody(uint64_t body_id);
  // Delivery state: a small record (delivery count, redelivered) kept beside an index entry;
  // never rewrites the body. The broker writes one on requeue, not on every delivery.
  void PutDeliveryState(uint64_t queue_id, uint64_t seq, uint32_t delivery_count, bool redelivered);
  // No message of the queue with seq >= horizon has been delivered (format.h, kHorizonSeq).
  void PutDeliveryHorizon(uint64_t queue_id, uint64_t horizon);
  // Removes the index entry and its delivery state (an ack). Does not delete a shared body.
  void DeleteMessage(uint64_t queue_id, uint64_t seq);
  // The same for an entry known to have no delivery state (most acks): no tombstone for it.
  void DeleteStatelessMessage(uint64_t queue_id, uint64_t seq);

  // Raw access bypassing the typed layout: for Recover's cleanup and for tests that need records
  // the typed API cannot produce (e.g. corrupt ones). Not for the broker.
  void PutRaw(Family family, std::string_view key, std::string_view value);
  void DeleteRaw(Family family, std::string_view key);
  // Moves the record `key` of `family` (whose value is `value`) to the quarantine range
  // (format.h), with the reason it was refused.
  void Quarantine(Family family, std::string_view key, std::string_view value, std::string_view reason);

  // sync (the default): when the store has sync_writes, the batch's on_done runs only after an
  // fsync made it durable. false: written to the OS only (may be lost by a power failure or
  // kill -9 of the machine, not by a crash of the process).
  void set_sync(bool sync) { sync_ = sync; }
  bool sync() const { return sync_; }
  bool empty() const { return count() == 0; }
  // Number of updates (each Put/Delete; DeleteQueue and DeleteMessage count several).
  size_t count() const;
  // Approximate encoded size in bytes, e.g. for flow control.
  size_t ByteSize() const;
  void Clear();

 private:
  friend class Store;
  void PutDefinition(const std::string& key, const google::protobuf::MessageLite& record);
  // An index entry: scratch_ holds its header, `body` follows.
  void PutIndexEntry(uint64_t queue_id, uint64_t seq, std::string_view body);

  // Made by the first update (a moved-from batch has none).
  rocksdb::WriteBatch& rep();
  std::unique_ptr<rocksdb::WriteBatch> rep_;
  std::string scratch_;  // header encoding buffer, reused so a put does not allocate
  bool sync_ = true;
};

}  // namespace warren::storage
