#include "server/broker/vhost.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "server/broker/delayed.h"
#include "server/broker/headers_match.h"
#include "server/broker/limits.h"
#include "server/broker/persister.h"
#include "server/broker/queue_arguments.h"
#include "server/broker/queue_features.h"
#include "server/broker/stream.h"
#include "proto/warren.pb.h"

namespace warren::broker {

namespace r = amqp::reply;

namespace {

std::string_view BoolName(bool b) { return b ? "true" : "false"; }

bool HasReservedPrefix(std::string_view name) { return name.starts_with("amq."); }

// A field value as RabbitMQ's inequivalence texts print it: integers in decimal, strings raw.
std::string ArgText(const amqp::FieldValue& v) {
  if (auto n = v.AsInt()) return std::to_string(*n);
  if (const std::string* s = v.AsString()) return *s;
  if (auto b = v.AsBool()) return std::string(BoolName(*b));
  return std::string(FieldTypeName(v));
}

// RabbitMQ's rabbit_misc:assert_args_equivalence text for argument `key` (null: absent).
std::string InequivalentArg(std::string_view key, std::string_view label, const amqp::FieldValue* received,
                            const amqp::FieldValue* current) {
  if (received != nullptr && current != nullptr) {
    return fmt::format("inequivalent arg '{}' for {}: received '{}' but current is '{}'", key, label,
                       ArgText(*received), ArgText(*current));
  }
  auto value = [](const amqp::FieldValue* v) {
    return v == nullptr ? std::string("none")
                        : fmt::format("the value '{}' of type '{}'", ArgText(*v), FieldTypeName(*v));
  };
  return fmt::format("inequivalent arg '{}' for {}: received {} but current is {}", key, label, value(received),
                     value(current));
}

}  // namespace

std::string GenerateName(std::string_view prefix) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // From a CSPRNG (OpenSSL's, as the password salts): reply-to names are capabilities, and queue
  // and consumer names must not be predictable from earlier ones either.
  std::array<unsigned char, 22> random;
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    // Only when OpenSSL cannot seed its generator from the kernel: nothing safe to fall back to.
    spdlog::critical("RAND_bytes failed: no random source for names");
    std::abort();
  }
  std::string out(prefix);
  for (unsigned char byte : random) out.push_back(kAlphabet[byte & 63]);
  return out;
}

namespace {

std::string EncodeArguments(const amqp::FieldTable& table) {
  std::string out;
  amqp::ByteWriter w(out);
  amqp::EncodeFieldTable(table, w);
  return out;
}

}  // namespace

Vhost::Vhost(std::string name) : name_(std::move(name)) {
  ExchangeOptions durable;
  durable.durable = true;
  default_exchange_ = AddExchange("", ExchangeType::kDirect, durable);
  AddExchange("amq.direct", ExchangeType::kDirect, durable);
  AddExchange("amq.fanout", ExchangeType::kFanout, durable);
  AddExchange("amq.topic", ExchangeType::kTopic, durable);
  AddExchange("amq.headers", ExchangeType::kHeaders, durable);
  AddExchange("amq.match", ExchangeType::kHeaders, durable);
}

void Vhost::set_persister(Persister* persister) {
  persister_ = persister;
  for (auto& [name, q] : queues_) q->set_persister(persister);
}

Exchange* Vhost::RestoreExchange(std::string name, ExchangeType type, ExchangeOptions options) {
  auto it = exchanges_.find(name);
  if (it != exchanges_.end()) return it->second.get();  // a built-in one
  Exchange* restored = AddExchange(std::move(name), type, std::move(options));
  ApplyPolicies(*restored);
  return restored;
}

std::shared_ptr<Queue> Vhost::RestoreQueue(uint64_t id, std::string name, QueueOptions options) {
  auto q = std::make_shared<Queue>(id, name, std::move(options), persister_);
  q->set_vhost(this);
  ApplyPolicies(*q);
  queues_[std::move(name)] = q;
  return q;
}

void Vhost::ApplyPolicies(Queue& queue) {
  const Policy* policy = policies_.Match(queue.name(), queue.type());
  const Policy* operator_policy = operator_policies_.Match(queue.name(), queue.type());
  queue.ApplyPolicies(policy != nullptr ? policy->name : std::string(),
                      operator_policy != nullptr ? operator_policy->name : std::string(),
                      EffectiveQueueArguments(queue.type(), queue.options().arguments, policy, operator_policy));
}

