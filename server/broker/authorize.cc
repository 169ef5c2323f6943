#include "server/broker/authorize.h"

#include <algorithm>

#include "server/broker/broker.h"
#include "server/broker/vhost.h"

namespace warren::broker {

namespace {

// The string value of argument `key`, or nullptr (absent, not a string, or arguments not known).
const std::string* StringArgument(const amqp::FieldTable* arguments, std::string_view key) {
  if (arguments == nullptr) return nullptr;
  const amqp::FieldValue* v = arguments->Find(key);
  return v == nullptr ? nullptr : v->AsString();
}

bool HasTag(const Broker& broker, std::string_view user, std::string_view tag) {
  const User* u = broker.FindUser(user);
  return u != nullptr && std::find(u->tags.begin(), u->tags.end(), tag) != u->tags.end();
}

}  // namespace

Result<> Authorize(const Broker& broker, std::string_view user, const Vhost& vhost, const AccessRequest& request) {
  const std::string_view v = vhost.name();
  auto check = [&](AccessKind access, ResourceKind resource, std::string_view name) {
    return broker.CheckAccess(user, v, access, resource, name);
  };
  auto topic = [&](AccessKind access, std::string_view exchange) -> Result<> {
    if (!request.routing_key) return {};
    return broker.CheckTopicAccess(user, v, exchange, access, *request.routing_key);
  };
  // A new object with a reference to an exchange: read on the object, write on the exchange.
  auto referenced = [&](ResourceKind resource, bool exists, std::string_view key) -> Result<> {
    const std::string* target = StringArgument(request.arguments, key);
    if (target == nullptr || exists) return {};
    if (auto ok = check(AccessKind::kRead, resource, request.name); !ok) return ok;
    return check(AccessKind::kWrite, ResourceKind::kExchange, *target);
  };
  switch (request.op) {
    case Operation::kDeclareExchange:
      if (request.passive || request.name.empty()) return {};
      if (auto ok = check(AccessKind::kConfigure, ResourceKind::kExchange, request.name); !ok) return ok;
      return referenced(ResourceKind::kExchange, vhost.exchanges().contains(request.name), "alternate-exchange");
    case Operation::kDeleteExchange:
      if (request.name.empty()) return {};
      return check(AccessKind::kConfigure, ResourceKind::kExchange, request.name);
    case Operation::kDeclareQueue:
      if (request.passive) return {};
      if (auto ok = check(AccessKind::kConfigure, ResourceKind::kQueue, request.name); !ok) return ok;
      return referenced(ResourceKind::kQueue, vhost.queues().contains(request.name), "x-dead-letter-exchange");
    case Operation::kDeleteQueue:
      return check(AccessKind::kConfigure, ResourceKind::kQueue, request.name);
    case Operation::kBindQueue:
    case Operation::kUnbindQueue:
    case Operation::kBindExchange:
    case Operation::kUnbindExchange: {
      const bool to_queue = request.op == Operation::kBindQueue || request.op == Operation::kUnbindQueue;
      if (auto ok = check(AccessKind::kWrite, to_queue ? ResourceKind::kQueue : ResourceKind::kExchange, request.name);
          !ok) {
        return ok;
      }
      if (!request.source.empty()) {
        if (auto ok = check(AccessKind::kRead, ResourceKind::kExchange, request.source); !ok) return ok;
      }
      return topic(AccessKind::kRead, request.source);
    }
    case Operation::kPublish:
      if (auto ok = check(AccessKind::kWrite, ResourceKind::kExchange, request.name); !ok) return ok;
      return topic(AccessKind::kWrite, request.name);
    case Operation::kConsume:
    case Operation::kGet:
    case Operation::kPurge:
      return check(AccessKind::kRead, ResourceKind::kQueue, request.name);
    case Operation::kReadPolicy:
    case Operation::kChangePolicy:
      if (HasTag(broker, user, "administrator") ||
          (HasTag(broker, user, "policymaker") && broker.HasVhostAccess(user, v))) {
        return {};
      }
      return Fail(amqp::reply::kAccessRefused, "User not authorised to access object");
    case Operation::kReadOperatorPolicy:
    case Operation::kChangeOperatorPolicy:
      if (HasTag(broker, user, "administrator")) return {};
      return Fail(amqp::reply::kAccessRefused, "Not administrator user");
  }
  return Fail(amqp::reply::kAccessRefused, "unknown operation");
}

}  // namespace warren::broker
