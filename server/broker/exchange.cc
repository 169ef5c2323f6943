#include "server/broker/exchange.h"

#include <algorithm>

#include "server/amqp/properties.h"
#include "server/broker/headers_match.h"

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

Exchange::Exchange(std::string name, ExchangeType type, ExchangeOptions options)
    : name_(std::move(name)), type_(type), options_(std::move(options)) {
  const amqp::FieldValue* ae = options_.arguments.Find("alternate-exchange");
  if (ae != nullptr && ae->AsString() != nullptr) alternate_exchange_ = *ae->AsString();
}

bool Exchange::Bind(Binding binding) {
  for (const Binding& b : bindings_) {
    if (b.destination == binding.destination && b.key == binding.key && b.arguments == binding.arguments) {
      return false;
    }
  }
  IndexAdd(binding);
  had_bindings_ = true;
  bindings_.push_back(std::move(binding));
  return true;
}

bool Exchange::Unbind(const Destination& destination, std::string_view key,
                      const amqp::FieldTable& arguments) {
  auto it = std::find_if(bindings_.begin(), bindings_.end(), [&](const Binding& b) {
    return b.destination == destination && b.key == key && b.arguments == arguments;
  });
  if (it == bindings_.end()) return false;
  Binding removed = std::move(*it);
  bindings_.erase(it);
  // Bindings differing only in arguments share one index entry: keep it while one remains.
  bool still_indexed = std::any_of(bindings_.begin(), bindings_.end(), [&](const Binding& b) {
    return b.destination == destination && b.key == removed.key;
  });
  if (!still_indexed) IndexRemove(destination, removed.key);
  return true;
}

size_t Exchange::UnbindAll(const Destination& destination) {
  size_t removed = 0;
  for (size_t i = bindings_.size(); i-- > 0;) {
    if (bindings_[i].destination == destination) {
      IndexRemove(destination, bindings_[i].key);
      bindings_.erase(bindings_.begin() + static_cast<std::ptrdiff_t>(i));
      ++removed;
    }
  }
  return removed;
}

void Exchange::IndexAdd(const Binding& b) {
  switch (type_) {
    case ExchangeType::kDirect: {
      auto& dests = direct_[b.key];
      if (std::find(dests.begin(), dests.end(), b.destination) == dests.end()) dests.push_back(b.destination);
      break;
    }
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
      std::erase(it->second, d);
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
