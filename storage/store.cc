// Store reads: definitions, queue scans, recovery, and raw access for tools.
#include "storage/store.h"

#include <filesystem>
#include <unordered_set>

#include <rocksdb/db.h>

namespace warren::storage {

namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

std::string Hex(std::string_view s) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Releases a snapshot when the scan ends, whichever way it ends. A secondary (read-only)
// instance has no snapshots, and needs none: its contents change only in Refresh.
class ScopedSnapshot {
 public:
  ScopedSnapshot(rocksdb::DB* db, bool read_only)
      : db_(db), snap_(read_only ? nullptr : db->GetSnapshot()) {}
  ~ScopedSnapshot() {
    if (snap_ != nullptr) db_->ReleaseSnapshot(snap_);
  }
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

std::string MessageName(uint64_t queue_id, uint64_t seq) {
  return "queue " + std::to_string(queue_id) + " seq " + std::to_string(seq);
}

}  // namespace

Store::~Store() {
  StopWriter();  // its last completions may hand reads to the reader
  StopReader();
  if (db_) {
    for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
    handles_.clear();
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
  if (!secondary_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(secondary_dir_, ec);
  }
}

template <typename Record>
Status Store::ListDefinitions(DefKind kind, std::vector<Record>* out, std::vector<QuarantinedRecord>* unparsable) {
  out->clear();
  std::string lo = DefPrefix(kind), hi = DefPrefixEnd(kind);
  rocksdb::Slice lo_s(lo), hi_s(hi);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lo_s;
  ro.iterate_upper_bound = &hi_s;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kDefinitions)));
  for (it->Seek(lo_s); it->Valid(); it->Next()) {
    Record r;
    if (!r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      std::string problem = "definitions: " + Record::descriptor()->name() + " at key '" +
                            PrintableKey(ToView(it->key())) + "' does not parse";
      if (unparsable == nullptr) return Status::Corruption(problem);
      unparsable->push_back(QuarantinedRecord{Family::kDefinitions, std::string(ToView(it->key())),
                                              std::move(problem), std::string(ToView(it->value()))});
      continue;
    }
    out->push_back(std::move(r));
  }
  return Status::FromRocksDB(it->status(), "list definitions");
}

Status Store::ListVhosts(std::vector<proto::VhostRecord>* out, std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(DefKind::kVhost, out, unparsable);
}
Status Store::ListUsers(std::vector<proto::UserRecord>* out, std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(DefKind::kUser, out, unparsable);
}
Status Store::ListPermissions(std::vector<proto::PermissionRecord>* out, std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(DefKind::kPermission, out, unparsable);
}
Status Store::ListTopicPermissions(std::vector<proto::TopicPermissionRecord>* out,
                                   std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(DefKind::kTopicPermission, out, unparsable);
}
Status Store::ListExchanges(std::vector<proto::ExchangeRecord>* out, std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(DefKind::kExchange, out, unparsable);
}
Status Store::ListQueues(std::vector<proto::QueueRecord>* out, std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(DefKind::kQueue, out, unparsable);
}
Status Store::ListBindings(std::vector<proto::BindingRecord>* out, std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(DefKind::kBinding, out, unparsable);
}

Status Store::ListPolicies(DefKind kind, std::vector<proto::PolicyRecord>* out,
                           std::vector<QuarantinedRecord>* unparsable) {
  return ListDefinitions(kind, out, unparsable);
}

Status Store::Quarantine(Family family, std::string_view key, std::string_view reason) {
  std::string value;
  rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), cf(family), ToSlice(key), &value);
  if (g.IsNotFound()) return Status::NotFound("no record at key '" + PrintableKey(key) + "' to quarantine");
  if (!g.ok()) return Status::FromRocksDB(g, "read a record to quarantine");
  WriteBatch batch;
  batch.Quarantine(family, key, value, reason);
  return Write(std::move(batch));
}

