#include "server/broker/policy.h"

#include <algorithm>
#include <array>
#include <initializer_list>

#include <fmt/format.h>

#include "server/broker/field_table_json.h"
#include "server/broker/limits.h"
#include "server/broker/stream.h"

namespace warren::broker {

namespace r = amqp::reply;

namespace {

std::string ErlangBinary(std::string_view s) {
  std::string out = "<<\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\">>";
}

using Check = bool (*)(const amqp::FieldValue&);

bool AnyString(const amqp::FieldValue& v) { return v.AsString() != nullptr; }
// RabbitMQ 3.10 answers 500 to a malformed one (its validator crashes); this is the 400 it means.
bool MaxAge(const amqp::FieldValue& v) { return v.AsString() != nullptr && ParseStreamInterval(*v.AsString()); }
bool NonNegative(const amqp::FieldValue& v) { return v.IsInteger() && *v.AsInt() >= 0; }
bool Positive(const amqp::FieldValue& v) { return v.IsInteger() && *v.AsInt() >= 1; }

template <const std::string_view&... kAllowed>
bool OneOf(const amqp::FieldValue& v) {
  const std::string* s = v.AsString();
  return s != nullptr && ((*s == kAllowed) || ...);
}

constexpr std::string_view kAtMostOnce = "at-most-once", kAtLeastOnce = "at-least-once";
constexpr std::string_view kDefault = "default", kLazy = "lazy";
constexpr std::string_view kDropHead = "drop-head", kRejectPublish = "reject-publish",
                           kRejectPublishDlx = "reject-publish-dlx";
constexpr std::string_view kClientLocal = "client-local", kBalanced = "balanced", kRandom = "random",
                           kLeastLeaders = "least-leaders", kMinMasters = "min-masters";
constexpr std::string_view kAll = "all", kExactly = "exactly", kNodes = "nodes";

bool QueueVersion(const amqp::FieldValue& v) { return v.IsInteger() && (*v.AsInt() == 1 || *v.AsInt() == 2); }

struct KeyRule {
  std::string_view key;
  Check valid;
  std::string_view what;  // "~p is not a valid <what>"; a leading '!' replaces "is not a valid"
  bool operator_policy;   // an operator policy may set it
};

// RabbitMQ 3.10's policy keys (rabbit_policies, rabbit_mirror_queue_misc,
// rabbit_queue_location_validator, rabbit_stream_queue), sorted by key. consumer-timeout is no
// policy key in 3.10; where a later RabbitMQ's keys are added, they go here.
constexpr std::array kKeyRules = {
    KeyRule{"alternate-exchange", AnyString, "alternate exchange name", false},
    KeyRule{"dead-letter-exchange", AnyString, "dead letter exchange name", false},
    KeyRule{"dead-letter-routing-key", AnyString, "dead letter routing key", false},
    KeyRule{"dead-letter-strategy", OneOf<kAtMostOnce, kAtLeastOnce>, "dead letter strategy", false},
    KeyRule{"delivery-limit", NonNegative, "delivery limit", true},
    KeyRule{"expires", Positive, "queue expiry", true},
    KeyRule{"ha-mode", OneOf<kAll, kExactly, kNodes>, "ha-mode value", false},
    KeyRule{"ha-params", nullptr, "", false},
    KeyRule{"ha-promote-on-failure", nullptr, "", false},
    KeyRule{"ha-promote-on-shutdown", nullptr, "", false},
    KeyRule{"ha-sync-batch-size", nullptr, "", false},
    KeyRule{"ha-sync-mode", nullptr, "", false},
    KeyRule{"initial-cluster-size", NonNegative, "cluster size", false},
    KeyRule{"max-age", MaxAge, "max age", false},
    KeyRule{"max-in-memory-bytes", NonNegative, "maximum memory in bytes", true},
    // RabbitMQ 3.10 words this one as max-in-memory-bytes.
    KeyRule{"max-in-memory-length", NonNegative, "maximum memory in bytes", true},
    KeyRule{"max-length", NonNegative, "maximum length", true},
    KeyRule{"max-length-bytes", NonNegative, "maximum length in bytes", true},
    KeyRule{"message-ttl", NonNegative, "message TTL", true},
    KeyRule{"overflow", OneOf<kDropHead, kRejectPublish, kRejectPublishDlx>, "overflow value", false},
    KeyRule{"queue-leader-locator", OneOf<kClientLocal, kBalanced, kRandom, kLeastLeaders>,
            "queue leader locator value", false},
    KeyRule{"queue-master-locator", OneOf<kMinMasters, kClientLocal, kRandom>, "!invalid queue-master-locator value",
            false},
    KeyRule{"queue-mode", OneOf<kDefault, kLazy>, "queue-mode value", false},
    KeyRule{"queue-version", QueueVersion, "queue-version value", false},
    KeyRule{"stream-max-segment-size-bytes", NonNegative, "segment size", false},
};

const KeyRule* FindRule(std::string_view key) {
  for (const KeyRule& rule : kKeyRules) {
    if (rule.key == key) return &rule;
  }
  return nullptr;
}

std::unexpected<Error> Invalid(std::string text) { return Fail(r::kPreconditionFailed, std::move(text)); }

// RabbitMQ's rabbit_mirror_queue_misc:validate_policy, the parts that do not need a cluster.
Result<> CheckMirroring(const amqp::FieldTable& d) {
  const amqp::FieldValue* mode = d.Find("ha-mode");
  if (mode == nullptr) {
    for (std::string_view key : {"ha-params", "ha-sync-mode", "ha-promote-on-shutdown"}) {
      if (d.Find(key) != nullptr) {
        return Invalid("ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown");
      }
    }
    return {};
  }
  const amqp::FieldValue* params = d.Find("ha-params");
  const std::string& m = *mode->AsString();
  auto given = [&] { return params == nullptr ? std::string("none") : ErlangTerm(*params); };
  if (m == "exactly" && (params == nullptr || !Positive(*params))) {
    return Invalid(fmt::format("ha-mode=\"exactly\" takes an integer, {} given", given()));
  }
  if (m == "nodes" && (params == nullptr || params->AsArray() == nullptr)) {
    return Invalid(fmt::format("ha-mode=\"nodes\" takes a list, {} given", given()));
  }
  if (m == "all" && params != nullptr) return Invalid("ha-mode=\"all\" does not take parameters");
  if (const amqp::FieldValue* v = d.Find("ha-sync-batch-size"); v != nullptr && !Positive(*v)) {
    return Invalid(fmt::format("ha-sync-batch-size takes an integer greater than 0, {} given", ErlangTerm(*v)));
  }
  const struct {
    std::string_view key, first, second;
  } kChoices[] = {{"ha-sync-mode", "manual", "automatic"},
                  {"ha-promote-on-shutdown", "always", "when-synced"},
                  {"ha-promote-on-failure", "always", "when-synced"}};
  for (const auto& [key, first, second] : kChoices) {
    const amqp::FieldValue* v = d.Find(key);
    if (v == nullptr) continue;
    const std::string* s = v->AsString();
    if (s == nullptr || (*s != first && *s != second)) {
      return Invalid(fmt::format("{} must be \"{}\" or \"{}\", got {}", key, first, second, ErlangTerm(*v)));
    }
  }
  return {};
}

std::optional<int64_t> IntValue(const amqp::FieldTable& t, std::string_view key) {
  const amqp::FieldValue* v = t.Find(key);
  if (v == nullptr || !v->IsInteger()) return std::nullopt;
  return v->AsInt();
}

// How an x-argument and the policy's value for the same key combine.
enum class Resolve : uint8_t { kSmaller, kArgument, kPolicy };

Resolve ResolveFor(QueueType type, std::string_view key) {
  if (key == "message-ttl" || key == "max-length" || key == "max-length-bytes" || key == "delivery-limit") {
    return Resolve::kSmaller;
  }
  if (key == "expires") return type == QueueType::kQuorum ? Resolve::kPolicy : Resolve::kSmaller;
  if (key == "overflow" && type == QueueType::kQuorum) return Resolve::kPolicy;
  return Resolve::kArgument;
}

// The policy keys that become queue arguments (the others have no queue-side effect here).
constexpr std::array<std::string_view, 9> kQueueKeys = {
    "message-ttl", "expires", "max-length", "max-length-bytes", "overflow", "dead-letter-exchange",
    "dead-letter-routing-key", "delivery-limit", "queue-mode"};

}  // namespace

std::string ErlangTerm(const amqp::FieldValue& value) {
  if (const std::string* s = value.AsString()) return ErlangBinary(*s);
  if (auto b = value.AsBool()) return *b ? "true" : "false";
  if (auto n = value.AsInt(); n && value.IsInteger()) return std::to_string(*n);
  if (const auto* d = std::get_if<double>(&value.v)) return fmt::format("{}", *d);
  if (const auto* f = std::get_if<float>(&value.v)) return fmt::format("{}", *f);
  if (const amqp::FieldArray* a = value.AsArray()) {
    std::string out = "[";
    for (size_t i = 0; i < a->size(); ++i) out += (i ? "," : "") + ErlangTerm((*a)[i]);
    return out + "]";
  }
  if (const amqp::FieldTable* t = value.AsTable()) {
    std::string out = "#{";
    for (size_t i = 0; i < t->entries.size(); ++i) {
      out += (i ? "," : "") + ErlangBinary(t->entries[i].first) + " => " + ErlangTerm(t->entries[i].second);
    }
    return out + "}";
  }
  return "null";
}

std::string_view PolicyApplyToName(PolicyApplyTo apply_to) {
  switch (apply_to) {
    case PolicyApplyTo::kQueues: return "queues";
    case PolicyApplyTo::kExchanges: return "exchanges";
    case PolicyApplyTo::kAll: break;
  }
  return "all";
}

std::optional<PolicyApplyTo> ParsePolicyApplyTo(std::string_view name) {
  if (name == "all") return PolicyApplyTo::kAll;
  if (name == "queues") return PolicyApplyTo::kQueues;
  if (name == "exchanges") return PolicyApplyTo::kExchanges;
  return std::nullopt;
}

Result<> ValidatePolicyDefinition(PolicyKind kind, const amqp::FieldTable& definition) {
  if (definition.empty()) return Invalid("no policy provided");
  std::vector<const std::pair<std::string, amqp::FieldValue>*> sorted;
  for (const auto& entry : definition.entries) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<const std::pair<std::string, amqp::FieldValue>*> unknown;
  for (const auto* entry : sorted) {
    const KeyRule* rule = FindRule(entry->first);
    if (rule == nullptr || (kind == PolicyKind::kOperatorPolicy && !rule->operator_policy)) {
      unknown.push_back(entry);
      continue;
    }
    if (rule->valid == nullptr || rule->valid(entry->second)) continue;
    const std::string term = ErlangTerm(entry->second);
    if (rule->what.starts_with('!')) return Invalid(fmt::format("{} {}", term, rule->what.substr(1)));
    return Invalid(fmt::format("{} is not a valid {}", term, rule->what));
  }
  if (!unknown.empty()) {
    std::string list;
    for (const auto* entry : unknown) {
      list += fmt::format("{}{{{},{}}}", list.empty() ? "" : ",", ErlangBinary(entry->first), ErlangTerm(entry->second));
    }
    return Invalid(fmt::format("[{}] are not recognised policy settings", list));
  }
  if (kind == PolicyKind::kPolicy) return CheckMirroring(definition);
  return {};
}

nlohmann::json PolicyToJson(const Policy& policy) {
  return nlohmann::json{{"vhost", policy.vhost},
                        {"name", policy.name},
                        {"pattern", policy.pattern},
                        {"apply-to", std::string(PolicyApplyToName(policy.apply_to))},
                        {"definition", FieldTableToJson(policy.definition)},
                        {"priority", policy.priority}};
}

Result<Policy> PolicyFromJson(std::string vhost, std::string name, const nlohmann::json& body) {
  for (const char* key : {"pattern", "definition"}) {
    if (!body.contains(key)) return Fail(r::kSyntaxError, fmt::format("[{{key_missing,{}}}]", key));
  }
  Policy policy{std::move(vhost), std::move(name), {}, PolicyApplyTo::kAll, 0, {}};
  if (auto it = body.find("priority"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) {
      std::string shown = it->is_string() ? ErlangBinary(it->get<std::string>()) : it->dump();
      return Invalid(fmt::format("priority should be {}, actually was {}",
                                 it->is_number() ? "an integer" : "a number", shown));
    }
    policy.priority = it->get<int64_t>();
  }
  const nlohmann::json& pattern = body["pattern"];
  if (!pattern.is_string()) return Invalid(fmt::format("pattern should be a binary but was {}", pattern.dump()));
  policy.pattern = pattern.get<std::string>();
  if (auto it = body.find("apply-to"); it != body.end() && !it->is_null()) {
    const std::string given = it->is_string() ? it->get<std::string>() : it->dump();
    auto apply_to = ParsePolicyApplyTo(given);
    if (!it->is_string() || !apply_to) {
      return Invalid(fmt::format("apply-to '{}' unrecognised; should be 'queues', 'exchanges' or 'all'", given));
    }
    policy.apply_to = *apply_to;
  }
  const nlohmann::json& definition = body["definition"];
  if (!definition.is_object()) return Invalid("definition should be a JSON object");
  auto table = FieldTableFromJson(definition);
  if (!table) return Invalid(table.error());
  policy.definition = std::move(*table);
  return policy;
}

Result<> PolicyTable::Set(Policy policy) {
  if (auto ok = CheckNameLength("name", policy.name); !ok) return ok;
  if (policy.pattern.size() > kMaxPolicyPatternBytes) {
    return Invalid(fmt::format("pattern should be at most {} bytes, actually was {}", kMaxPolicyPatternBytes,
                               policy.pattern.size()));
  }
  // An empty regex occurs in every name (PermissionPattern gives "" another meaning).
  auto pattern = PermissionPattern::Compile(policy.pattern.empty() ? std::string_view(".*") : policy.pattern);
  if (!pattern) return Invalid("pattern should be regular expression but is invalid: " + pattern.error().text);
  if (auto ok = ValidatePolicyDefinition(kind_, policy.definition); !ok) return ok;
  if (!entries_.contains(policy.name) && entries_.size() >= kMaxPoliciesPerVhost) {
    return Invalid(fmt::format("vhost '{}' has {} policies of this kind already, the most it may have",
                               policy.vhost, kMaxPoliciesPerVhost));
  }
  std::string name = policy.name;
  entries_.insert_or_assign(std::move(name), Entry{std::move(policy), std::move(*pattern)});
  return {};
}

std::optional<Policy> PolicyTable::Remove(std::string_view name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  Policy removed = std::move(it->second.policy);
  entries_.erase(it);
  return removed;
}

const Policy* PolicyTable::Find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.policy;
}

