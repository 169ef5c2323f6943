// What warren-dump computes from a store: definitions, per-queue message statistics, and the
// consistency check behind `warren-dump verify`. Reads only; works on a read-only store.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proto/warren.pb.h"
#include "storage/store.h"

namespace warren::tools {

struct Definitions {
  std::vector<proto::VhostRecord> vhosts;
  std::vector<proto::UserRecord> users;
  std::vector<proto::PermissionRecord> permissions;
  std::vector<proto::TopicPermissionRecord> topic_permissions;
  std::vector<proto::ExchangeRecord> exchanges;
  std::vector<proto::QueueRecord> queues;
  std::vector<proto::BindingRecord> bindings;
  std::vector<proto::PolicyRecord> policies, operator_policies;
};
storage::Status LoadDefinitions(storage::Store* store, Definitions* out);

struct QueueStats {
  uint64_t messages = 0;  // index entries
  uint64_t ready = 0;     // never delivered (no delivery state, or delivery count 0)
  uint64_t unacked = 0;   // delivered (delivery count > 0) and still indexed
  uint64_t bytes = 0;     // body bytes; a shared body counts once per queue referencing it
};
struct MessageStats {
  std::map<uint64_t, QueueStats> queues;  // by queue id, including ids without a queue record
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t shared_bodies = 0;
  uint64_t shared_body_bytes = 0;  // stored once each
  uint64_t delivery_states = 0;
};
// Undecodable entries are skipped here; Verify reports them.
storage::Status CollectMessageStats(storage::Store* store, MessageStats* out);

struct VerifyReport {
  std::vector<std::string> problems;  // inconsistencies in the store: verify fails
  std::vector<std::string> warnings;  // odd but loadable (e.g. a binding to a missing exchange)
  uint64_t problem_count = 0;         // problems.size() is capped; this is not
  uint64_t definitions = 0, messages = 0, bodies = 0, delivery_states = 0;
};
// Checks every record parses and its key matches it, every index entry has its body, no body
// is unreferenced, every delivery state has its message, every message belongs to a queue
// record, message properties are valid AMQP, and the counts seen through ScanQueue and Recover
// agree with the raw ones. Non-OK only when the store cannot be read at all.
storage::Status Verify(storage::Store* store, VerifyReport* report);

}  // namespace warren::tools
