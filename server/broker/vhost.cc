#include "server/broker/vhost.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "server/broker/headers_match.h"

namespace warren::broker {

namespace r = amqp::reply;

namespace {

std::string_view BoolName(bool b) { return b ? "true" : "false"; }

bool HasReservedPrefix(std::string_view name) { return name.starts_with("amq."); }

}  // namespace

std::string GenerateName(std::string_view prefix) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out(prefix);
  uint64_t bits = 0;
  for (int i = 0; i < 22; ++i) {
    if (i % 10 == 0) bits = rng();
    out.push_back(kAlphabet[bits & 63]);
    bits >>= 6;
  }
  return out;
}

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

std::string Vhost::QueueLabel(std::string_view name) const {
  return fmt::format("queue '{}' in vhost '{}'", name, name_);
}

std::string Vhost::ExchangeLabel(std::string_view name) const {
  return fmt::format("exchange '{}' in vhost '{}'", name, name_);
}

Exchange* Vhost::AddExchange(std::string name, ExchangeType type, ExchangeOptions options) {
  auto ex = std::make_unique<Exchange>(name, type, std::move(options));
  Exchange* raw = ex.get();
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
  auto it = exchanges_.find(name);
  if (passive) {
    if (it == exchanges_.end()) return Fail(r::kNotFound, "no " + ExchangeLabel(name));
    return it->second.get();
  }
  auto parsed = ParseExchangeType(type);
  if (!parsed) return Fail(r::kCommandInvalid, fmt::format("unknown exchange type '{}'", type));
  if (it == exchanges_.end()) {
    if (HasReservedPrefix(name)) {
      return Fail(r::kAccessRefused,
                  fmt::format("exchange name '{}' contains reserved prefix 'amq.*'", name));
    }
    return AddExchange(std::string(name), *parsed, std::move(options));
  }
  Exchange* ex = it->second.get();
  auto inequivalent = [&](std::string_view arg, std::string_view got, std::string_view have) {
    return Fail(r::kPreconditionFailed,
                fmt::format("inequivalent arg '{}' for {}: received '{}' but current is '{}'", arg,
                            ExchangeLabel(name), got, have));
  };
  if (ex->type() != *parsed) return inequivalent("type", type, ExchangeTypeName(ex->type()));
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
  exchanges_.erase(it);
  CollectAutoDeleteExchanges();
  return {};
}

Result<QueueDeclareResult> Vhost::DeclareQueue(std::string_view name, bool passive, QueueOptions options,
                                               uint64_t connection) {
  auto it = queues_.find(name);
  if (it == queues_.end()) {
    if (passive) return Fail(r::kNotFound, "no " + QueueLabel(name));
    if (HasReservedPrefix(name)) {
      return Fail(r::kAccessRefused, fmt::format("queue name '{}' contains reserved prefix 'amq.*'", name));
    }
    std::string qname = name.empty() ? GenerateName("amq.gen-") : std::string(name);
    if (options.exclusive) options.owner_connection = connection;
    auto q = std::make_shared<Queue>(qname, std::move(options));
    queues_[qname] = q;
    // Every queue is bound to the default exchange by its name; routing handles that implicitly.
    return QueueDeclareResult{std::move(q), 0, 0};
  }
  const std::shared_ptr<Queue>& q = it->second;
  const QueueOptions& have = q->options();
  if (have.exclusive && have.owner_connection != connection) {
    return Fail(r::kResourceLocked,
                fmt::format("cannot obtain exclusive access to locked {}. It could be originally "
                            "declared on another connection or the exclusive property value does "
                            "not match that of the original declaration.",
                            QueueLabel(name)));
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
      return Fail(r::kResourceLocked,
                  fmt::format("cannot obtain exclusive access to locked {}. It could be originally "
                              "declared on another connection or the exclusive property value does "
                              "not match that of the original declaration.",
                              QueueLabel(name)));
    }
    for (const auto& [key, value] : options.arguments.entries) {
      if (!key.starts_with("x-")) continue;
      const amqp::FieldValue* current = have.arguments.Find(key);
      if (current == nullptr || !(*current == value)) {
        return Fail(r::kPreconditionFailed,
                    fmt::format("inequivalent arg '{}' for {}", key, QueueLabel(name)));
      }
    }
  }
  return QueueDeclareResult{q, static_cast<uint32_t>(q->ready_count()),
                            static_cast<uint32_t>(q->consumer_count())};
}