std::vector<Policy> PolicyTable::List() const {
  std::vector<Policy> out;
  out.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) out.push_back(entry.policy);
  return out;
}

bool PolicyTable::Covers(const Policy& policy, const PermissionPattern& pattern, std::string_view name, bool queue) {
  if (policy.apply_to == (queue ? PolicyApplyTo::kExchanges : PolicyApplyTo::kQueues)) return false;
  return pattern.Matches(name);
}

bool PolicyTable::Covers(std::string_view policy_name, std::string_view name, bool queue) const {
  auto it = entries_.find(policy_name);
  return it != entries_.end() && Covers(it->second.policy, it->second.pattern, name, queue);
}

const Policy* PolicyTable::Match(std::string_view name, std::optional<QueueType> queue_type) const {
  const Policy* best = nullptr;
  // In name order, so the first of equal priority stays.
  for (const auto& [policy_name, entry] : entries_) {
    if (best != nullptr && entry.policy.priority <= best->priority) continue;
    if (!Covers(entry.policy, entry.pattern, name, queue_type.has_value())) continue;
    if (queue_type && !PolicyAppliesTo(*queue_type, entry.policy)) continue;
    best = &entry.policy;
  }
  return best;
}

bool PolicyAppliesTo(QueueType type, const Policy& policy) {
  static constexpr std::array<std::string_view, 9> kNotForQuorum = {
      "max-priority", "queue-mode", "single-active-consumer", "ha-mode", "ha-params", "ha-sync-mode",
      "ha-promote-on-shutdown", "ha-promote-on-failure", "queue-master-locator"};
  static constexpr std::array<std::string_view, 5> kForStreams = {
      "max-length-bytes", "max-age", "stream-max-segment-size-bytes", "queue-leader-locator", "initial-cluster-size"};
  for (const auto& [key, value] : policy.definition.entries) {
    if (type == QueueType::kQuorum && std::find(kNotForQuorum.begin(), kNotForQuorum.end(), key) != kNotForQuorum.end()) {
      return false;
    }
    if (type == QueueType::kStream && std::find(kForStreams.begin(), kForStreams.end(), key) == kForStreams.end()) {
      return false;
    }
  }
  return true;
}