void Vhost::ApplyPolicies(Exchange& exchange) {
  if (exchange.name().empty()) return;  // the default exchange routes by queue name only
  exchange.ApplyPolicy(policies_.Match(exchange.name(), std::nullopt));
}

void Vhost::ReapplyPolicy(PolicyKind kind, const std::string& name) {
  const PolicyTable& table = policies(kind);
  // Only objects the policy covers now, or that had it, can change: one pattern search each,
  // then a full match for those.
  for (const auto& [queue_name, q] : queues_) {
    const std::string& had = kind == PolicyKind::kPolicy ? q->policy() : q->operator_policy();
    if (had == name || table.Covers(name, queue_name, /*queue=*/true)) ApplyPolicies(*q);
  }
  if (kind != PolicyKind::kPolicy) return;
  for (const auto& [exchange_name, e] : exchanges_) {
    if (e->policy() == name || table.Covers(name, exchange_name, /*queue=*/false)) ApplyPolicies(*e);
  }
}

void Vhost::JournalPolicy(PolicyKind kind, const Policy& policy, bool add) {
  if (persister_ == nullptr || !persister_->enabled()) return;
  const storage::DefKind def = kind == PolicyKind::kPolicy ? storage::DefKind::kPolicy : storage::DefKind::kOperatorPolicy;
  if (!add) {
    persister_->batch().DeletePolicy(def, name_, policy.name);
    return;
  }
  proto::PolicyRecord record;
  record.set_vhost(name_);
  record.set_name(policy.name);
  record.set_pattern(policy.pattern);
  record.set_apply_to(std::string(PolicyApplyToName(policy.apply_to)));
  record.set_priority(policy.priority);
  record.set_definition(EncodeArguments(policy.definition));
  persister_->batch().PutPolicy(def, record);
}

Result<> Vhost::RestorePolicy(PolicyKind kind, Policy policy) {
  policy.vhost = name_;
  const std::string name = policy.name;
  if (auto ok = MutablePolicies(kind).Set(std::move(policy)); !ok) return ok;
  ReapplyPolicy(kind, name);
  return {};
}

Result<> Vhost::SetPolicy(PolicyKind kind, Policy policy) {
  const Policy journaled = policy;
  if (auto ok = RestorePolicy(kind, std::move(policy)); !ok) return ok;
  JournalPolicy(kind, journaled, true);
  return {};
}

Result<> Vhost::ClearPolicy(PolicyKind kind, std::string_view name) {
  std::optional<Policy> removed = MutablePolicies(kind).Remove(name);
  if (!removed) return Fail(r::kNotFound, fmt::format("no policy '{}' in vhost '{}'", name, name_));
  JournalPolicy(kind, *removed, false);
  ReapplyPolicy(kind, removed->name);
  return {};
}

bool Vhost::IsDurable(const Destination& d) const {
  return d.queue != nullptr ? d.queue->on_disk() : d.exchange->options().durable;
}

void Vhost::JournalExchange(const Exchange& exchange, bool add) {
  // Pending delayed messages go with their exchange (stored even when it is not durable).
  if (!add && exchange.delayed() != nullptr) exchange.delayed()->DropAll();
  if (persister_ == nullptr || !persister_->enabled() || !exchange.options().durable) return;
  if (!add) {
    persister_->batch().DeleteExchange(name_, exchange.name());
    return;
  }
  proto::ExchangeRecord record;
  record.set_vhost(name_);
  record.set_name(exchange.name());
  record.set_type(std::string(exchange.type_name()));
  record.set_durable(true);
  record.set_auto_delete(exchange.options().auto_delete);
  record.set_internal(exchange.options().internal);
  record.set_arguments(EncodeArguments(exchange.options().arguments));
  persister_->batch().PutExchange(record);
}

void Vhost::JournalQueue(const Queue& queue, bool add) {
  if (persister_ == nullptr || !persister_->enabled() || !queue.on_disk()) return;
  if (!add) {
    persister_->batch().DeleteQueue(name_, queue.name(), queue.id());
    return;
  }
  proto::QueueRecord record;
  record.set_id(queue.id());
  record.set_vhost(name_);
  record.set_name(queue.name());
  record.set_durable(true);
  record.set_auto_delete(queue.options().auto_delete);
  record.set_arguments(EncodeArguments(queue.options().arguments));
  persister_->batch().PutQueue(record);
}