Result<std::shared_ptr<Queue>> Vhost::FindQueue(std::string_view name, uint64_t connection) {
  auto it = queues_.find(name);
  if (it == queues_.end()) return Fail(r::kNotFound, "no " + QueueLabel(name));
  const QueueOptions& o = it->second->options();
  if (o.exclusive && o.owner_connection != connection) {
    return Fail(r::kResourceLocked,
                fmt::format("cannot obtain exclusive access to locked {}. It could be originally "
                            "declared on another connection or the exclusive property value does "
                            "not match that of the original declaration.",
                            QueueLabel(name)));
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
  return (*q)->Purge();
}

void Vhost::RemoveQueue(const std::shared_ptr<Queue>& queue) {
  auto it = queues_.find(queue->name());
  if (it == queues_.end() || it->second != queue) return;
  std::shared_ptr<Queue> keep = queue;  // `queue` may alias the map entry
  queues_.erase(it);
  UnbindEverywhere(Destination{.queue = keep.get()});
  keep->MarkDeleted();
  CollectAutoDeleteExchanges();
}

void Vhost::RemoveExclusiveQueues(uint64_t connection) {
  std::vector<std::shared_ptr<Queue>> owned;
  for (const auto& [name, q] : queues_) {
    if (q->options().exclusive && q->options().owner_connection == connection) owned.push_back(q);
  }
  for (const auto& q : owned) RemoveQueue(q);
}

void Vhost::UnbindEverywhere(const Destination& destination) {
  for (auto& [name, ex] : exchanges_) ex->UnbindAll(destination);
}

void Vhost::CollectAutoDeleteExchanges() {
  bool removed = true;
  while (removed) {
    removed = false;
    for (auto it = exchanges_.begin(); it != exchanges_.end(); ++it) {
      Exchange* ex = it->second.get();
      if (!ex->options().auto_delete || !ex->bindings().empty() || !ex->had_bindings()) continue;
      UnbindEverywhere(Destination{.exchange = ex});
      exchanges_.erase(it);
      removed = true;
      break;
    }
  }
}

Result<> Vhost::BindQueue(std::string_view queue, std::string_view exchange, std::string_view key,
                          const amqp::FieldTable& arguments, uint64_t connection) {
  if (exchange.empty()) return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  auto q = FindQueue(queue, connection);
  if (!q) return std::unexpected(q.error());
  auto ex = FindExchange(exchange);
  if (!ex) return std::unexpected(ex.error());
  if ((*ex)->type() == ExchangeType::kHeaders && !ValidXMatch(arguments)) {
    return Fail(r::kPreconditionFailed, "Invalid x-match field value; expected one of all, any, all-with-x, any-with-x");
  }
  (*ex)->Bind(Binding{Destination{.queue = q->get()}, std::string(key), arguments});
  return {};
}

Result<> Vhost::UnbindQueue(std::string_view queue, std::string_view exchange, std::string_view key,
                            const amqp::FieldTable& arguments, uint64_t connection) {
  if (exchange.empty()) return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  auto q = FindQueue(queue, connection);
  if (!q) return std::unexpected(q.error());
  auto ex = FindExchange(exchange);
  if (!ex) return std::unexpected(ex.error());
  (*ex)->Unbind(Destination{.queue = q->get()}, key, arguments);  // unbinding nothing is fine
  CollectAutoDeleteExchanges();
  return {};
}

Result<> Vhost::BindExchange(std::string_view destination, std::string_view source, std::string_view key,
                             const amqp::FieldTable& arguments) {
  if (destination.empty() || source.empty())
    return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  auto dst = FindExchange(destination);
  if (!dst) return std::unexpected(dst.error());
  auto src = FindExchange(source);
  if (!src) return std::unexpected(src.error());
  if ((*src)->type() == ExchangeType::kHeaders && !ValidXMatch(arguments)) {
    return Fail(r::kPreconditionFailed, "Invalid x-match field value; expected one of all, any, all-with-x, any-with-x");
  }
  (*src)->Bind(Binding{Destination{.exchange = *dst}, std::string(key), arguments});
  return {};
}

Result<> Vhost::UnbindExchange(std::string_view destination, std::string_view source, std::string_view key,
                               const amqp::FieldTable& arguments) {
  if (destination.empty() || source.empty())
    return Fail(r::kAccessRefused, "operation not permitted on the default exchange");
  auto dst = FindExchange(destination);
  if (!dst) return std::unexpected(dst.error());
  auto src = FindExchange(source);
  if (!src) return std::unexpected(src.error());
  (*src)->Unbind(Destination{.exchange = *dst}, key, arguments);
  CollectAutoDeleteExchanges();
  return {};
}

void Vhost::Route(const Exchange& exchange, const Message& message, std::vector<Queue*>& queues) {
  queues.clear();
  auto add_queue = [&](Queue* q) {
    if (std::find(queues.begin(), queues.end(), q) == queues.end()) queues.push_back(q);
  };
  if (&exchange == default_exchange_) {
    auto it = queues_.find(message.routing_key());
    if (it != queues_.end()) queues.push_back(it->second.get());
    return;
  }
  route_exchanges_.clear();
  route_exchanges_.push_back(&exchange);
  for (size_t i = 0; i < route_exchanges_.size(); ++i) {
    route_destinations_.clear();
    route_exchanges_[i]->Route(message, route_destinations_);
    for (const Destination& d : route_destinations_) {
      if (d.queue != nullptr) {
        add_queue(d.queue);
      } else if (std::find(route_exchanges_.begin(), route_exchanges_.end(), d.exchange) ==
                 route_exchanges_.end()) {
        route_exchanges_.push_back(d.exchange);
      }
    }
  }
}

}  // namespace warren::broker
