#include "tools/dump_inspect.h"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "server/amqp/properties.h"
#include "storage/format.h"
#include "tools/dump_json.h"

namespace warren::tools {

using storage::Family;
using storage::Status;

namespace {

constexpr size_t kMaxListedProblems = 200;

std::string MessageName(uint64_t queue_id, uint64_t seq) {
  return "queue id " + std::to_string(queue_id) + " seq " + std::to_string(seq);
}

class Reporter {
 public:
  explicit Reporter(VerifyReport* r) : r_(r) {}
  void Problem(std::string msg) {
    if (r_->problems.size() < kMaxListedProblems) r_->problems.push_back(std::move(msg));
    ++r_->problem_count;
  }
  void Warning(std::string msg) {
    if (r_->warnings.size() < kMaxListedProblems) r_->warnings.push_back(std::move(msg));
  }

 private:
  VerifyReport* r_;
};

template <typename Record>
bool ParseDefinition(std::string_view key, std::string_view value, const char* kind,
                     std::string (*key_of)(const Record&), Reporter* rep, std::vector<Record>* out) {
  Record r;
  if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    rep->Problem(std::string("definitions: ") + kind + " record at key '" +
                 storage::PrintableKey(key) + "' does not parse");
    return false;
  }
  if (key_of(r) != key) {
    rep->Problem(std::string("definitions: ") + kind + " record '" + r.ShortDebugString() +
                 "' is stored under key '" + storage::PrintableKey(key) + "', not under its identity");
  }
  out->push_back(std::move(r));
  return true;
}

std::string VhostKeyOf(const proto::VhostRecord& r) { return storage::VhostKey(r.name()); }
std::string UserKeyOf(const proto::UserRecord& r) { return storage::UserKey(r.name()); }
std::string PermissionKeyOf(const proto::PermissionRecord& r) {
  return storage::PermissionKey(r.user(), r.vhost());
}
std::string TopicPermissionKeyOf(const proto::TopicPermissionRecord& r) {
  return storage::TopicPermissionKey(r.user(), r.vhost(), r.exchange());
}
std::string ExchangeKeyOf(const proto::ExchangeRecord& r) {
  return storage::ExchangeKey(r.vhost(), r.name());
}
std::string PolicyKeyOf(const proto::PolicyRecord& r) {
  return storage::PolicyKey(storage::DefKind::kPolicy, r.vhost(), r.name());
}
std::string OperatorPolicyKeyOf(const proto::PolicyRecord& r) {
  return storage::PolicyKey(storage::DefKind::kOperatorPolicy, r.vhost(), r.name());
}
std::string QueueKeyOf(const proto::QueueRecord& r) { return storage::QueueKey(r.vhost(), r.name()); }
std::string BindingKeyOf(const proto::BindingRecord& r) {
  return storage::BindingKey(r.vhost(), r.source(), r.destination(), r.destination_is_exchange(),
                             r.routing_key(), r.arguments());
}

// Definitions referring to each other: the broker loads them regardless, so only warnings.
void CheckReferences(const Definitions& d, Reporter* rep) {
  std::set<std::string> vhosts, users;
  std::set<std::pair<std::string, std::string>> exchanges, queues;
  for (const auto& v : d.vhosts) vhosts.insert(v.name());
  for (const auto& u : d.users) users.insert(u.name());
  for (const auto& e : d.exchanges) {
    exchanges.insert({e.vhost(), e.name()});
    if (!vhosts.count(e.vhost())) rep->Warning("exchange '" + e.name() + "' is in missing vhost '" + e.vhost() + "'");
    bool ok = true;
    EncodedTableToJson(e.arguments(), &ok);
    if (!ok) rep->Warning("exchange '" + e.name() + "' has undecodable arguments");
  }
  for (const auto& q : d.queues) {
    queues.insert({q.vhost(), q.name()});
    if (!vhosts.count(q.vhost())) rep->Warning("queue '" + q.name() + "' is in missing vhost '" + q.vhost() + "'");
    bool ok = true;
    EncodedTableToJson(q.arguments(), &ok);
    if (!ok) rep->Warning("queue '" + q.name() + "' has undecodable arguments");
  }
  for (const auto& p : d.permissions) {
    if (!users.count(p.user())) rep->Warning("permission for missing user '" + p.user() + "'");
    if (!vhosts.count(p.vhost())) rep->Warning("permission on missing vhost '" + p.vhost() + "'");
  }
  for (const auto& p : d.topic_permissions) {
    if (!users.count(p.user())) rep->Warning("topic permission for missing user '" + p.user() + "'");
    if (!vhosts.count(p.vhost())) rep->Warning("topic permission on missing vhost '" + p.vhost() + "'");
  }
  for (const auto& b : d.bindings) {
    std::string name = "binding " + b.source() + " -> " + b.destination() + " ('" + b.routing_key() + "')";
    // Built-in exchanges may be recreated at startup rather than stored.
    bool builtin = b.source().empty() || b.source().starts_with("amq.");
    if (!builtin && !exchanges.count({b.vhost(), b.source()})) {
      rep->Warning(name + ": source exchange missing in vhost '" + b.vhost() + "'");
    }
    bool dest_ok = b.destination_is_exchange()
                       ? (exchanges.count({b.vhost(), b.destination()}) ||
                          b.destination().starts_with("amq."))
                       : queues.count({b.vhost(), b.destination()}) > 0;
    if (!dest_ok) rep->Warning(name + ": destination missing in vhost '" + b.vhost() + "'");
  }
}

}  // namespace

