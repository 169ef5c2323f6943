#include "server/broker/recovery.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proto/warren.pb.h"
#include "storage/store.h"
#include "server/amqp/properties.h"
#include "server/broker/delayed.h"
#include "server/broker/password.h"
#include "server/broker/stream.h"

namespace warren::broker {

namespace {

using storage::Status;

bool DecodeArguments(const std::string& bytes, amqp::FieldTable* out) {
  if (bytes.empty()) return true;
  amqp::ByteReader r(bytes);
  return amqp::DecodeFieldTable(r, out) && r.empty();
}

// A record recovery cannot use: logged loudly and moved to the store's quarantine range
// (warren-dump quarantine lists it), so the broker starts with everything else.
class Quarantine {
 public:
  Quarantine(storage::Store& store, RecoveryStats* stats) : store_(store), stats_(stats) {}

  Status Definition(std::string_view key, std::string reason) {
    return Move(storage::Family::kDefinitions, key, std::move(reason));
  }
  // Records that did not even parse (Store::List*'s `unparsable`).
  Status Unparsable(std::vector<storage::QuarantinedRecord>& records) {
    for (auto& r : records) {
      if (Status s = Move(r.family, r.key, std::move(r.reason)); !s.ok()) return s;
    }
    records.clear();
    return Status::OK();
  }
  void Note(const storage::QuarantinedRecord& r) {
    spdlog::error("recovery: quarantined a {} record ({}): {}; the broker starts without it",
                  storage::FamilyName(r.family), storage::PrintableKey(r.key), r.reason);
    ++stats_->quarantined;
  }

 private:
  Status Move(storage::Family family, std::string_view key, std::string reason) {
    Note(storage::QuarantinedRecord{family, std::string(key), reason, {}});
    if (store_.read_only()) return Status::OK();
    return store_.Quarantine(family, key, reason);
  }