Status Store::ListQuarantined(std::vector<QuarantinedRecord>* out) {
  out->clear();
  const std::string lo(kQuarantinePrefix);
  std::string hi = lo;
  hi.back() = static_cast<char>(hi.back() + 1);
  rocksdb::Slice lo_s(lo), hi_s(hi);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lo_s;
  ro.iterate_upper_bound = &hi_s;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kMeta)));
  for (it->Seek(lo_s); it->Valid(); it->Next()) {
    QuarantinedRecord r;
    std::string_view key, reason, value;
    if (!DecodeQuarantineKey(ToView(it->key()), &r.family, &key) ||
        !DecodeQuarantineValue(ToView(it->value()), &reason, &value).ok()) {
      return Status::Corruption("quarantine entry at key '" + PrintableKey(ToView(it->key())) + "' is malformed");
    }
    r.key.assign(key);
    r.reason.assign(reason);
    r.value.assign(value);
    out->push_back(std::move(r));
  }
  return Status::FromRocksDB(it->status(), "list quarantine");
}

Status Store::ListStreamSegments(uint64_t queue_id, std::vector<StreamSegment>* out) {
  out->clear();
  std::string lo = StreamSegmentKey(queue_id, 0), hi = StreamSegmentRangeEnd(queue_id);
  rocksdb::Slice lo_s(lo), hi_s(hi);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lo_s;
  ro.iterate_upper_bound = &hi_s;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kMeta)));
  for (it->Seek(lo_s); it->Valid(); it->Next()) {
    StreamSegment segment;
    uint64_t qid = 0;
    if (!DecodeStreamSegmentKey(ToView(it->key()), &qid, &segment.first) ||
        !DecodeStreamSegment(ToView(it->value()), &segment).ok() || segment.end < segment.first) {
      return Status::Corruption("stream segment record at key '" + PrintableKey(ToView(it->key())) + "' is malformed");
    }
    out->push_back(segment);
  }
  return Status::FromRocksDB(it->status(), "list stream segments");
}

Status Store::ScanDelayed(std::string_view from, std::string_view end,
                          const std::function<bool(std::string_view key, const MessageView& message)>& fn) {
  ScopedSnapshot snap(db_.get(), options_.read_only);
  rocksdb::Slice lo_s(from.data(), from.size()), hi_s(end.data(), end.size());
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  ro.iterate_lower_bound = &lo_s;
  ro.iterate_upper_bound = &hi_s;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kMeta)));
  for (it->Seek(lo_s); it->Valid(); it->Next()) {
    MessageView v;
    if (!DecodeIndexValue(ToView(it->value()), &v).ok() || v.kind != kInlineMessage) {
      return Status::Corruption("delayed message at key '" + PrintableKey(ToView(it->key())) + "' is malformed");
    }
    if (!fn(ToView(it->key()), v)) break;
  }
  return Status::FromRocksDB(it->status(), "scan delayed messages");
}

