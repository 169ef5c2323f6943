#include "server/broker/exchange.h"

#include <algorithm>

#include "server/amqp/properties.h"
#include "server/broker/delayed.h"
#include "server/broker/headers_match.h"
#include "server/broker/policy.h"

namespace warren::broker {

std::optional<ExchangeType> ParseExchangeType(std::string_view name) {
  if (name == "direct") return ExchangeType::kDirect;
  if (name == "fanout") return ExchangeType::kFanout;
  if (name == "topic") return ExchangeType::kTopic;
  if (name == "headers") return ExchangeType::kHeaders;
  return std::nullopt;
}

std::string_view ExchangeTypeName(ExchangeType type) {
  switch (type) {
    case ExchangeType::kDirect: return "direct";
    case ExchangeType::kFanout: return "fanout";
    case ExchangeType::kTopic: return "topic";
    case ExchangeType::kHeaders: return "headers";
  }
  return "direct";
}

Result<ExchangeKind> ResolveExchangeType(std::string_view type, const amqp::FieldTable& arguments) {
  auto unknown = [](std::string_view t) {
    return Fail(amqp::reply::kCommandInvalid, "unknown exchange type '" + std::string(t) + "'");
  };
  if (type != kDelayedExchangeType) {
    auto routing = ParseExchangeType(type);
    if (!routing) return unknown(type);
    return ExchangeKind{*routing, false};
  }
  const amqp::FieldValue* delayed_type = arguments.Find("x-delayed-type");
  const std::string* name = delayed_type != nullptr ? delayed_type->AsString() : nullptr;
  if (name == nullptr) {
    return Fail(amqp::reply::kPreconditionFailed,
                "Invalid argument, 'x-delayed-type' must be an existing exchange type");
  }
  if (*name == kDelayedExchangeType) {
    return Fail(amqp::reply::kPreconditionFailed,
                "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'");
  }
  auto routing = ParseExchangeType(*name);
  if (!routing) return unknown(*name);
  return ExchangeKind{*routing, true};
}

Exchange::~Exchange() = default;

void Exchange::set_delayed(std::unique_ptr<DelayedSchedule> schedule) { delayed_ = std::move(schedule); }

Exchange::Exchange(std::string name, ExchangeType type, ExchangeOptions options)
    : name_(std::move(name)), type_(type), options_(std::move(options)) {
  ApplyPolicy(nullptr);
}

void Exchange::ApplyPolicy(const Policy* policy) {
  policy_ = policy != nullptr ? policy->name : std::string();
  alternate_exchange_ = EffectiveAlternateExchange(options_.arguments, policy);
}

bool Exchange::Bind(Binding binding) {
  KeyIndex& keys = by_destination_[binding.destination];
  auto [slot, fresh_key] = keys.try_emplace(binding.key);
  for (BindingList::iterator b : slot->second) {
    if (b->arguments == binding.arguments) return false;
  }
  // Bindings differing only in arguments share one routing index entry.
  if (fresh_key) IndexAdd(binding);
  had_bindings_ = true;
  slot->second.push_back(bindings_.insert(bindings_.end(), std::move(binding)));
  return true;
}

bool Exchange::Unbind(const Destination& destination, std::string_view key,
                      const amqp::FieldTable& arguments) {
  auto dest = by_destination_.find(destination);
  if (dest == by_destination_.end()) return false;
  auto slot = dest->second.find(key);
  if (slot == dest->second.end()) return false;
  std::vector<BindingList::iterator>& same_key = slot->second;
  auto it = std::find_if(same_key.begin(), same_key.end(),
                         [&](BindingList::iterator b) { return b->arguments == arguments; });
  if (it == same_key.end()) return false;
  bindings_.erase(*it);
  same_key.erase(it);
  if (same_key.empty()) {
    IndexRemove(destination, key);
    dest->second.erase(slot);
    if (dest->second.empty()) by_destination_.erase(dest);
  }
  return true;
}

std::vector<Binding> Exchange::UnbindAll(const Destination& destination) {
  std::vector<Binding> removed;
  auto dest = by_destination_.find(destination);
  if (dest == by_destination_.end()) return removed;
  for (auto& [key, same_key] : dest->second) {
    IndexRemove(destination, key);
    for (BindingList::iterator b : same_key) {
      removed.push_back(std::move(*b));
      bindings_.erase(b);
    }
  }
  by_destination_.erase(dest);
  return removed;
}

void Exchange::IndexAdd(const Binding& b) {
  switch (type_) {
    case ExchangeType::kDirect:
      direct_[b.key].Insert(b.destination);
      break;
    case ExchangeType::kTopic:
      topic_.Add(b.key, b.destination);
      break;
    case ExchangeType::kFanout:
    case ExchangeType::kHeaders:
      break;  // routed from bindings_ directly
  }
}

void Exchange::IndexRemove(const Destination& d, std::string_view key) {
  switch (type_) {
    case ExchangeType::kDirect: {
      auto it = direct_.find(key);
      if (it == direct_.end()) return;
      it->second.Erase(d);
      if (it->second.empty()) direct_.erase(it);
      break;
    }
    case ExchangeType::kTopic:
      topic_.Remove(key, d);
      break;
    case ExchangeType::kFanout:
    case ExchangeType::kHeaders:
      break;
  }
}

void Exchange::Route(const Message& message, std::vector<Destination>& out) const {
  switch (type_) {
    case ExchangeType::kDirect: {
      auto it = direct_.find(message.routing_key());
      if (it != direct_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
      break;
    }
    case ExchangeType::kFanout:
      for (const Binding& b : bindings_) out.push_back(b.destination);
      break;
    case ExchangeType::kTopic:
      topic_.Match(message.routing_key(), [&](const Destination& d) { out.push_back(d); });
      break;
    case ExchangeType::kHeaders: {
      if (bindings_.empty()) break;
      std::optional<amqp::FieldTable> headers;
      if (!amqp::PeekHeaders(message.raw_properties(), &headers)) headers.reset();
      const amqp::FieldTable* h = headers ? &*headers : nullptr;
      for (const Binding& b : bindings_) {
        if (HeadersMatch(b.arguments, h)) out.push_back(b.destination);
      }
      break;
    }
  }
}

}  // namespace warren::broker
