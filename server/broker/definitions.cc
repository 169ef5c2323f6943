#include "server/broker/definitions.h"

#include <algorithm>
#include <array>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/field_table_json.h"
#include "server/broker/limits.h"
#include "server/broker/password.h"
#include "server/broker/queue_arguments.h"

namespace warren::broker {

namespace r = amqp::reply;
using nlohmann::json;

namespace {

std::unexpected<Error> Invalid(std::string text) { return Fail(r::kPreconditionFailed, std::move(text)); }

struct UserDef {
  std::string name;
  std::string hash;
  std::vector<std::string> tags;
};

// Members that are not names: passwords and permission regexes may be longer than a short string.
bool IsFreeText(std::string_view key) {
  return key == "password" || key == "password_hash" || key == "configure" || key == "write" || key == "read";
}

// A string member; `required` missing or a non-string value is an error, and so is a name longer
// than a short string (the check that the broker functions applying it make, done before anything
// changes).
Result<std::string> StringField(const json& entry, const char* key, std::string_view what, bool required) {
  auto it = entry.find(key);
  if (it == entry.end() || it->is_null()) {
    if (required) return Invalid(fmt::format("{}: missing \"{}\"", what, key));
    return std::string();
  }
  if (!it->is_string()) return Invalid(fmt::format("{}: \"{}\" must be a string", what, key));
  const std::string& value = it->get_ref<const std::string&>();
  if (!IsFreeText(key)) {
    if (auto ok = CheckNameLength(key, value); !ok) return Invalid(fmt::format("{}: {}", what, ok.error().text));
  }
  return value;
}

std::vector<std::string> SplitTags(std::string_view text) {
  std::vector<std::string> tags;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view tag = text.substr(start, comma - start);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (!tag.empty()) tags.emplace_back(tag);
    start = comma + 1;
  }
  return tags;
}

// A section that is an array of objects whose fields are all required strings: `fields(record)`
// gives the (name, destination) pairs of one record.
template <typename Record, typename Fields>
Result<std::vector<Record>> ParseRecords(const json& section, std::string_view name, Fields fields) {
  if (!section.is_array()) return Invalid(fmt::format("\"{}\" must be an array", name));
  std::vector<Record> out;
  for (size_t i = 0; i < section.size(); ++i) {
    const std::string what = fmt::format("{}[{}]", name, i);
    if (!section[i].is_object()) return Invalid(what + " must be an object");
    Record record;
    for (auto [field, destination] : fields(record)) {
      auto v = StringField(section[i], field, what, true);
      if (!v) return std::unexpected(v.error());
      *destination = std::move(*v);
    }
    out.push_back(std::move(record));
  }
  return out;
}

Result<std::vector<UserDef>> ParseUsers(const json& users) {
  std::vector<UserDef> out;
  if (!users.is_array()) return Invalid("\"users\" must be an array");
  for (size_t i = 0; i < users.size(); ++i) {
    const json& u = users[i];
    std::string what = fmt::format("users[{}]", i);
    if (!u.is_object()) return Invalid(what + " must be an object");
    auto name = StringField(u, "name", what, true);
    if (!name) return std::unexpected(name.error());
    if (name->empty()) return Invalid(what + ": empty name");
    what = fmt::format("user '{}'", *name);
    auto hash = StringField(u, "password_hash", what, false);
    if (!hash) return std::unexpected(hash.error());
    auto algorithm = StringField(u, "hashing_algorithm", what, false);
    if (!algorithm) return std::unexpected(algorithm.error());
    auto password = StringField(u, "password", what, false);
    if (!password) return std::unexpected(password.error());
    UserDef def{*name, {}, {}};
    if (!hash->empty()) {
      if (!algorithm->empty() && *algorithm != kSha256Hashing) {
        return Invalid(fmt::format("{}: unsupported hashing_algorithm '{}' (only {})", what, *algorithm,
                                   kSha256Hashing));
      }
      if (!IsValidPasswordHash(*hash)) {
        return Invalid(fmt::format("{}: password_hash is not a base64 salted SHA-256 hash", what));
      }
      def.hash = *hash;
    } else if (!password->empty()) {
      def.hash = HashPassword(*password);
    }
    if (auto tags = u.find("tags"); tags != u.end() && !tags->is_null()) {
      if (tags->is_string()) {
        def.tags = SplitTags(tags->get<std::string>());
      } else if (tags->is_array()) {
        for (const json& t : *tags) {
          if (!t.is_string()) return Invalid(what + ": \"tags\" entries must be strings");
          def.tags.push_back(t.get<std::string>());
        }
      } else {
        return Invalid(what + ": \"tags\" must be a string or an array of strings");
      }
    }
    out.push_back(std::move(def));
  }
  return out;
}


Result<bool> BoolField(const json& entry, const char* key, std::string_view what, bool fallback) {
  auto it = entry.find(key);
  if (it == entry.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string() && (*it == "true" || *it == "false")) return *it == "true";
  return Invalid(fmt::format("{}: \"{}\" must be a boolean", what, key));
}

Result<amqp::FieldTable> ArgumentsField(const json& entry, std::string_view what) {
  auto it = entry.find("arguments");
  if (it == entry.end() || it->is_null()) return amqp::FieldTable{};
  if (!it->is_object()) return Invalid(fmt::format("{}: \"arguments\" must be an object", what));
  auto t = FieldTableFromJson(*it);
  if (!t) return Invalid(fmt::format("{}: {} in \"arguments\"", what, t.error()));
  return std::move(*t);
}

struct ExchangeDef {
  std::string vhost, name;
  std::string type;
  ExchangeOptions options;
};

struct QueueDef {
  std::string vhost, name;
  QueueOptions options;
};

struct BindingDef {
  std::string vhost, source, destination;
  bool to_queue = true;
  std::string key;
  amqp::FieldTable arguments;
};

// The metadata RabbitMQ writes at the top of an export; accepted and not reported.
bool IsMetadata(std::string_view key) {
  return key == "rabbit_version" || key == "rabbitmq_version" || key == "product_name" ||
         key == "product_version";
}

}  // namespace

