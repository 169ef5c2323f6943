// Exchanges and their bindings. An exchange maps a message to destinations (queues or, for
// exchange-to-exchange bindings, other exchanges) according to its type:
//   direct  - binding key equals the routing key (hash lookup)
//   fanout  - every binding
//   topic   - binding key pattern with '*' and '#' (a word trie, see topic_trie.h)
//   headers - binding arguments against the message headers (see headers_match.h)
// An x-delayed-message exchange routes as its x-delayed-type argument names, but holds each
// message with a positive x-delay header until it is due (broker/delayed.h).
// Bindings are indexed by destination and key, so Bind, Unbind and UnbindAll cost O(1) per
// binding they touch however many bindings the exchange has (50,000 queues on one fanout, or one
// queue with 50,000 keys, stay cheap to change).
//
// Thread: owned by the broker thread.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/amqp/field_table.h"
#include "server/broker/error.h"
#include "server/broker/indexed_set.h"
#include "server/broker/message.h"
#include "server/broker/topic_trie.h"

namespace warren::broker {

struct Policy;

class Queue;
class Exchange;
class DelayedSchedule;

// Where a binding leads: exactly one of the two pointers is set.
struct Destination {
  Queue* queue = nullptr;
  Exchange* exchange = nullptr;
  bool operator==(const Destination&) const = default;
};

struct DestinationHash {
  size_t operator()(const Destination& d) const {
    return std::hash<const void*>{}(d.queue != nullptr ? static_cast<const void*>(d.queue) : d.exchange);
  }
};

struct Binding {
  Destination destination;
  std::string key;
  amqp::FieldTable arguments;
};

enum class ExchangeType { kDirect, kFanout, kTopic, kHeaders };

std::optional<ExchangeType> ParseExchangeType(std::string_view name);
std::string_view ExchangeTypeName(ExchangeType type);

inline constexpr std::string_view kDelayedExchangeType = "x-delayed-message";

struct ExchangeKind {
  ExchangeType routing = ExchangeType::kDirect;
  bool delayed = false;  // x-delayed-message, routing as its x-delayed-type
};

// The one check of an exchange type and the arguments that qualify it (every declare path:
// AMQP, the management API, definitions, recovery). As RabbitMQ and its delayed-message plugin:
// an unknown type (also as x-delayed-type) is 503 COMMAND_INVALID "unknown exchange type 'T'";
// x-delayed-message without a string x-delayed-type is 406 "Invalid argument, 'x-delayed-type'
// must be an existing exchange type", naming itself 406 "Invalid argument, 'x-delayed-message'
// can't be used for 'x-delayed-type'".
Result<ExchangeKind> ResolveExchangeType(std::string_view type, const amqp::FieldTable& arguments);

struct ExchangeOptions {
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  amqp::FieldTable arguments;
  bool delayed = false;  // set from ResolveExchangeType
};

class Exchange {
 public:
  Exchange(std::string name, ExchangeType type, ExchangeOptions options);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const std::string& name() const { return name_; }
  // How it routes (an x-delayed-message exchange: its x-delayed-type).
  ExchangeType type() const { return type_; }
  // The declared type: "x-delayed-message" or the routing type's name.
  std::string_view type_name() const { return options_.delayed ? kDelayedExchangeType : ExchangeTypeName(type_); }
  // The pending messages of an x-delayed-message exchange (null for the others).
  DelayedSchedule* delayed() const { return delayed_.get(); }
  void set_delayed(std::unique_ptr<DelayedSchedule> schedule);
  const ExchangeOptions& options() const { return options_; }
  // In the order they were made.
  const std::list<Binding>& bindings() const { return bindings_; }
  // Auto-delete exchanges go when their last binding does, not before their first.
  bool had_bindings() const { return had_bindings_; }
  // Where messages this exchange cannot route go instead: the `alternate-exchange` argument, else
  // its policy's (EffectiveAlternateExchange).
  const std::string* alternate_exchange() const { return alternate_exchange_ ? &*alternate_exchange_ : nullptr; }
  // The policy that applies (Vhost::ApplyPolicies); null: none.
  void ApplyPolicy(const Policy* policy);
  // The applying policy's name; empty: none.
  const std::string& policy() const { return policy_; }

  // Adds a binding; false when an identical one (destination, key, arguments) exists already.
  bool Bind(Binding binding);
  // Removes the identical binding; false when there is none.
  bool Unbind(const Destination& destination, std::string_view key, const amqp::FieldTable& arguments);
  // Removes every binding to `destination` (it is being deleted) and returns them.
  std::vector<Binding> UnbindAll(const Destination& destination);

  // Appends the destinations `message` routes to. May append one destination more than once.
  void Route(const Message& message, std::vector<Destination>& out) const;

  // Vhost::Route's visited mark: true the first time it is called with `pass`.
  bool MarkRouted(uint64_t pass) const {
    if (route_pass_ == pass) return false;
    route_pass_ = pass;
    return true;
  }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using BindingList = std::list<Binding>;
  // A destination's bindings here, by key; several bindings with one key differ in arguments.
  using KeyIndex = std::unordered_map<std::string, std::vector<BindingList::iterator>, StringHash, std::equal_to<>>;

  void IndexAdd(const Binding& b);
  void IndexRemove(const Destination& d, std::string_view key);

  std::string name_;
  ExchangeType type_;
  ExchangeOptions options_;
  BindingList bindings_;
  std::unordered_map<Destination, KeyIndex, DestinationHash> by_destination_;
  bool had_bindings_ = false;
  std::optional<std::string> alternate_exchange_;
  std::string policy_;
  std::unordered_map<std::string, IndexedSet<Destination, DestinationHash>, StringHash, std::equal_to<>> direct_;
  TopicTrie<Destination, DestinationHash> topic_;
  mutable uint64_t route_pass_ = 0;
  std::unique_ptr<DelayedSchedule> delayed_;
};

}  // namespace warren::broker