void Vhost::JournalBinding(const Exchange& source, const Binding& binding, bool add) {
  if (persister_ == nullptr || !persister_->enabled()) return;
  if (!source.options().durable || !IsDurable(binding.destination)) return;
  proto::BindingRecord record;
  record.set_vhost(name_);
  record.set_source(source.name());
  const bool to_exchange = binding.destination.exchange != nullptr;
  record.set_destination(to_exchange ? binding.destination.exchange->name() : binding.destination.queue->name());
  record.set_destination_is_exchange(to_exchange);
  record.set_routing_key(binding.key);
  record.set_arguments(EncodeArguments(binding.arguments));
  if (add) {
    persister_->batch().PutBinding(record);
  } else {
    persister_->batch().DeleteBinding(record);
  }
}

std::unexpected<Error> Vhost::LockedError(std::string_view queue) const {
  return Fail(r::kResourceLocked,
              fmt::format("cannot obtain exclusive access to locked {}. It could be originally declared on another "
                          "connection or the exclusive property value does not match that of the original "
                          "declaration.",
                          QueueLabel(queue)));
}

std::string Vhost::QueueLabel(std::string_view name) const {
  return fmt::format("queue '{}' in vhost '{}'", name, name_);
}

std::string Vhost::ExchangeLabel(std::string_view name) const {
  return fmt::format("exchange '{}' in vhost '{}'", name, name_);
}

Exchange* Vhost::AddExchange(std::string name, ExchangeType type, ExchangeOptions options) {
  auto ex = std::make_unique<Exchange>(name, type, std::move(options));
  Exchange* raw = ex.get();
  if (raw->options().delayed) raw->set_delayed(std::make_unique<DelayedSchedule>(*this, *raw));
  exchanges_[std::move(name)] = std::move(ex);
  return raw;
}

Result<Exchange*> Vhost::FindExchange(std::string_view name) {
  auto it = exchanges_.find(name);
  if (it == exchanges_.end()) return Fail(r::kNotFound, "no " + ExchangeLabel(name));
  return it->second.get();
}

Result<Exchange*> Vhost::DeclareExchange(std::string_view name, std::string_view type, bool passive,
                                         ExchangeOptions options) {
  if (name.empty()) return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  if (auto ok = CheckNameLength("exchange", name); !ok) return std::unexpected(ok.error());
  auto it = exchanges_.find(name);
  if (passive) {
    if (it == exchanges_.end()) return Fail(r::kNotFound, "no " + ExchangeLabel(name));
    return it->second.get();
  }
  auto kind = ResolveExchangeType(type, options.arguments);
  if (!kind) return std::unexpected(kind.error());
  options.delayed = kind->delayed;
  if (it == exchanges_.end()) {
    if (HasReservedPrefix(name)) {
      return Fail(r::kAccessRefused,
                  fmt::format("exchange name '{}' contains reserved prefix 'amq.*'", name));
    }
    if (const amqp::FieldValue* ae = options.arguments.Find("alternate-exchange"); ae && !ae->AsString()) {
      return Fail(r::kPreconditionFailed, fmt::format("invalid type '{}' for arg 'alternate-exchange' in {}",
                                                      FieldTypeName(*ae), ExchangeLabel(name)));
    }
    Exchange* created = AddExchange(std::string(name), kind->routing, std::move(options));
    ApplyPolicies(*created);
    JournalExchange(*created, true);
    return created;
  }
  Exchange* ex = it->second.get();
  auto inequivalent = [&](std::string_view arg, std::string_view got, std::string_view have) {
    return Fail(r::kPreconditionFailed,
                fmt::format("inequivalent arg '{}' for {}: received '{}' but current is '{}'", arg,
                            ExchangeLabel(name), got, have));
  };
  if (ex->type_name() != type) return inequivalent("type", type, ex->type_name());
  if (ex->options().durable != options.durable)
    return inequivalent("durable", BoolName(options.durable), BoolName(ex->options().durable));
  if (ex->options().auto_delete != options.auto_delete)
    return inequivalent("auto_delete", BoolName(options.auto_delete), BoolName(ex->options().auto_delete));
  if (ex->options().internal != options.internal)
    return inequivalent("internal", BoolName(options.internal), BoolName(ex->options().internal));
  return ex;
}

