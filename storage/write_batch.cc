#include "storage/write_batch.h"

#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "common/dcheck.h"
#include "proto/warren.pb.h"

namespace warren::storage {

namespace {

// rocksdb::WriteBatch records a column family by the id its handle reports; it needs nothing
// else from the handle. These stand-ins let a batch be built without the DB. Store::Open checks
// that the store's real column family ids are exactly these.
class FixedFamilyHandle final : public rocksdb::ColumnFamilyHandle {
 public:
  explicit FixedFamilyHandle(Family f) : id_(static_cast<uint32_t>(f)), name_(FamilyName(f)) {}
  const std::string& GetName() const override { return name_; }
  uint32_t GetID() const override { return id_; }
  rocksdb::Status GetDescriptor(rocksdb::ColumnFamilyDescriptor*) override {
    return rocksdb::Status::NotSupported("stand-in column family handle");
  }
  const rocksdb::Comparator* GetComparator() const override { return rocksdb::BytewiseComparator(); }

 private:
  uint32_t id_;
  std::string name_;
};

rocksdb::ColumnFamilyHandle* Handle(Family f) {
  static FixedFamilyHandle handles[kNumFamilies] = {
      FixedFamilyHandle(Family::kMeta), FixedFamilyHandle(Family::kDefinitions),
      FixedFamilyHandle(Family::kIndex), FixedFamilyHandle(Family::kBodies),
      FixedFamilyHandle(Family::kDelivery)};
  return &handles[static_cast<uint32_t>(f)];
}

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

}  // namespace

WriteBatch::WriteBatch() = default;
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

rocksdb::WriteBatch& WriteBatch::rep() {
  if (rep_ == nullptr) rep_ = std::make_unique<rocksdb::WriteBatch>();
  return *rep_;
}

size_t WriteBatch::count() const { return rep_ == nullptr ? 0 : rep_->Count(); }

size_t WriteBatch::ByteSize() const { return rep_ == nullptr ? 0 : rep_->GetDataSize(); }

void WriteBatch::PutDefinition(const std::string& key, const google::protobuf::MessageLite& record) {
  scratch_.clear();
  record.AppendToString(&scratch_);
  rep().Put(Handle(Family::kDefinitions), key, scratch_);
}

void WriteBatch::PutVhost(const proto::VhostRecord& r) { PutDefinition(VhostKey(r.name()), r); }
void WriteBatch::DeleteVhost(std::string_view name) {
  rep().Delete(Handle(Family::kDefinitions), VhostKey(name));
}
void WriteBatch::PutUser(const proto::UserRecord& r) { PutDefinition(UserKey(r.name()), r); }
void WriteBatch::DeleteUser(std::string_view name) {
  rep().Delete(Handle(Family::kDefinitions), UserKey(name));
}
void WriteBatch::PutPermission(const proto::PermissionRecord& r) {
  PutDefinition(PermissionKey(r.user(), r.vhost()), r);
}
void WriteBatch::DeletePermission(std::string_view user, std::string_view vhost) {
  rep().Delete(Handle(Family::kDefinitions), PermissionKey(user, vhost));
}
void WriteBatch::PutTopicPermission(const proto::TopicPermissionRecord& r) {
  PutDefinition(TopicPermissionKey(r.user(), r.vhost(), r.exchange()), r);
}
void WriteBatch::DeleteTopicPermission(std::string_view user, std::string_view vhost, std::string_view exchange) {
  rep().Delete(Handle(Family::kDefinitions), TopicPermissionKey(user, vhost, exchange));
}
void WriteBatch::PutPolicy(DefKind kind, const proto::PolicyRecord& r) {
  PutDefinition(PolicyKey(kind, r.vhost(), r.name()), r);
}
void WriteBatch::DeletePolicy(DefKind kind, std::string_view vhost, std::string_view name) {
  rep().Delete(Handle(Family::kDefinitions), PolicyKey(kind, vhost, name));
}
void WriteBatch::PutExchange(const proto::ExchangeRecord& r) {
  PutDefinition(ExchangeKey(r.vhost(), r.name()), r);
}
void WriteBatch::DeleteExchange(std::string_view vhost, std::string_view name) {
  rep().Delete(Handle(Family::kDefinitions), ExchangeKey(vhost, name));
}
void WriteBatch::PutQueue(const proto::QueueRecord& r) {
  WARREN_DCHECK(r.id() != 0);
  PutDefinition(QueueKey(r.vhost(), r.name()), r);
}

void WriteBatch::DeleteQueue(std::string_view vhost, std::string_view name, uint64_t queue_id) {
  rep().Delete(Handle(Family::kDefinitions), QueueKey(vhost, name));
  DeleteQueueMessages(queue_id);
}

void WriteBatch::DeleteQueueMessages(uint64_t queue_id) {
  // A range tombstone per CF instead of a delete per message: O(1) in the batch however long
  // the queue, and reads skip the whole range at once.
  std::string begin = MessageKey(queue_id, 0);
  std::string end = QueueRangeEnd(queue_id);
  rep().DeleteRange(Handle(Family::kIndex), begin, end);
  rep().DeleteRange(Handle(Family::kDelivery), begin, end);
  rep().DeleteRange(Handle(Family::kMeta), StreamSegmentKey(queue_id, 0), StreamSegmentRangeEnd(queue_id));
}

void WriteBatch::PutStreamMessage(uint64_t queue_id, uint64_t offset, int64_t timestamp, const MessageData& m) {
  scratch_.clear();
  EncodeStreamHeader(timestamp, m, &scratch_);
  PutIndexEntry(queue_id, offset, m.body);
}

void WriteBatch::PutIndexEntry(uint64_t queue_id, uint64_t seq, std::string_view body) {
  char key[kMessageKeySize];
  EncodeMessageKey(queue_id, seq, key);
  // [header][body] from two slices: the body is copied once, into the batch.
  rocksdb::Slice key_part(key, sizeof(key));
  rocksdb::Slice value_parts[2] = {ToSlice(scratch_), ToSlice(body)};
  rep().Put(Handle(Family::kIndex), rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 2));
}