amqp::FieldTable EffectivePolicyDefinition(const Policy* policy, const Policy* operator_policy) {
  amqp::FieldTable out;
  if (policy != nullptr) out = policy->definition;
  if (operator_policy == nullptr) return out;
  for (const auto& [key, value] : operator_policy->definition.entries) {
    auto it = std::find_if(out.entries.begin(), out.entries.end(), [&](const auto& e) { return e.first == key; });
    if (it == out.entries.end()) {
      out.entries.emplace_back(key, value);
      continue;
    }
    const std::optional<int64_t> have = IntValue(out, key), op = value.AsInt();
    if (!have || (op && *op < *have)) it->second = value;
  }
  std::sort(out.entries.begin(), out.entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

namespace {

// A stream's retention keys: the smaller of the argument and the policy's value, as
// rabbit_stream_queue resolves them (max-age compared as a duration).
amqp::FieldTable EffectiveStreamArguments(const amqp::FieldTable& declared, const amqp::FieldTable& from_policies) {
  amqp::FieldTable out = declared;
  auto size_of = [](const amqp::FieldValue& v, bool age) -> std::optional<int64_t> {
    if (!age) return v.IsInteger() ? v.AsInt() : std::nullopt;
    return v.AsString() != nullptr ? ParseStreamInterval(*v.AsString()) : std::nullopt;
  };
  for (std::string_view key : {"max-length-bytes", "max-age", "stream-max-segment-size-bytes"}) {
    const amqp::FieldValue* value = from_policies.Find(key);
    if (value == nullptr) continue;
    const bool age = key == "max-age";
    const std::string arg = fmt::format("x-{}", key);
    auto it = std::find_if(out.entries.begin(), out.entries.end(), [&](const auto& e) { return e.first == arg; });
    if (it == out.entries.end()) {
      out.entries.emplace_back(arg, *value);
      continue;
    }
    const std::optional<int64_t> have = size_of(it->second, age), given = size_of(*value, age);
    if (given && (!have || *given < *have)) it->second = *value;
  }
  return out;
}

}  // namespace

amqp::FieldTable EffectiveQueueArguments(QueueType type, const amqp::FieldTable& declared, const Policy* policy,
                                         const Policy* operator_policy) {
  if (policy == nullptr && operator_policy == nullptr) return declared;
  const amqp::FieldTable from_policies = EffectivePolicyDefinition(policy, operator_policy);
  if (type == QueueType::kStream) return EffectiveStreamArguments(declared, from_policies);
  amqp::FieldTable out = declared;
  for (std::string_view key : kQueueKeys) {
    const amqp::FieldValue* value = from_policies.Find(key);
    if (value == nullptr) continue;
    const std::string arg = fmt::format("x-{}", key);
    auto it = std::find_if(out.entries.begin(), out.entries.end(), [&](const auto& e) { return e.first == arg; });
    if (it == out.entries.end()) {
      out.entries.emplace_back(arg, *value);
      continue;
    }
    switch (ResolveFor(type, key)) {
      case Resolve::kArgument: break;
      case Resolve::kPolicy: it->second = *value; break;
      case Resolve::kSmaller: {
        const std::optional<int64_t> have = it->second.IsInteger() ? it->second.AsInt() : std::nullopt;
        const std::optional<int64_t> given = value->AsInt();
        if (given && (!have || *given < *have)) it->second = *value;
        break;
      }
    }
  }
  return out;
}

std::optional<std::string> EffectiveAlternateExchange(const amqp::FieldTable& declared, const Policy* policy) {
  if (const amqp::FieldValue* v = declared.Find("alternate-exchange"); v != nullptr && v->AsString() != nullptr) {
    return *v->AsString();
  }
  if (policy == nullptr) return std::nullopt;
  if (const amqp::FieldValue* v = policy->definition.Find("alternate-exchange"); v != nullptr && v->AsString()) {
    return *v->AsString();
  }
  return std::nullopt;
}

}  // namespace warren::broker