Result<> Vhost::DeleteExchange(std::string_view name, bool if_unused) {
  if (name.empty()) return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  if (HasReservedPrefix(name)) {
    return Fail(r::kAccessRefused, fmt::format("deletion of system {} not allowed", ExchangeLabel(name)));
  }
  auto it = exchanges_.find(name);
  if (it == exchanges_.end()) return {};  // idempotent, as RabbitMQ
  Exchange* ex = it->second.get();
  if (if_unused && !ex->bindings().empty()) {
    return Fail(r::kPreconditionFailed, ExchangeLabel(name) + " in use");
  }
  UnbindEverywhere(Destination{.exchange = ex});
  for (const Binding& b : ex->bindings()) JournalBinding(*ex, b, false);
  JournalExchange(*ex, false);
  exchanges_.erase(it);
  ++exchange_removals_;
  CollectAutoDeleteExchanges();
  return {};
}

Result<QueueDeclareResult> Vhost::DeclareQueue(std::string_view name, bool passive, QueueOptions options,
                                               uint64_t connection, bool server_named) {
  if (auto ok = CheckNameLength("queue", name); !ok) return std::unexpected(ok.error());
  auto it = queues_.find(name);
  if (it == queues_.end()) {
    if (passive) return Fail(r::kNotFound, "no " + QueueLabel(name));
    if (!server_named && HasReservedPrefix(name)) {
      return Fail(r::kAccessRefused, fmt::format("queue name '{}' contains reserved prefix 'amq.*'", name));
    }
    std::string qname = name.empty() ? GenerateName("amq.gen-") : std::string(name);
    auto arguments = ParseQueueArguments(options.arguments, QueueLabel(qname));
    if (!arguments) return std::unexpected(arguments.error());
    if (arguments->type == QueueType::kStream) {
      if (auto stream = ParseStreamArguments(options.arguments, QueueLabel(qname)); !stream) {
        return std::unexpected(stream.error());
      }
    }
    if (auto ok = CheckQueueTypeProperties(arguments->type, options.durable, options.exclusive, options.auto_delete,
                                           name.empty() || server_named, QueueLabel(qname));
        !ok) {
      return std::unexpected(ok.error());
    }
    if (arguments->dead_letter_strategy == DeadLetterStrategy::kAtLeastOnce) {
      // Accepted as RabbitMQ accepts it, but not done: said once per queue, where operators look.
      spdlog::warn("{}: x-dead-letter-strategy at-least-once is not supported; dead-lettering at most once",
                   QueueLabel(qname));
    }
    if (options.exclusive) options.owner_connection = connection;
    const uint64_t id = persister_ != nullptr ? persister_->NextQueueId() : next_local_queue_id_++;
    auto q = std::make_shared<Queue>(id, qname, std::move(options), persister_);
    q->set_vhost(this);
    ApplyPolicies(*q);
    queues_[qname] = q;
    JournalQueue(*q, true);
    q->StartDeliveryHorizon();
    // Every queue is bound to the default exchange by its name; routing handles that implicitly.
    return QueueDeclareResult{std::move(q), 0, 0};
  }
  const std::shared_ptr<Queue>& q = it->second;
  const QueueOptions& have = q->options();
  if (have.exclusive && have.owner_connection != connection) {
    return LockedError(name);
  }
  if (!passive) {
    auto inequivalent = [&](std::string_view arg, bool got, bool cur) {
      return Fail(r::kPreconditionFailed,
                  fmt::format("inequivalent arg '{}' for {}: received '{}' but current is '{}'", arg,
                              QueueLabel(name), BoolName(got), BoolName(cur)));
    };
    if (have.durable != options.durable) return inequivalent("durable", options.durable, have.durable);
    if (have.auto_delete != options.auto_delete)
      return inequivalent("auto_delete", options.auto_delete, have.auto_delete);
    if (have.exclusive != options.exclusive) {
      return LockedError(name);
    }
    for (const auto& [key, value] : options.arguments.entries) {
      if (!key.starts_with("x-") || key == "x-queue-type") continue;
      const amqp::FieldValue* current = have.arguments.Find(key);
      if (current == nullptr || !(*current == value)) {
        return Fail(r::kPreconditionFailed, InequivalentArg(key, QueueLabel(name), &value, current));
      }
    }
    // A classic queue may be named so or not; any other type must be named each time.
    if (QueueTypeOf(options.arguments) != QueueTypeOf(have.arguments)) {
      return Fail(r::kPreconditionFailed, InequivalentArg("x-queue-type", QueueLabel(name),
                                                          options.arguments.Find("x-queue-type"),
                                                          have.arguments.Find("x-queue-type")));
    }
  }
  q->Touch();  // renews an x-expires lease
  // As RabbitMQ 3.10, a stream reports no consumers in declare-ok.
  return QueueDeclareResult{q, static_cast<uint32_t>(q->ready_count()),
                            q->stream() != nullptr ? 0u : static_cast<uint32_t>(q->consumer_count())};
}