void WriteBatch::PutDelayed(std::string_view key, const MessageData& m) {
  scratch_.clear();
  EncodeMessageHeader(kInlineMessage, m, &scratch_);
  rocksdb::Slice key_part = ToSlice(key);
  rocksdb::Slice value_parts[2] = {ToSlice(scratch_), ToSlice(m.body)};
  rep().Put(Handle(Family::kMeta), rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 2));
}

void WriteBatch::DeleteDelayed(std::string_view key) { rep().Delete(Handle(Family::kMeta), ToSlice(key)); }

void WriteBatch::DeleteDelayedRange(std::string_view exchange_prefix) {
  rep().DeleteRange(Handle(Family::kMeta), ToSlice(exchange_prefix), DelayedRangeEnd(exchange_prefix));
}

void WriteBatch::PutStreamSegment(uint64_t queue_id, const StreamSegment& segment) {
  rep().Put(Handle(Family::kMeta), StreamSegmentKey(queue_id, segment.first), EncodeStreamSegment(segment));
}

void WriteBatch::DeleteStreamSegment(uint64_t queue_id, const StreamSegment& segment) {
  rep().DeleteRange(Handle(Family::kIndex), MessageKey(queue_id, segment.first), MessageKey(queue_id, segment.end));
  rep().Delete(Handle(Family::kMeta), StreamSegmentKey(queue_id, segment.first));
}

void WriteBatch::PutBinding(const proto::BindingRecord& r) {
  PutDefinition(BindingKey(r.vhost(), r.source(), r.destination(), r.destination_is_exchange(),
                           r.routing_key(), r.arguments()),
                r);
}
void WriteBatch::DeleteBinding(const proto::BindingRecord& r) {
  rep().Delete(Handle(Family::kDefinitions),
              BindingKey(r.vhost(), r.source(), r.destination(), r.destination_is_exchange(),
                         r.routing_key(), r.arguments()));
}