  storage::Store& store_;
  RecoveryStats* stats_;
};

std::string BindingKey(const proto::BindingRecord& b) {
  return storage::BindingKey(b.vhost(), b.source(), b.destination(), b.destination_is_exchange(), b.routing_key(),
                             b.arguments());
}

// Before exchanges and queues, so each is restored with the policies that apply to it.
Status RestorePolicies(storage::Store& store, Broker& broker, Quarantine& quarantine,
                       std::vector<storage::QuarantinedRecord>* unparsable) {
  for (const auto& [def, kind] : {std::pair{storage::DefKind::kPolicy, PolicyKind::kPolicy},
                                 std::pair{storage::DefKind::kOperatorPolicy, PolicyKind::kOperatorPolicy}}) {
    std::vector<proto::PolicyRecord> records;
    if (Status s = store.ListPolicies(def, &records, unparsable); !s.ok()) return s;
    for (const auto& p : records) {
      Vhost* vhost = broker.FindVhost(p.vhost());
      Policy policy{p.vhost(), p.name(), p.pattern(), PolicyApplyTo::kAll, p.priority(), {}};
      const auto apply_to = ParsePolicyApplyTo(p.apply_to());
      std::string problem;
      if (vhost == nullptr || !apply_to || !DecodeArguments(p.definition(), &policy.definition)) {
        problem = "is invalid or names a missing vhost";
      } else {
        policy.apply_to = *apply_to;
        if (auto ok = vhost->RestorePolicy(kind, std::move(policy)); !ok) problem = "is invalid: " + ok.error().text;
      }
      if (problem.empty()) continue;
      auto s = quarantine.Definition(storage::PolicyKey(def, p.vhost(), p.name()),
                                     fmt::format("policy record '{}' in vhost '{}' {}", p.name(), p.vhost(), problem));
      if (!s.ok()) return s;
    }
  }
  return Status::OK();
}

Status RestoreDefinitions(storage::Store& store, Broker& broker, Quarantine& quarantine, RecoveryStats* stats,
                          uint64_t* max_queue_id) {
  std::vector<storage::QuarantinedRecord> unparsable;
  std::vector<proto::VhostRecord> vhosts;
  if (Status s = store.ListVhosts(&vhosts, &unparsable); !s.ok()) return s;
  for (const auto& v : vhosts) broker.RestoreVhost(v.name());
  // The broker starts with "/" in memory; a store that has vhost records but not "/" had it
  // deleted. (A store without any vhost record is new: RestoreUsers creates "/".)
  if (!vhosts.empty() && std::none_of(vhosts.begin(), vhosts.end(), [](const auto& v) { return v.name() == "/"; })) {
    broker.ForgetVhost("/");
  }
  stats->vhosts = vhosts.size();
  if (Status s = RestorePolicies(store, broker, quarantine, &unparsable); !s.ok()) return s;

  std::vector<proto::ExchangeRecord> exchanges;
  if (Status s = store.ListExchanges(&exchanges, &unparsable); !s.ok()) return s;
  for (const auto& x : exchanges) {
    Vhost* vhost = broker.FindVhost(x.vhost());
    ExchangeOptions options{.durable = true, .auto_delete = x.auto_delete(), .internal = x.internal(), .arguments = {}};
    const bool decoded = DecodeArguments(x.arguments(), &options.arguments);
    auto type = ResolveExchangeType(x.type(), options.arguments);
    if (vhost == nullptr || !decoded || !type) {
      auto s = quarantine.Definition(storage::ExchangeKey(x.vhost(), x.name()),
                                     fmt::format("exchange record '{}' in vhost '{}' is invalid", x.name(), x.vhost()));
      if (!s.ok()) return s;
      continue;
    }
    options.delayed = type->delayed;
    vhost->RestoreExchange(x.name(), type->routing, std::move(options));
    ++stats->exchanges;
  }

  std::vector<proto::QueueRecord> queues;
  if (Status s = store.ListQueues(&queues, &unparsable); !s.ok()) return s;
  for (const auto& q : queues) {
    Vhost* vhost = broker.FindVhost(q.vhost());
    QueueOptions options{.durable = true, .exclusive = false, .auto_delete = q.auto_delete(), .owner_connection = 0,
                         .arguments = {}};
    // Its id stays reserved even when the record is refused: its messages are still stored under it.
    *max_queue_id = std::max<uint64_t>(*max_queue_id, q.id());
    if (vhost == nullptr || q.id() == 0 || !DecodeArguments(q.arguments(), &options.arguments)) {
      auto s = quarantine.Definition(storage::QueueKey(q.vhost(), q.name()),
                                     fmt::format("queue record '{}' in vhost '{}' is invalid", q.name(), q.vhost()));
      if (!s.ok()) return s;
      continue;
    }
    vhost->RestoreQueue(q.id(), q.name(), std::move(options));
    ++stats->queues;
  }

  std::vector<proto::BindingRecord> bindings;
  if (Status s = store.ListBindings(&bindings, &unparsable); !s.ok()) return s;
  for (const auto& b : bindings) {
    Vhost* vhost = broker.FindVhost(b.vhost());
    amqp::FieldTable args;
    Destination destination;
    Result<Exchange*> source = Fail(amqp::reply::kNotFound, "");
    if (vhost != nullptr && DecodeArguments(b.arguments(), &args)) {
      source = vhost->FindExchange(b.source());
      if (b.destination_is_exchange()) {
        if (auto x = vhost->FindExchange(b.destination())) destination.exchange = *x;
      } else if (auto it = vhost->queues().find(b.destination()); it != vhost->queues().end()) {
        destination.queue = it->second.get();
      }
    }
    if (!source || (destination.exchange == nullptr && destination.queue == nullptr)) {
      auto s = quarantine.Definition(
          BindingKey(b), fmt::format("binding from '{}' to '{}' in vhost '{}' is invalid or names a missing end",
                                     b.source(), b.destination(), b.vhost()));
      if (!s.ok()) return s;
      continue;
    }
    (*source)->Bind(Binding{destination, b.routing_key(), std::move(args)});
    ++stats->bindings;
  }
  return quarantine.Unparsable(unparsable);
}

Status RestoreUsers(storage::Store& store, Broker& broker, Quarantine& quarantine, const DefaultUser& default_user,
                    RecoveryStats* stats) {
  std::vector<storage::QuarantinedRecord> unparsable;
  std::vector<proto::UserRecord> users;
  if (Status s = store.ListUsers(&users, &unparsable); !s.ok()) return s;
  std::vector<proto::PermissionRecord> permissions;
  if (Status s = store.ListPermissions(&permissions, &unparsable); !s.ok()) return s;
  std::vector<proto::TopicPermissionRecord> topic_permissions;
  if (Status s = store.ListTopicPermissions(&topic_permissions, &unparsable); !s.ok()) return s;
  // Users that do not parse still count: a store with users is not new, whatever they hold.
  const bool had_users = !users.empty() || std::any_of(unparsable.begin(), unparsable.end(), [](const auto& r) {
    return !r.key.empty() && r.key[0] == static_cast<char>(storage::DefKind::kUser);
  });
  if (Status s = quarantine.Unparsable(unparsable); !s.ok()) return s;
  for (const auto& u : users) {
    if (!u.hashing_algorithm().empty() && u.hashing_algorithm() != kSha256Hashing) {
      auto s = quarantine.Definition(storage::UserKey(u.name()),
                                     fmt::format("user record '{}' uses unsupported hashing algorithm '{}'", u.name(),
                                                 u.hashing_algorithm()));
      if (!s.ok()) return s;
      continue;
    }
    broker.RestoreUser(User{u.name(), u.password_hash(), {u.tags().begin(), u.tags().end()}});
    ++stats->users;
  }
  for (const auto& p : permissions) {
    std::string problem;
    if (broker.FindUser(p.user()) == nullptr || broker.FindVhost(p.vhost()) == nullptr) {
      problem = "names a missing user or vhost";
    } else if (auto restored = broker.RestorePermission(Permission{p.user(), p.vhost(), p.configure(), p.write(),
                                                                   p.read()});
               !restored) {
      problem = "is invalid: " + restored.error().text;
    }
    if (problem.empty()) continue;
    auto s = quarantine.Definition(storage::PermissionKey(p.user(), p.vhost()),
                                   fmt::format("permission record of user '{}' in vhost '{}' {}", p.user(), p.vhost(),
                                               problem));
    if (!s.ok()) return s;
  }
  for (const auto& p : topic_permissions) {
    std::string problem;
    if (broker.FindUser(p.user()) == nullptr || broker.FindVhost(p.vhost()) == nullptr) {
      problem = "names a missing user or vhost";
    } else if (auto restored = broker.RestoreTopicPermission(
                   TopicPermission{p.user(), p.vhost(), p.exchange(), p.write(), p.read()});
               !restored) {
      problem = "is invalid: " + restored.error().text;
    }
    if (problem.empty()) continue;
    auto s = quarantine.Definition(storage::TopicPermissionKey(p.user(), p.vhost(), p.exchange()),
                                   fmt::format("topic permission record of user '{}' in vhost '{}' {}", p.user(),
                                               p.vhost(), problem));
    if (!s.ok()) return s;
  }
  if (had_users) return Status::OK();

  // First start: the default vhost and user, stored so that they are not re-created later.
  storage::WriteBatch batch;
  proto::VhostRecord vhost;
  vhost.set_name("/");
  batch.PutVhost(vhost);
  proto::UserRecord user;
  user.set_name(default_user.name);
  user.set_password_hash(HashPassword(default_user.password));
  user.set_hashing_algorithm(std::string(kSha256Hashing));
  user.add_tags("administrator");
  batch.PutUser(user);
  proto::PermissionRecord permission;
  permission.set_user(default_user.name);
  permission.set_vhost("/");
  permission.set_configure(".*");
  permission.set_write(".*");
  permission.set_read(".*");
  batch.PutPermission(permission);
  batch.set_sync(true);
  if (Status s = store.Write(std::move(batch)); !s.ok()) return s;
  broker.RestoreVhost("/");
  broker.RestoreUser(User{default_user.name, user.password_hash(), {"administrator"}});
  if (auto restored = broker.RestorePermission(Permission{default_user.name, "/", ".*", ".*", ".*"}); !restored) {
    return Status::Corruption(restored.error().text);
  }
  return Status::OK();
}

// The delivery horizons of this run are written with the discarded messages, before the server
// takes connections, so a queue's first deliveries need not wait for the store.
Status RestoreMessages(storage::Store& store, Broker& broker, const storage::RecoveryInfo& info,
                       RecoveryStats* stats, const RecoveryProgress& progress) {
  storage::WriteBatch writes;
  for (const std::string& vhost_name : broker.VhostNames()) {
    Vhost* vhost = broker.FindVhost(vhost_name);
    for (const auto& [name, queue] : vhost->queues()) {
      Queue& q = *queue;
      if (auto h = info.delivery_horizons.find(q.id()); h != info.delivery_horizons.end()) {
        q.set_recovered_horizon(h->second);
      }
      uint64_t scanned = 0;
      if (progress) progress(vhost_name, name, 0, stats->messages);
      if (StreamLog* stream = q.stream()) {
        // A stream's messages stay in the store; its segments say which offsets it keeps.
        std::vector<storage::StreamSegment> segments;
        if (Status s = store.ListStreamSegments(q.id(), &segments); !s.ok()) return s;
        stream->Restore(std::move(segments));
        stats->messages += stream->message_count();
        continue;
      }
      Status s = store.ScanQueue(q.id(), 0, [&](const storage::StoredMessage& m) {
        if (progress && ++scanned % kRecoveryProgressEvery == 0) progress(vhost_name, name, scanned, stats->messages);
        if (amqp::PeekDeliveryMode(m.properties) != std::optional<uint8_t>(2)) {
          writes.DeleteMessage(q.id(), m.seq);  // transient: only ever on disk because it was paged out
          ++stats->transient_discarded;
          return true;
        }
        ++stats->messages;
        if (q.memory_window_full()) {
          q.RestorePaged(m.seq);  // read back when the queue drains to it
          return true;
        }
        MessageRef msg = Message::Create(m.exchange, m.routing_key, m.properties, m.body.size(), &broker.memory());
        msg->FillBody(m.body);
        msg->set_body_id(m.body_id);
        // Anything that may have been delivered before the restart is flagged redelivered.
        q.Restore(QueuedMessage{std::move(msg), m.seq, m.delivery_count,
                                m.redelivered || m.delivery_count > 0 || q.MayHaveBeenDelivered(m.seq), true,
                                m.has_delivery_state},
                  m.expires);
        return true;
      });
      if (!s.ok()) return s;
      q.FinishRecovery(writes);
    }
  }
  if (!writes.empty()) return store.Write(std::move(writes));
  return Status::OK();
}

// The pending messages of durable x-delayed-message exchanges: each exchange's first window is
// loaded, the rest counted. Those of exchanges that no longer exist (not durable, or deleted)
// are deleted.
Status RestoreDelayed(storage::Store& store, Broker& broker, RecoveryStats* stats) {
  std::unordered_map<std::string, DelayedSchedule*> schedules;
  for (const std::string& vhost_name : broker.VhostNames()) {
    for (const auto& [name, exchange] : broker.FindVhost(vhost_name)->exchanges()) {
      if (DelayedSchedule* d = exchange->delayed()) schedules.emplace(d->prefix(), d);
    }
  }
  std::unordered_set<std::string> orphans;
  const std::string end = storage::DelayedRangeEnd(storage::kDelayedPrefix);
  Status s = store.ScanDelayed(storage::kDelayedPrefix, end,
                               [&](std::string_view key, const storage::MessageView& message) {
                                 std::string_view prefix;
                                 uint64_t due = 0, seq = 0;
                                 if (!storage::DecodeDelayedKey(key, &prefix, &due, &seq)) return true;
                                 auto it = schedules.find(std::string(prefix));
                                 if (it == schedules.end()) {
                                   orphans.emplace(prefix);
                                 } else {
                                   it->second->Restore(due, seq, message);
                                   ++stats->delayed;
                                 }
                                 return true;
                               });
  if (!s.ok()) return s;
  if (!orphans.empty()) {
    storage::WriteBatch batch;
    for (const std::string& prefix : orphans) batch.DeleteDelayedRange(prefix);
    if (Status w = store.Write(std::move(batch)); !w.ok()) return w;
  }
  for (const auto& [prefix, schedule] : schedules) schedule->Start();
  return Status::OK();
}

}  // namespace

Status RecoverBroker(storage::Store& store, Broker& broker, Persister& persister, const DefaultUser& default_user,
                     RecoveryStats* stats, const RecoveryProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t max_queue_id = 0;
  Quarantine quarantine(store, stats);
  if (Status s = RestoreDefinitions(store, broker, quarantine, stats, &max_queue_id); !s.ok()) return s;
  if (Status s = RestoreUsers(store, broker, quarantine, default_user, stats); !s.ok()) return s;
  storage::RecoveryInfo info;
  if (Status s = store.Recover(&info); !s.ok()) return s;
  for (const storage::QuarantinedRecord& r : info.quarantined) quarantine.Note(r);
  stats->orphan_bodies_removed = info.orphan_bodies_removed;
  // Messages of queues that were not durable (paged out before the restart) go with their queue.
  std::unordered_set<uint64_t> live_queues;
  for (const std::string& vhost_name : broker.VhostNames()) {
    for (const auto& [name, queue] : broker.FindVhost(vhost_name)->queues()) live_queues.insert(queue->id());
  }
  storage::WriteBatch transient_queues;
  for (uint64_t id : info.queue_ids) {
    if (live_queues.contains(id)) continue;
    transient_queues.DeleteQueueMessages(id);
    ++stats->transient_queues_discarded;
  }
  if (!transient_queues.empty()) {
    if (Status s = store.Write(std::move(transient_queues)); !s.ok()) return s;
  }
  // Ids are never reused, also those of the discarded queues (index entries are single-deleted).
  if (!info.queue_ids.empty()) max_queue_id = std::max(max_queue_id, info.queue_ids.back());
  persister.SetIdFloors(max_queue_id + 1, info.max_body_id + 1);
  for (const auto& [body_id, refs] : info.shared_body_refs) persister.AddBodyRefs(body_id, refs);
  broker.set_persister(&persister);  // before messages: queues consult its memory window
  if (Status s = RestoreMessages(store, broker, info, stats, progress); !s.ok()) return s;
  if (Status s = RestoreDelayed(store, broker, stats); !s.ok()) return s;
  stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Status::OK();
}

}  // namespace warren::broker