Result<std::shared_ptr<Queue>> Vhost::FindQueue(std::string_view name, uint64_t connection) {
  auto it = queues_.find(name);
  if (it == queues_.end()) return Fail(r::kNotFound, "no " + QueueLabel(name));
  const QueueOptions& o = it->second->options();
  if (o.exclusive && o.owner_connection != connection) {
    return LockedError(name);
  }
  return it->second;
}

Result<uint32_t> Vhost::DeleteQueue(std::string_view name, bool if_unused, bool if_empty, uint64_t connection) {
  auto found = FindQueue(name, connection);
  if (!found) {
    if (found.error().code == r::kNotFound) return 0u;  // idempotent, as RabbitMQ
    return std::unexpected(found.error());
  }
  std::shared_ptr<Queue> q = *found;
  if (if_unused && q->consumer_count() > 0) return Fail(r::kPreconditionFailed, QueueLabel(name) + " in use");
  if (if_empty && q->ready_count() > 0) return Fail(r::kPreconditionFailed, QueueLabel(name) + " is not empty");
  auto count = static_cast<uint32_t>(q->ready_count());
  RemoveQueue(q);
  return count;
}

Result<uint32_t> Vhost::PurgeQueue(std::string_view name, uint64_t connection) {
  auto q = FindQueue(name, connection);
  if (!q) return std::unexpected(q.error());
  if ((*q)->stream() != nullptr) {
    return Fail(r::kNotImplemented, "queue.purge not supported by stream queues " + QueueLabel(name));
  }
  return (*q)->Purge();
}

void Vhost::RemoveQueue(const std::shared_ptr<Queue>& queue) {
  auto it = queues_.find(queue->name());
  if (it == queues_.end() || it->second != queue) return;
  std::shared_ptr<Queue> keep = queue;  // `queue` may alias the map entry
  queues_.erase(it);
  UnbindEverywhere(Destination{.queue = keep.get()});
  JournalQueue(*keep, false);
  keep->MarkDeleted();
  CollectAutoDeleteExchanges();
}

void Vhost::ExpireQueue(Queue& queue) {
  spdlog::debug("queue '{}' in vhost '{}' expired (x-expires)", queue.name(), name_);
  RemoveQueue(queue.shared_from_this());
}

void Vhost::DeleteAll() {
  std::vector<std::shared_ptr<Queue>> all;
  for (const auto& [name, q] : queues_) all.push_back(q);
  for (const auto& q : all) RemoveQueue(q);
  for (auto& [name, ex] : exchanges_) {
    for (const Binding& b : ex->bindings()) JournalBinding(*ex, b, false);
    JournalExchange(*ex, false);
  }
  default_exchange_ = nullptr;
  exchanges_.clear();
  ++exchange_removals_;
  for (PolicyKind kind : {PolicyKind::kPolicy, PolicyKind::kOperatorPolicy}) {
    for (const Policy& p : policies(kind).List()) JournalPolicy(kind, p, false);
    MutablePolicies(kind) = PolicyTable(kind);
  }
}

void Vhost::RemoveExclusiveQueues(uint64_t connection) {
  std::vector<std::shared_ptr<Queue>> owned;
  for (const auto& [name, q] : queues_) {
    if (q->options().exclusive && q->options().owner_connection == connection) owned.push_back(q);
  }
  for (const auto& q : owned) RemoveQueue(q);
}

void Vhost::UnbindEverywhere(const Destination& destination) {
  for (auto& [name, ex] : exchanges_) {
    for (const Binding& b : ex->UnbindAll(destination)) JournalBinding(*ex, b, false);
  }
}

void Vhost::CollectAutoDeleteExchanges() {
  bool removed = true;
  while (removed) {
    removed = false;
    for (auto it = exchanges_.begin(); it != exchanges_.end(); ++it) {
      Exchange* ex = it->second.get();
      if (!ex->options().auto_delete || !ex->bindings().empty() || !ex->had_bindings()) continue;
      UnbindEverywhere(Destination{.exchange = ex});
      JournalExchange(*ex, false);
      exchanges_.erase(it);
      ++exchange_removals_;
      removed = true;
      break;
    }
  }
}