Result<DefinitionsSummary> LoadDefinitions(Broker& broker, std::string_view text) {
  auto parsed = ParseJson(text);
  if (!parsed) return Invalid(parsed.error());
  json doc = std::move(*parsed);
  if (!doc.is_object()) return Invalid("the top level must be a JSON object");

  DefinitionsSummary summary;
  std::vector<std::string> vhosts;
  std::vector<UserDef> users;
  std::vector<Permission> permissions;
  std::vector<TopicPermission> topic_permissions;
  std::vector<ExchangeDef> exchanges;
  std::vector<QueueDef> queues;
  std::vector<BindingDef> bindings;
  std::vector<Policy> policies;
  for (const auto& [key, value] : doc.items()) {
    if (key == "vhosts") {
      if (!value.is_array()) return Invalid("\"vhosts\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_object()) return Invalid(fmt::format("vhosts[{}] must be an object", i));
        auto name = StringField(value[i], "name", fmt::format("vhosts[{}]", i), true);
        if (!name) return std::unexpected(name.error());
        if (name->empty()) return Invalid(fmt::format("vhosts[{}]: empty name", i));
        vhosts.push_back(*name);
      }
    } else if (key == "users") {
      auto parsed = ParseUsers(value);
      if (!parsed) return std::unexpected(parsed.error());
      users = std::move(*parsed);
    } else if (key == "permissions") {
      auto parsed = ParseRecords<Permission>(value, key, [](Permission& p) {
        return std::array{std::pair{"user", &p.user}, std::pair{"vhost", &p.vhost},
                          std::pair{"configure", &p.configure}, std::pair{"write", &p.write},
                          std::pair{"read", &p.read}};
      });
      if (!parsed) return std::unexpected(parsed.error());
      permissions = std::move(*parsed);
      for (size_t i = 0; i < permissions.size(); ++i) {
        // Validate the regexes before changing anything.
        const Permission& perm = permissions[i];
        if (auto compiled = CompiledPermission::Compile(perm); !compiled) {
          return Invalid(fmt::format("permissions[{}] (user '{}', vhost '{}'): {}", i, perm.user, perm.vhost,
                                     compiled.error().text));
        }
      }
    } else if (key == "topic_permissions") {
      auto parsed = ParseRecords<TopicPermission>(value, key, [](TopicPermission& p) {
        return std::array{std::pair{"user", &p.user}, std::pair{"vhost", &p.vhost},
                          std::pair{"exchange", &p.exchange}, std::pair{"write", &p.write},
                          std::pair{"read", &p.read}};
      });
      if (!parsed) return std::unexpected(parsed.error());
      topic_permissions = std::move(*parsed);
      TopicPermissionTable scratch;  // validates the regexes
      for (size_t i = 0; i < topic_permissions.size(); ++i) {
        const TopicPermission& perm = topic_permissions[i];
        if (auto ok = scratch.Set(perm); !ok) {
          return Invalid(fmt::format("topic_permissions[{}] (user '{}', vhost '{}', exchange '{}'): {}", i,
                                     perm.user, perm.vhost, perm.exchange, ok.error().text));
        }
      }
    } else if (key == "exchanges") {
      if (!value.is_array()) return Invalid("\"exchanges\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const json& e = value[i];
        std::string what = fmt::format("exchanges[{}]", i);
        if (!e.is_object()) return Invalid(what + " must be an object");
        ExchangeDef def;
        auto name = StringField(e, "name", what, true);
        if (!name) return std::unexpected(name.error());
        auto vhost = StringField(e, "vhost", what, true);
        if (!vhost) return std::unexpected(vhost.error());
        if (name->empty()) return Invalid(what + ": empty name (the default exchange cannot be declared)");
        def.name = *name;
        def.vhost = *vhost;
        what = fmt::format("{} (exchange '{}' in vhost '{}')", what, def.name, def.vhost);
        auto type = StringField(e, "type", what, true);
        if (!type) return std::unexpected(type.error());
        def.type = *type;
        for (auto [field, out, fallback] : {std::tuple{"durable", &def.options.durable, true},
                                            std::tuple{"auto_delete", &def.options.auto_delete, false},
                                            std::tuple{"internal", &def.options.internal, false}}) {
          auto b = BoolField(e, field, what, fallback);
          if (!b) return std::unexpected(b.error());
          *out = *b;
        }
        auto args = ArgumentsField(e, what);
        if (!args) return std::unexpected(args.error());
        if (const amqp::FieldValue* ae = args->Find("alternate-exchange"); ae && !ae->AsString()) {
          return Invalid(what + ": \"alternate-exchange\" must be a string");
        }
        if (auto kind = ResolveExchangeType(def.type, *args); !kind) {
          return Invalid(fmt::format("{}: {}", what, kind.error().text));
        }
        def.options.arguments = std::move(*args);
        exchanges.push_back(std::move(def));
      }
    } else if (key == "queues") {
      if (!value.is_array()) return Invalid("\"queues\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const json& q = value[i];
        std::string what = fmt::format("queues[{}]", i);
        if (!q.is_object()) return Invalid(what + " must be an object");
        QueueDef def;
        auto name = StringField(q, "name", what, true);
        if (!name) return std::unexpected(name.error());
        auto vhost = StringField(q, "vhost", what, true);
        if (!vhost) return std::unexpected(vhost.error());
        if (name->empty()) return Invalid(what + ": empty name");
        def.name = *name;
        def.vhost = *vhost;
        what = fmt::format("{} (queue '{}' in vhost '{}')", what, def.name, def.vhost);
        for (auto [field, out, fallback] : {std::tuple{"durable", &def.options.durable, true},
                                            std::tuple{"auto_delete", &def.options.auto_delete, false}}) {
          auto b = BoolField(q, field, what, fallback);
          if (!b) return std::unexpected(b.error());
          *out = *b;
        }
        auto args = ArgumentsField(q, what);
        if (!args) return std::unexpected(args.error());
        const std::string label = fmt::format("queue '{}' in vhost '{}'", def.name, def.vhost);
        auto valid = ParseQueueArguments(*args, label);
        if (!valid) return Invalid(fmt::format("{}: {}", what, valid.error().text));
        if (auto ok = CheckQueueTypeProperties(valid->type, def.options.durable, false, def.options.auto_delete,
                                               false, label);
            !ok) {
          return Invalid(fmt::format("{}: {}", what, ok.error().text));
        }
        def.options.arguments = std::move(*args);
        queues.push_back(std::move(def));
      }
    } else if (key == "bindings") {
      if (!value.is_array()) return Invalid("\"bindings\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const json& b = value[i];
        std::string what = fmt::format("bindings[{}]", i);
        if (!b.is_object()) return Invalid(what + " must be an object");
        BindingDef def;
        for (auto [field, out] : {std::pair{"source", &def.source}, std::pair{"vhost", &def.vhost},
                                  std::pair{"destination", &def.destination}}) {
          auto v = StringField(b, field, what, true);
          if (!v) return std::unexpected(v.error());
          *out = std::move(*v);
        }
        auto key_field = StringField(b, "routing_key", what, false);
        if (!key_field) return std::unexpected(key_field.error());
        def.key = std::move(*key_field);
        auto type = StringField(b, "destination_type", what, true);
        if (!type) return std::unexpected(type.error());
        if (*type != "queue" && *type != "exchange") {
          return Invalid(fmt::format("{}: destination_type must be \"queue\" or \"exchange\", not '{}'", what, *type));
        }
        def.to_queue = *type == "queue";
        if (def.source.empty()) return Invalid(what + ": cannot bind from the default exchange");
        auto args = ArgumentsField(b, what);
        if (!args) return std::unexpected(args.error());
        def.arguments = std::move(*args);
        bindings.push_back(std::move(def));
      }
    } else if (key == "policies") {
      if (!value.is_array()) return Invalid("\"policies\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const json& p = value[i];
        const std::string what = fmt::format("policies[{}]", i);
        if (!p.is_object()) return Invalid(what + " must be an object");
        auto vhost = StringField(p, "vhost", what, true);
        if (!vhost) return std::unexpected(vhost.error());
        auto name = StringField(p, "name", what, true);
        if (!name) return std::unexpected(name.error());
        auto policy = PolicyFromJson(*vhost, *name, p);
        if (!policy) return Invalid(fmt::format("{} (policy '{}' in vhost '{}'): {}", what, *name, *vhost,
                                                policy.error().text));
        policies.push_back(std::move(*policy));
      }
    } else if (IsMetadata(key)) {
      // accepted silently
    } else if (value.is_array() && value.empty()) {
      // an empty section (policies, parameters...) has nothing to ignore
    } else {
      summary.ignored.push_back(key);
    }
  }
  auto vhost_known = [&](std::string_view v) {
    return broker.FindVhost(v) != nullptr || std::find(vhosts.begin(), vhosts.end(), v) != vhosts.end();
  };
  // Every permission must name a user and vhost that exist or are defined here.
  auto check_grant = [&](std::string_view kind, const std::string& user, const std::string& vhost) -> Result<> {
    const bool user_known = broker.FindUser(user) != nullptr ||
                            std::any_of(users.begin(), users.end(), [&](const UserDef& u) { return u.name == user; });
    if (!user_known) return Invalid(fmt::format("{} for unknown user '{}'", kind, user));
    if (!vhost_known(vhost)) return Invalid(fmt::format("{} in unknown vhost '{}'", kind, vhost));
    return {};
  };
  for (const Permission& p : permissions) {
    if (auto ok = check_grant("permission", p.user, p.vhost); !ok) return std::unexpected(ok.error());
  }
  for (const TopicPermission& p : topic_permissions) {
    if (auto ok = check_grant("topic permission", p.user, p.vhost); !ok) return std::unexpected(ok.error());
  }

  // Patterns, definitions and the per-vhost limit, against the vhost's policies as they will be.
  std::map<std::string, PolicyTable, std::less<>> policy_scratch;
  for (const Policy& p : policies) {
    const std::string what = fmt::format("policy '{}' in vhost '{}'", p.name, p.vhost);
    if (!vhost_known(p.vhost)) return Invalid(fmt::format("{}: unknown vhost '{}'", what, p.vhost));
    auto it = policy_scratch.find(p.vhost);
    if (it == policy_scratch.end()) {
      const Vhost* v = broker.FindVhost(p.vhost);
      it = policy_scratch.emplace(p.vhost, v != nullptr ? v->policies(PolicyKind::kPolicy)
                                                        : PolicyTable(PolicyKind::kPolicy)).first;
    }
    if (auto ok = it->second.Set(p); !ok) return Invalid(fmt::format("{}: {}", what, ok.error().text));
  }

  for (const ExchangeDef& e : exchanges) {
    const std::string what = fmt::format("exchange '{}' in vhost '{}'", e.name, e.vhost);
    if (!vhost_known(e.vhost)) return Invalid(fmt::format("{}: unknown vhost '{}'", what, e.vhost));
    Vhost* v = broker.FindVhost(e.vhost);
    auto it = v != nullptr ? v->exchanges().find(e.name) : decltype(v->exchanges().end()){};
    if (v != nullptr && it != v->exchanges().end()) {
      const Exchange& have = *it->second;
      if (have.type_name() != e.type || have.options().durable != e.options.durable ||
          have.options().auto_delete != e.options.auto_delete || have.options().internal != e.options.internal) {
        return Invalid(fmt::format("{}: inequivalent to the existing exchange (type {}, durable {})", what,
                                   have.type_name(), have.options().durable));
      }
    } else if (e.name.starts_with("amq.")) {
      return Invalid(fmt::format("{}: name contains reserved prefix 'amq.*'", what));
    }
  }
  for (const QueueDef& q : queues) {
    const std::string what = fmt::format("queue '{}' in vhost '{}'", q.name, q.vhost);
    if (!vhost_known(q.vhost)) return Invalid(fmt::format("{}: unknown vhost '{}'", what, q.vhost));
    Vhost* v = broker.FindVhost(q.vhost);
    auto it = v != nullptr ? v->queues().find(q.name) : decltype(v->queues().end()){};
    if (v != nullptr && it != v->queues().end()) {
      const QueueOptions& have = it->second->options();
      if (have.exclusive) return Invalid(what + ": an exclusive queue with this name exists");
      if (have.durable != q.options.durable || have.auto_delete != q.options.auto_delete) {
        return Invalid(what + ": inequivalent to the existing queue (durable/auto_delete)");
      }
    } else if (q.name.starts_with("amq.")) {
      return Invalid(fmt::format("{}: name contains reserved prefix 'amq.*'", what));
    }
  }
  auto exchange_known = [&](const std::string& vhost, const std::string& name) {
    if (Vhost* v = broker.FindVhost(vhost); v != nullptr && v->exchanges().contains(name)) return true;
    if (name.starts_with("amq.") && broker.FindVhost(vhost) == nullptr) {
      // a vhost created by this document gets the standard amq.* exchanges
      return name == "amq.direct" || name == "amq.fanout" || name == "amq.topic" || name == "amq.headers" ||
             name == "amq.match";
    }
    return std::any_of(exchanges.begin(), exchanges.end(),
                       [&](const ExchangeDef& e) { return e.vhost == vhost && e.name == name; });
  };
  auto queue_known = [&](const std::string& vhost, const std::string& name) {
    if (Vhost* v = broker.FindVhost(vhost); v != nullptr) {
      auto it = v->queues().find(name);
      if (it != v->queues().end()) return !it->second->options().exclusive;
    }
    return std::any_of(queues.begin(), queues.end(),
                       [&](const QueueDef& q) { return q.vhost == vhost && q.name == name; });
  };
  for (const BindingDef& b : bindings) {
    const std::string what = fmt::format("binding from '{}' to {} '{}' in vhost '{}'", b.source,
                                         b.to_queue ? "queue" : "exchange", b.destination, b.vhost);
    if (!vhost_known(b.vhost)) return Invalid(fmt::format("{}: unknown vhost '{}'", what, b.vhost));
    if (!exchange_known(b.vhost, b.source)) return Invalid(fmt::format("{}: unknown exchange '{}'", what, b.source));
    if (b.to_queue ? !queue_known(b.vhost, b.destination) : !exchange_known(b.vhost, b.destination)) {
      return Invalid(fmt::format("{}: unknown {} '{}'", what, b.to_queue ? "queue" : "exchange", b.destination));
    }
  }

  for (const std::string& v : vhosts) {
    if (broker.FindVhost(v) == nullptr) {
      if (auto added = broker.AddVhost(v); !added) return std::unexpected(added.error());
    }
  }
  summary.vhosts = vhosts.size();
  for (UserDef& u : users) {
    Result<> done = broker.FindUser(u.name) == nullptr ? broker.AddUser(u.name, u.hash, u.tags)
                                                       : broker.ChangePassword(u.name, u.hash);
    if (done) done = broker.SetUserTags(u.name, std::move(u.tags));
    if (!done) return std::unexpected(done.error());
  }
  summary.users = users.size();
  for (const Permission& p : permissions) {
    if (auto set = broker.SetPermissions(p.user, p.vhost, p.configure, p.write, p.read); !set) {
      return std::unexpected(set.error());
    }
  }
  summary.permissions = permissions.size();
  for (const TopicPermission& p : topic_permissions) {
    if (auto set = broker.SetTopicPermission(p); !set) return std::unexpected(set.error());
  }
  summary.topic_permissions = topic_permissions.size();
  for (Policy& p : policies) {
    Vhost* v = broker.FindVhost(p.vhost);
    if (v == nullptr) return Invalid(fmt::format("unknown vhost '{}'", p.vhost));
    if (auto ok = v->SetPolicy(PolicyKind::kPolicy, std::move(p)); !ok) return std::unexpected(ok.error());
  }
  summary.policies = policies.size();
  for (ExchangeDef& e : exchanges) {
    Vhost* v = broker.FindVhost(e.vhost);
    if (v == nullptr) return Invalid(fmt::format("unknown vhost '{}'", e.vhost));
    if (auto ok = v->DeclareExchange(e.name, e.type, false, std::move(e.options)); !ok) {
      return std::unexpected(ok.error());
    }
  }
  summary.exchanges = exchanges.size();
  for (QueueDef& q : queues) {
    Vhost* v = broker.FindVhost(q.vhost);
    if (v == nullptr) return Invalid(fmt::format("unknown vhost '{}'", q.vhost));
    if (v->queues().contains(q.name)) continue;  // kept as it is (checked equivalent above)
    if (auto ok = v->DeclareQueue(q.name, false, std::move(q.options), 0); !ok) return std::unexpected(ok.error());
  }
  summary.queues = queues.size();
  for (const BindingDef& b : bindings) {
    Vhost* v = broker.FindVhost(b.vhost);
    if (v == nullptr) return Invalid(fmt::format("unknown vhost '{}'", b.vhost));
    auto ok = b.to_queue ? v->BindQueue(b.destination, b.source, b.key, b.arguments, 0)
                         : v->BindExchange(b.destination, b.source, b.key, b.arguments);
    if (!ok) return std::unexpected(ok.error());
  }
  summary.bindings = bindings.size();
  return summary;
}