Status Store::ScanQueue(uint64_t queue_id, uint64_t from_seq,
                        const std::function<bool(const StoredMessage&)>& fn) {
  ScopedSnapshot snap(db_.get(), options_.read_only);
  std::string lo = MessageKey(queue_id, from_seq), hi = QueueRangeEnd(queue_id);
  rocksdb::Slice lo_s(lo), hi_s(hi);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  ro.iterate_lower_bound = &lo_s;
  ro.iterate_upper_bound = &hi_s;
  // A startup scan reads each block once; caching it would only evict useful blocks.
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kIndex)));
  std::unique_ptr<rocksdb::Iterator> dit(db_->NewIterator(ro, cf(Family::kDelivery)));
  rocksdb::ReadOptions get_ro;
  get_ro.snapshot = snap.get();
  rocksdb::PinnableSlice body_value;
  StoredMessage m;

  it->Seek(lo_s);
  // The delivery iterator is positioned at the first *live* index key, not at lo: acked
  // messages leave delivery-state tombstones (full Deletes, which survive flushes) at the head,
  // and a seek past them costs a lookup instead of a step over each one.
  bool dit_positioned = false;
  for (; it->Valid(); it->Next()) {
    uint64_t qid = 0, seq = 0;
    if (!DecodeMessageKey(ToView(it->key()), &qid, &seq)) {
      return Status::Corruption("message index key " + Hex(ToView(it->key())) + " has a bad size");
    }
    MessageView v;
    Status s = DecodeIndexValue(ToView(it->value()), &v);
    if (!s.ok()) return Status::Corruption(MessageName(qid, seq) + ": " + s.message());
    m.seq = seq;
    m.body_id = v.body_id;
    m.timestamp = v.timestamp;
    m.expires = v.expires;
    if (v.kind == kBodyRef) {
      body_value.Reset();
      std::string bkey = BodyKey(v.body_id);
      rocksdb::Status g = db_->Get(get_ro, cf(Family::kBodies), bkey, &body_value);
      if (g.IsNotFound()) {
        return Status::Corruption(MessageName(qid, seq) + " references missing body " +
                                  std::to_string(v.body_id));
      }
      if (!g.ok()) return Status::FromRocksDB(g, "read body " + std::to_string(v.body_id));
      s = DecodeBodyValue(ToView(body_value), &v);
      if (!s.ok()) return Status::Corruption("body " + std::to_string(m.body_id) + ": " + s.message());
    }
    m.exchange.assign(v.exchange);
    m.routing_key.assign(v.routing_key);
    m.properties.assign(v.properties);
    m.body.assign(v.body);

    // Delivery state shares the index's key space: walk both in step instead of a Get each.
    m.delivery_count = 0;
    m.redelivered = false;
    m.has_delivery_state = false;
    if (!dit_positioned) {
      dit->Seek(it->key());
      dit_positioned = true;
    }
    while (dit->Valid() && dit->key().compare(it->key()) < 0) dit->Next();
    if (dit->Valid() && dit->key() == it->key()) {
      DeliveryState d;
      s = DecodeDeliveryState(ToView(dit->value()), &d);
      if (!s.ok()) return Status::Corruption(MessageName(qid, seq) + " delivery state: " + s.message());
      m.delivery_count = d.delivery_count;
      m.redelivered = d.redelivered;
      m.has_delivery_state = true;
    }
    if (!dit->status().ok()) return Status::FromRocksDB(dit->status(), "scan delivery state");
    if (!fn(m)) return Status::OK();
  }
  return Status::FromRocksDB(it->status(), "scan queue " + std::to_string(queue_id));
}