void WriteBatch::PutMessage(uint64_t queue_id, uint64_t seq, const MessageData& m, int64_t expires) {
  scratch_.clear();
  EncodeInlineHeader(expires, m, &scratch_);
  PutIndexEntry(queue_id, seq, m.body);
}

void WriteBatch::PutBody(uint64_t body_id, const MessageData& m) {
  WARREN_DCHECK(body_id != 0);
  char key[kBodyKeySize];
  PutBigEndian64(key, body_id);
  scratch_.clear();
  EncodeMessageHeader(kSharedBody, m, &scratch_);
  rocksdb::Slice key_part(key, sizeof(key));
  rocksdb::Slice value_parts[2] = {ToSlice(scratch_), ToSlice(m.body)};
  rep().Put(Handle(Family::kBodies), rocksdb::SliceParts(&key_part, 1),
           rocksdb::SliceParts(value_parts, 2));
}

void WriteBatch::PutMessageRef(uint64_t queue_id, uint64_t seq, uint64_t body_id, int64_t expires) {
  char key[kMessageKeySize];
  EncodeMessageKey(queue_id, seq, key);
  rep().Put(Handle(Family::kIndex), rocksdb::Slice(key, sizeof(key)), EncodeBodyRef(body_id, expires));
}

void WriteBatch::DeleteBody(uint64_t body_id) {
  rep().Delete(Handle(Family::kBodies), BodyKey(body_id));
}

void WriteBatch::PutDeliveryState(uint64_t queue_id, uint64_t seq, uint32_t delivery_count,
                                  bool redelivered) {
  char key[kMessageKeySize];
  EncodeMessageKey(queue_id, seq, key);
  rep().Put(Handle(Family::kDelivery), rocksdb::Slice(key, sizeof(key)),
           EncodeDeliveryState({delivery_count, redelivered}));
}

void WriteBatch::PutDeliveryHorizon(uint64_t queue_id, uint64_t horizon) {
  char key[kMessageKeySize];
  EncodeMessageKey(queue_id, kHorizonSeq, key);
  rep().Put(Handle(Family::kDelivery), rocksdb::Slice(key, sizeof(key)), EncodeDeliveryHorizon(horizon));
}

void WriteBatch::DeleteMessage(uint64_t queue_id, uint64_t seq) {
  char key[kMessageKeySize];
  EncodeMessageKey(queue_id, seq, key);
  rocksdb::Slice k(key, sizeof(key));
  rep().SingleDelete(Handle(Family::kIndex), k);
  // Delivery state may be put several times (each requeue), so it needs a full Delete.
  rep().Delete(Handle(Family::kDelivery), k);
}

void WriteBatch::DeleteStatelessMessage(uint64_t queue_id, uint64_t seq) {
  char key[kMessageKeySize];
  EncodeMessageKey(queue_id, seq, key);
  rep().SingleDelete(Handle(Family::kIndex), rocksdb::Slice(key, sizeof(key)));
}

void WriteBatch::PutRaw(Family family, std::string_view key, std::string_view value) {
  rep().Put(Handle(family), ToSlice(key), ToSlice(value));
}

void WriteBatch::DeleteRaw(Family family, std::string_view key) {
  rep().Delete(Handle(family), ToSlice(key));
}

void WriteBatch::Quarantine(Family family, std::string_view key, std::string_view value, std::string_view reason) {
  PutRaw(Family::kMeta, QuarantineKey(family, key), EncodeQuarantineValue(reason, value));
  DeleteRaw(family, key);
}

void WriteBatch::Clear() {
  if (rep_ != nullptr) rep_->Clear();
  sync_ = true;
}

}  // namespace warren::storage