std::string ExportDefinitions(Broker& broker) {
  json users = json::array();
  for (const User& u : broker.ListUsers()) {
    users.push_back(json{{"name", u.name},
                         {"password_hash", u.password_hash},
                         {"hashing_algorithm", kSha256Hashing},
                         {"tags", u.tags},
                         {"limits", json::object()}});
  }
  json vhosts = json::array();
  json exchanges = json::array();
  json queues = json::array();
  json bindings = json::array();
  json policies = json::array();
  for (const std::string& name : broker.ListVhosts()) {
    vhosts.push_back(json{{"name", name}, {"limits", json::array()}, {"metadata", {{"description", ""}, {"tags", json::array()}}}});
    Vhost* v = broker.FindVhost(name);
    if (v == nullptr) continue;
    // As RabbitMQ 3.10: policies, not operator policies.
    for (const Policy& p : v->policies(PolicyKind::kPolicy).List()) policies.push_back(PolicyToJson(p));
    for (const auto& [qname, q] : v->queues()) {
      if (!q->on_disk()) continue;
      queues.push_back(json{{"name", qname},
                            {"vhost", name},
                            {"durable", true},
                            {"auto_delete", q->options().auto_delete},
                            {"arguments", FieldTableToJson(q->options().arguments)}});
    }
    for (const auto& [ename, e] : v->exchanges()) {
      if (ename.empty() || !e->options().durable) continue;
      if (!ename.starts_with("amq.")) {
        exchanges.push_back(json{{"name", ename},
                                 {"vhost", name},
                                 {"type", e->type_name()},
                                 {"durable", true},
                                 {"auto_delete", e->options().auto_delete},
                                 {"internal", e->options().internal},
                                 {"arguments", FieldTableToJson(e->options().arguments)}});
      }
      for (const Binding& b : e->bindings()) {
        const bool to_queue = b.destination.queue != nullptr;
        if (to_queue ? !b.destination.queue->on_disk() : !b.destination.exchange->options().durable) continue;
        bindings.push_back(json{{"source", ename},
                                {"vhost", name},
                                {"destination", to_queue ? b.destination.queue->name() : b.destination.exchange->name()},
                                {"destination_type", to_queue ? "queue" : "exchange"},
                                {"routing_key", b.key},
                                {"arguments", FieldTableToJson(b.arguments)}});
      }
    }
  }
  json permissions = json::array();
  for (const Permission& p : broker.ListPermissions()) {
    permissions.push_back(json{{"user", p.user}, {"vhost", p.vhost}, {"configure", p.configure},
                               {"write", p.write}, {"read", p.read}});
  }
  json topic_permissions = json::array();
  for (const TopicPermission& p : broker.ListTopicPermissions()) {
    topic_permissions.push_back(json{{"user", p.user}, {"vhost", p.vhost}, {"exchange", p.exchange},
                                     {"write", p.write}, {"read", p.read}});
  }
  json doc = json::object();
  doc["rabbit_version"] = "3.10.8";
  doc["rabbitmq_version"] = "3.10.8";
  doc["product_name"] = "Warren";
  doc["product_version"] = "0.1.0";
  doc["users"] = std::move(users);
  doc["vhosts"] = std::move(vhosts);
  doc["permissions"] = std::move(permissions);
  doc["topic_permissions"] = std::move(topic_permissions);
  doc["parameters"] = json::array();
  doc["global_parameters"] = json::array();
  doc["policies"] = std::move(policies);
  doc["queues"] = std::move(queues);
  doc["exchanges"] = std::move(exchanges);
  doc["bindings"] = std::move(bindings);
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace warren::broker
