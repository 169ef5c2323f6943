// RabbitMQ's policies and operator policies: per vhost, a name, a pattern (a regex searched for
// in queue and exchange names), what it applies to, a priority and a definition (RabbitMQ's
// policy keys: "message-ttl", "dead-letter-exchange", ...). Of the policies matching an object
// only the one with the highest priority applies (ties: the lowest name); likewise one operator
// policy, which applies to queues only and may set only numeric limits.
//
// What a queue ends up with is decided by one function, EffectiveQueueArguments, used at
// declare, at recovery and whenever a policy changes (Vhost::ApplyPolicies). Its rule is RabbitMQ
// 3.10's (rabbit_amqqueue_process:process_args_policy, rabbit_quorum_queue, rabbit_policy):
//
//   policy vs operator policy   the smaller value of a key both set; the other keys of either
//   x-argument vs that result   message-ttl, expires, max-length, max-length-bytes,
//                               delivery-limit: the smaller; dead-letter-exchange,
//                               dead-letter-routing-key, overflow, queue-mode: the x-argument
//                               (quorum queues: overflow and expires from the policy when set)
//
// Pure data and functions; owned by its Vhost on the broker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/amqp/field_table.h"
#include "server/broker/access.h"
#include "server/broker/error.h"
#include "server/broker/queue_arguments.h"

namespace warren::broker {

// A pattern longer than this is refused: matching cost grows with it, for every declare.
inline constexpr size_t kMaxPolicyPatternBytes = 1024;
// Policies (and, apart, operator policies) per vhost: each declare searches every pattern.
inline constexpr size_t kMaxPoliciesPerVhost = 1000;

enum class PolicyApplyTo : uint8_t { kAll, kQueues, kExchanges };
std::string_view PolicyApplyToName(PolicyApplyTo apply_to);  // "all", "queues", "exchanges"
std::optional<PolicyApplyTo> ParsePolicyApplyTo(std::string_view name);

enum class PolicyKind : uint8_t { kPolicy, kOperatorPolicy };

struct Policy {
  std::string vhost;
  std::string name;
  std::string pattern;
  PolicyApplyTo apply_to = PolicyApplyTo::kAll;
  int64_t priority = 0;
  amqp::FieldTable definition;  // RabbitMQ's keys without "x-"; sorted by key
};

// RabbitMQ 3.10's validation of a definition, with its texts (without the "Validation
// failed\n\n" its API puts before them): "-1 is not a valid message TTL", "[{<<\"foo\">>,1}]
// are not recognised policy settings", "no policy provided". Values are checked in key order,
// unknown keys after. An operator policy takes only the numeric limits (kOperatorPolicyKeys).
Result<> ValidatePolicyDefinition(PolicyKind kind, const amqp::FieldTable& definition);

// A value as Erlang's ~p prints it (<<"x">>, 5, true, [1], #{<<"a">> => 1}), for error texts.
std::string ErlangTerm(const amqp::FieldValue& value);

// RabbitMQ's JSON of a policy, as its API and definitions files write it: vhost, name,
// pattern, apply-to, definition, priority.
nlohmann::json PolicyToJson(const Policy& policy);
// A policy from that JSON (`vhost` and `name` given apart: the API takes them from the URL).
// A missing pattern or definition is 502 SYNTAX_ERROR "[{key_missing,pattern}]"; a field of the
// wrong kind 406 with RabbitMQ's validation text ("priority should be a number, actually was
// <<\"x\">>", "apply-to 'x' unrecognised; should be 'queues', 'exchanges' or 'all'").
// The pattern and the definition are checked by PolicyTable::Set.
Result<Policy> PolicyFromJson(std::string vhost, std::string name, const nlohmann::json& body);

// One vhost's policies (or operator policies), patterns compiled once when set.
class PolicyTable {
 public:
  explicit PolicyTable(PolicyKind kind) : kind_(kind) {}
  PolicyKind kind() const { return kind_; }
  // Adds or replaces `policy`, checking in RabbitMQ's order its name, its pattern (406 for an
  // invalid or over-long one: "pattern should be regular expression but is invalid: ..."), its
  // definition (ValidatePolicyDefinition) and, for a new name, kMaxPoliciesPerVhost; nothing
  // changes on a refusal.
  Result<> Set(Policy policy);
  // The removed policy, or nullopt when there was none.
  std::optional<Policy> Remove(std::string_view name);
  const Policy* Find(std::string_view name) const;
  // Sorted by name.
  std::vector<Policy> List() const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // The policy that applies to the queue of `queue_type` (nullopt: the exchange) `name`: the
  // highest priority among those whose pattern occurs in it, whose apply-to covers it and that
  // PolicyAppliesTo its type, the lowest name among equals (RabbitMQ's order among equals is its
  // table's hash order).
  const Policy* Match(std::string_view name, std::optional<QueueType> queue_type) const;
  // Whether `policy`'s pattern and apply-to cover the object (priority aside).
  static bool Covers(const Policy& policy, const PermissionPattern& pattern, std::string_view name, bool queue);
  bool Covers(std::string_view policy_name, std::string_view name, bool queue) const;

 private:
  struct Entry {
    Policy policy;
    PermissionPattern pattern;
  };
  PolicyKind kind_;
  std::map<std::string, Entry, std::less<>> entries_;
};

// RabbitMQ's is_policy_applicable: a quorum queue takes no policy that has a key it cannot use
// (queue-mode, ha-*, queue-master-locator...), a stream none with a key other than its own
// (max-length-bytes, max-age, ...); the best of the others applies.
bool PolicyAppliesTo(QueueType type, const Policy& policy);

// RabbitMQ's effective_policy_definition: the policy's definition with the operator policy's
// keys merged in (the smaller value where both set one). Either may be null.
amqp::FieldTable EffectivePolicyDefinition(const Policy* policy, const Policy* operator_policy);

// The arguments a queue behaves by: `declared` (its queue.declare arguments) with the keys of
// EffectivePolicyDefinition(policy, operator_policy) resolved against them by the rule above, as
// "x-" arguments. Streams take no policy keys here (declared returned as is).
amqp::FieldTable EffectiveQueueArguments(QueueType type, const amqp::FieldTable& declared, const Policy* policy,
                                         const Policy* operator_policy);

// An exchange's alternate exchange: its `alternate-exchange` argument, else its policy's.
std::optional<std::string> EffectiveAlternateExchange(const amqp::FieldTable& declared, const Policy* policy);

}  // namespace warren::broker