Status Store::Recover(RecoveryInfo* info) {
  *info = RecoveryInfo();
  ScopedSnapshot snap(db_.get(), options_.read_only);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  ro.fill_cache = false;
  WriteBatch cleanup;
  auto quarantine = [&](Family family, std::string_view key, std::string_view value, std::string reason) {
    cleanup.Quarantine(family, key, value, reason);
    info->quarantined.push_back(QuarantinedRecord{family, std::string(key), std::move(reason), std::string(value)});
  };

  // Pass 1: index entries, with delivery states walked in step (same key space).
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kIndex)));
    std::unique_ptr<rocksdb::Iterator> dit(db_->NewIterator(ro, cf(Family::kDelivery)));
    it->SeekToFirst();
    dit->SeekToFirst();
    auto drop_delivery_before = [&](const rocksdb::Slice* limit) {
      for (; dit->Valid() && (limit == nullptr || dit->key().compare(*limit) < 0); dit->Next()) {
        uint64_t qid = 0, seq = 0;
        if (DecodeMessageKey(ToView(dit->key()), &qid, &seq) && seq == kHorizonSeq) {
          uint64_t horizon = 0;
          if (Status s = DecodeDeliveryHorizon(ToView(dit->value()), &horizon); !s.ok()) {
            quarantine(Family::kDelivery, ToView(dit->key()), ToView(dit->value()),
                       "queue " + std::to_string(qid) + ": " + s.message());
          } else {
            info->delivery_horizons[qid] = horizon;
          }
          continue;
        }
        cleanup.DeleteRaw(Family::kDelivery, ToView(dit->key()));
        ++info->orphan_delivery_states_removed;
      }
    };
    for (; it->Valid(); it->Next()) {
      uint64_t qid = 0, seq = 0;
      if (!DecodeMessageKey(ToView(it->key()), &qid, &seq)) {
        quarantine(Family::kIndex, ToView(it->key()), ToView(it->value()),
                   "message index key " + Hex(ToView(it->key())) + " has a bad size");
        continue;
      }
      MessageView v;
      if (Status s = DecodeIndexValue(ToView(it->value()), &v); !s.ok()) {
        quarantine(Family::kIndex, ToView(it->key()), ToView(it->value()), MessageName(qid, seq) + ": " + s.message());
        continue;
      }
      ++info->messages;
      if (info->queue_ids.empty() || info->queue_ids.back() != qid) info->queue_ids.push_back(qid);
      if (v.kind == kBodyRef) {
        ++info->shared_body_refs[v.body_id];
      }
      rocksdb::Slice key = it->key();
      drop_delivery_before(&key);
      if (dit->Valid() && dit->key() == it->key()) {
        DeliveryState d;
        if (Status s = DecodeDeliveryState(ToView(dit->value()), &d); !s.ok()) {
          quarantine(Family::kDelivery, ToView(dit->key()), ToView(dit->value()),
                     MessageName(qid, seq) + " delivery state: " + s.message());
        }
        dit->Next();
      }
    }
    if (!it->status().ok()) return Status::FromRocksDB(it->status(), "recover: scan index");
    drop_delivery_before(nullptr);
    if (!dit->status().ok()) return Status::FromRocksDB(dit->status(), "recover: scan delivery state");
  }

  // Pass 2: bodies. Present, decodable and referenced: keep; unreferenced: orphan; referenced but
  // undecodable: quarantined, and so are the index entries pointing at it (pass 3).
  std::unordered_set<uint64_t> usable;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kBodies)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t body_id = 0;
      if (!DecodeBodyKey(ToView(it->key()), &body_id)) {
        quarantine(Family::kBodies, ToView(it->key()), ToView(it->value()),
                   "body key " + Hex(ToView(it->key())) + " has a bad size");
        continue;
      }
      info->max_body_id = std::max(info->max_body_id, body_id);
      if (!info->shared_body_refs.count(body_id)) {
        cleanup.DeleteBody(body_id);
        ++info->orphan_bodies_removed;
        continue;
      }
      MessageView v;
      if (Status s = DecodeBodyValue(ToView(it->value()), &v); !s.ok()) {
        quarantine(Family::kBodies, ToView(it->key()), ToView(it->value()),
                   "body " + std::to_string(body_id) + ": " + s.message());
        continue;
      }
      usable.insert(body_id);
    }
    if (!it->status().ok()) return Status::FromRocksDB(it->status(), "recover: scan bodies");
  }

  // Pass 3 (only when a referenced body is missing or was quarantined): the entries that point
  // at one cannot be delivered; they go to quarantine too.
  if (usable.size() != info->shared_body_refs.size()) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kIndex)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t qid = 0, seq = 0;
      MessageView v;
      if (!DecodeMessageKey(ToView(it->key()), &qid, &seq) || !DecodeIndexValue(ToView(it->value()), &v).ok() ||
          v.kind != kBodyRef || usable.count(v.body_id)) {
        continue;
      }
      quarantine(Family::kIndex, ToView(it->key()), ToView(it->value()),
                 MessageName(qid, seq) + " references missing or unreadable body " + std::to_string(v.body_id));
      cleanup.DeleteRaw(Family::kDelivery, ToView(it->key()));
      --info->messages;
    }
    if (!it->status().ok()) return Status::FromRocksDB(it->status(), "recover: rescan index");
    std::erase_if(info->shared_body_refs, [&](const auto& entry) { return !usable.count(entry.first); });
  }

  if (options_.read_only || cleanup.empty()) return Status::OK();
  return Write(std::move(cleanup));
}

Status Store::ForEach(Family family,
                      const std::function<bool(std::string_view, std::string_view)>& fn) {
  ScopedSnapshot snap(db_.get(), options_.read_only);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(family)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!fn(ToView(it->key()), ToView(it->value()))) break;
  }
  return Status::FromRocksDB(it->status(), "scan " + FamilyName(family));
}

Status Store::GetIntProperty(Family family, std::string_view name, uint64_t* value) {
  if (!db_->GetIntProperty(cf(family), ToSlice(name), value)) {
    return Status::NotFound("property " + std::string(name));
  }
  return Status::OK();
}

Status Store::Refresh() {
  if (!options_.read_only) return Status::OK();
  return Status::FromRocksDB(db_->TryCatchUpWithPrimary(), "catch up with the server");
}

Status Store::CompactForTesting(Family family) {
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  return Status::FromRocksDB(db_->CompactRange(o, cf(family), nullptr, nullptr), "compact");
}

Status Store::FlushForTesting() {
  return Status::FromRocksDB(db_->Flush(rocksdb::FlushOptions(), handles_), "flush");
}

}  // namespace warren::storage