Result<> Vhost::ChangeBinding(std::string_view source, const Destination& destination, std::string_view key,
                              const amqp::FieldTable& arguments, bool add) {
  if (auto ok = CheckNameLength("routing_key", key); !ok) return std::unexpected(ok.error());
  auto src = FindExchange(source);
  if (!src) return std::unexpected(src.error());
  Exchange& ex = **src;
  if (!add) {
    if (ex.Unbind(destination, key, arguments)) {
      JournalBinding(ex, Binding{destination, std::string(key), arguments}, false);
    }
    CollectAutoDeleteExchanges();
    return {};
  }
  if (ex.type() == ExchangeType::kHeaders && !ValidXMatch(arguments)) {
    return Fail(r::kPreconditionFailed, "Invalid x-match field value; expected one of all, any, all-with-x, any-with-x");
  }
  Binding binding{destination, std::string(key), arguments};
  if (ex.Bind(binding)) JournalBinding(ex, binding, true);
  return {};
}

Result<> Vhost::BindQueue(std::string_view queue, std::string_view exchange, std::string_view key,
                          const amqp::FieldTable& arguments, uint64_t connection) {
  return ChangeQueueBinding(queue, exchange, key, arguments, connection, true);
}

Result<> Vhost::UnbindQueue(std::string_view queue, std::string_view exchange, std::string_view key,
                            const amqp::FieldTable& arguments, uint64_t connection) {
  return ChangeQueueBinding(queue, exchange, key, arguments, connection, false);
}

Result<> Vhost::ChangeQueueBinding(std::string_view queue, std::string_view exchange, std::string_view key,
                                   const amqp::FieldTable& arguments, uint64_t connection, bool add) {
  if (exchange.empty()) return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  auto q = FindQueue(queue, connection);
  if (!q) return std::unexpected(q.error());
  return ChangeBinding(exchange, Destination{.queue = q->get()}, key, arguments, add);
}

Result<> Vhost::BindExchange(std::string_view destination, std::string_view source, std::string_view key,
                             const amqp::FieldTable& arguments) {
  return ChangeExchangeBinding(destination, source, key, arguments, true);
}

Result<> Vhost::UnbindExchange(std::string_view destination, std::string_view source, std::string_view key,
                               const amqp::FieldTable& arguments) {
  return ChangeExchangeBinding(destination, source, key, arguments, false);
}

Result<> Vhost::ChangeExchangeBinding(std::string_view destination, std::string_view source, std::string_view key,
                                      const amqp::FieldTable& arguments, bool add) {
  if (destination.empty() || source.empty())
    return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  auto dst = FindExchange(destination);
  if (!dst) return std::unexpected(dst.error());
  return ChangeBinding(source, Destination{.exchange = *dst}, key, arguments, add);
}

void Vhost::Route(const Exchange& exchange, const Message& message, std::vector<Queue*>& queues) {
  queues.clear();
  route_held_.clear();
  if (&exchange == default_exchange_) {
    auto it = queues_.find(message.routing_key());
    if (it != queues_.end()) queues.push_back(it->second.get());
    return;
  }
  // Each queue and exchange reached is stamped with this pass's number: one copy per queue and
  // no exchange visited twice (cycles, diamonds), at O(1) per destination and no allocation.
  const uint64_t pass = ++route_pass_;
  route_exchanges_.clear();
  route_exchanges_.push_back(&exchange);
  exchange.MarkRouted(pass);
  bool delay_read = false;  // the header is read at the first delayed exchange, once
  std::optional<int64_t> delay;
  for (size_t i = 0; i < route_exchanges_.size(); ++i) {
    if (DelayedSchedule* schedule = route_exchanges_[i]->delayed(); schedule != nullptr) [[unlikely]] {
      if (!delay_read) delay = DelayOf(message.raw_properties());
      delay_read = true;
      if (delay) {
        route_held_.push_back(Held{schedule, *delay});
        continue;
      }
    }
    route_destinations_.clear();
    route_exchanges_[i]->Route(message, route_destinations_);
    if (route_destinations_.empty()) {
      // Unroutable here: on to the alternate exchange, if it exists.
      if (const std::string* ae = route_exchanges_[i]->alternate_exchange()) {
        auto it = exchanges_.find(*ae);
        if (it != exchanges_.end() && it->second->MarkRouted(pass)) route_exchanges_.push_back(it->second.get());
      }
      continue;
    }
    for (const Destination& d : route_destinations_) {
      if (d.queue != nullptr) {
        if (d.queue->MarkRouted(pass)) queues.push_back(d.queue);
      } else if (d.exchange->MarkRouted(pass)) {
        route_exchanges_.push_back(d.exchange);
      }
    }
  }
}

}  // namespace warren::broker