Status LoadDefinitions(storage::Store* store, Definitions* out) {
  Status s;
  if (s = store->ListVhosts(&out->vhosts); !s.ok()) return s;
  if (s = store->ListUsers(&out->users); !s.ok()) return s;
  if (s = store->ListPermissions(&out->permissions); !s.ok()) return s;
  if (s = store->ListTopicPermissions(&out->topic_permissions); !s.ok()) return s;
  if (s = store->ListExchanges(&out->exchanges); !s.ok()) return s;
  if (s = store->ListQueues(&out->queues); !s.ok()) return s;
  if (s = store->ListPolicies(storage::DefKind::kPolicy, &out->policies); !s.ok()) return s;
  if (s = store->ListPolicies(storage::DefKind::kOperatorPolicy, &out->operator_policies); !s.ok()) return s;
  return store->ListBindings(&out->bindings);
}

Status CollectMessageStats(storage::Store* store, MessageStats* out) {
  *out = MessageStats();
  std::unordered_map<uint64_t, uint64_t> body_sizes;
  Status s = store->ForEach(Family::kBodies, [&](std::string_view k, std::string_view v) {
    uint64_t id = 0;
    storage::MessageView mv;
    if (storage::DecodeBodyKey(k, &id) && storage::DecodeBodyValue(v, &mv).ok()) {
      body_sizes[id] = mv.body.size();
      ++out->shared_bodies;
      out->shared_body_bytes += mv.body.size();
    }
    return true;
  });
  if (!s.ok()) return s;
  // Delivered messages are few (at most the consumers' prefetch windows), so a set of them is.
  std::set<std::pair<uint64_t, uint64_t>> delivered;
  s = store->ForEach(Family::kDelivery, [&](std::string_view k, std::string_view v) {
    uint64_t q = 0, seq = 0;
    storage::DeliveryState d;
    if (storage::DecodeMessageKey(k, &q, &seq) && seq == storage::kHorizonSeq) return true;
    ++out->delivery_states;
    if (storage::DecodeMessageKey(k, &q, &seq) && storage::DecodeDeliveryState(v, &d).ok() &&
        d.delivery_count > 0) {
      delivered.insert({q, seq});
    }
    return true;
  });
  if (!s.ok()) return s;
  return store->ForEach(Family::kIndex, [&](std::string_view k, std::string_view v) {
    uint64_t q = 0, seq = 0;
    storage::MessageView mv;
    if (!storage::DecodeMessageKey(k, &q, &seq) || !storage::DecodeIndexValue(v, &mv).ok()) {
      return true;
    }
    QueueStats& qs = out->queues[q];
    uint64_t bytes = mv.body.size();
    if (mv.kind == storage::kBodyRef) {
      auto it = body_sizes.find(mv.body_id);
      bytes = it == body_sizes.end() ? 0 : it->second;
    }
    ++qs.messages;
    qs.bytes += bytes;
    (delivered.count({q, seq}) ? qs.unacked : qs.ready) += 1;
    ++out->messages;
    out->bytes += bytes;
    return true;
  });
}

Status Verify(storage::Store* store, VerifyReport* report) {
  *report = VerifyReport();
  Reporter rep(report);

  // Definitions, raw, so that one bad record does not hide the others.
  Definitions d;
  Status s = store->ForEach(Family::kDefinitions, [&](std::string_view k, std::string_view v) {
    ++report->definitions;
    if (k.empty()) {
      rep.Problem("definitions: empty key");
      return true;
    }
    switch (static_cast<storage::DefKind>(k[0])) {
      case storage::DefKind::kVhost: ParseDefinition(k, v, "vhost", VhostKeyOf, &rep, &d.vhosts); break;
      case storage::DefKind::kUser: ParseDefinition(k, v, "user", UserKeyOf, &rep, &d.users); break;
      case storage::DefKind::kPermission:
        ParseDefinition(k, v, "permission", PermissionKeyOf, &rep, &d.permissions);
        break;
      case storage::DefKind::kTopicPermission:
        ParseDefinition(k, v, "topic permission", TopicPermissionKeyOf, &rep, &d.topic_permissions);
        break;
      case storage::DefKind::kExchange:
        ParseDefinition(k, v, "exchange", ExchangeKeyOf, &rep, &d.exchanges);
        break;
      case storage::DefKind::kQueue: ParseDefinition(k, v, "queue", QueueKeyOf, &rep, &d.queues); break;
      case storage::DefKind::kBinding:
        ParseDefinition(k, v, "binding", BindingKeyOf, &rep, &d.bindings);
        break;
      case storage::DefKind::kPolicy: ParseDefinition(k, v, "policy", PolicyKeyOf, &rep, &d.policies); break;
      case storage::DefKind::kOperatorPolicy:
        ParseDefinition(k, v, "operator policy", OperatorPolicyKeyOf, &rep, &d.operator_policies);
        break;
      default:
        rep.Problem("definitions: key '" + storage::PrintableKey(k) + "' has an unknown kind");
    }
    return true;
  });
  if (!s.ok()) return s;
  std::map<uint64_t, std::string> queue_names;  // id -> "vhost/name"
  for (const auto& q : d.queues) {
    std::string name = "'" + q.name() + "' in vhost '" + q.vhost() + "'";
    if (q.id() == 0) rep.Problem("queue " + name + " has id 0");
    auto [it, inserted] = queue_names.emplace(q.id(), name);
    if (!inserted) rep.Problem("queues " + it->second + " and " + name + " share id " + std::to_string(q.id()));
  }
  CheckReferences(d, &rep);

  // Bodies.
  std::unordered_map<uint64_t, uint32_t> body_refs;  // present bodies -> references seen
  s = store->ForEach(Family::kBodies, [&](std::string_view k, std::string_view v) {
    ++report->bodies;
    uint64_t id = 0;
    storage::MessageView mv;
    if (!storage::DecodeBodyKey(k, &id)) {
      rep.Problem("bodies: key " + Hex(k) + " has a bad size");
      return true;
    }
    body_refs.emplace(id, 0);
    if (Status ds = storage::DecodeBodyValue(v, &mv); !ds.ok()) {
      rep.Problem("body " + std::to_string(id) + ": " + ds.message());
    } else if (!amqp::ValidateProperties(mv.properties)) {
      rep.Problem("body " + std::to_string(id) + ": properties are not valid AMQP basic properties");
    }
    return true;
  });
  if (!s.ok()) return s;

  // Index entries, kept (they arrive sorted) to match delivery states against.
  std::vector<std::pair<uint64_t, uint64_t>> index_keys;
  std::map<uint64_t, uint64_t> raw_counts;         // queue id -> entries
  std::map<uint64_t, uint64_t> unknown_queue_refs;  // queue id without record -> entries
  s = store->ForEach(Family::kIndex, [&](std::string_view k, std::string_view v) {
    ++report->messages;
    uint64_t q = 0, seq = 0;
    if (!storage::DecodeMessageKey(k, &q, &seq)) {
      rep.Problem("message index: key " + Hex(k) + " has a bad size");
      return true;
    }
    index_keys.push_back({q, seq});
    ++raw_counts[q];
    if (!queue_names.count(q)) ++unknown_queue_refs[q];
    storage::MessageView mv;
    if (Status ds = storage::DecodeIndexValue(v, &mv); !ds.ok()) {
      rep.Problem(MessageName(q, seq) + ": " + ds.message());
      return true;
    }
    if (mv.kind == storage::kBodyRef) {
      auto it = body_refs.find(mv.body_id);
      if (it == body_refs.end()) {
        rep.Problem(MessageName(q, seq) + " references missing body " + std::to_string(mv.body_id));
      } else {
        ++it->second;
      }
    } else if (!amqp::ValidateProperties(mv.properties)) {
      rep.Problem(MessageName(q, seq) + ": properties are not valid AMQP basic properties");
    }
    return true;
  });
  if (!s.ok()) return s;
  for (const auto& [q, n] : unknown_queue_refs) {
    rep.Problem(std::to_string(n) + " message(s) in queue id " + std::to_string(q) +
                ", which has no queue record");
  }
  uint64_t orphans = 0;
  for (const auto& [id, refs] : body_refs) {
    if (refs == 0) {
      ++orphans;
      rep.Problem("body " + std::to_string(id) + " is referenced by no message "
                  "(the server removes it at its next start)");
    }
  }

  // Delivery states.
  s = store->ForEach(Family::kDelivery, [&](std::string_view k, std::string_view v) {
    uint64_t q = 0, seq = 0;
    if (storage::DecodeMessageKey(k, &q, &seq) && seq == storage::kHorizonSeq) {
      uint64_t horizon = 0;
      if (Status st = storage::DecodeDeliveryHorizon(v, &horizon); !st.ok()) {
        rep.Problem("queue " + std::to_string(q) + " delivery horizon: " + st.message());
      }
      return true;
    }
    ++report->delivery_states;
    if (!storage::DecodeMessageKey(k, &q, &seq)) {
      rep.Problem("delivery state: key " + Hex(k) + " has a bad size");
      return true;
    }
    storage::DeliveryState ds;
    if (Status st = storage::DecodeDeliveryState(v, &ds); !st.ok()) {
      rep.Problem(MessageName(q, seq) + " delivery state: " + st.message());
    }
    if (!std::binary_search(index_keys.begin(), index_keys.end(), std::make_pair(q, seq))) {
      rep.Problem(MessageName(q, seq) + " has a delivery state but no message");
    }
    return true;
  });
  if (!s.ok()) return s;

  // The same data seen through the store's own read paths must agree with the raw view.
  for (const auto& [q, name] : queue_names) {
    uint64_t scanned = 0;
    Status ss = store->ScanQueue(q, 0, [&](const storage::StoredMessage&) { return ++scanned, true; });
    uint64_t raw = raw_counts.count(q) ? raw_counts[q] : 0;
    if (!ss.ok()) {
      rep.Problem("scanning queue " + name + " failed: " + ss.ToString());
    } else if (scanned != raw) {
      rep.Problem("queue " + name + ": ScanQueue sees " + std::to_string(scanned) +
                  " messages, the index holds " + std::to_string(raw));
    }
  }
  storage::RecoveryInfo info;
  // On a writable store Recover would remove orphans: compare only where it merely counts.
  Status rs = store->read_only() ? store->Recover(&info) : Status::OK();
  if (!store->read_only()) {
  } else if (!rs.ok()) {
    if (report->problem_count == 0) rep.Problem("recovery would fail: " + rs.ToString());
  } else {
    if (info.messages != report->messages) {
      rep.Problem("recovery counts " + std::to_string(info.messages) + " messages, the index holds " +
                  std::to_string(report->messages));
    }
    if (info.orphan_bodies_removed != orphans) {
      rep.Problem("recovery finds " + std::to_string(info.orphan_bodies_removed) +
                  " orphan bodies, verify " + std::to_string(orphans));
    }
  }
  return Status::OK();
}

}  // namespace warren::tools
