#include "server/broker/queue_arguments.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <span>

#include <fmt/format.h>

namespace warren::broker {

namespace r = amqp::reply;

namespace {

// An error term as RabbitMQ prints it with ~p ("{value_negative,-1}"); nullopt when valid.
using Problem = std::optional<std::string>;

std::string Unacceptable(const amqp::FieldValue& v) { return fmt::format("{{unacceptable_type,{}}}", FieldTypeName(v)); }

Problem CheckInt(const amqp::FieldValue& v) {
  if (!v.IsInteger()) return Unacceptable(v);
  return std::nullopt;
}

Problem CheckExpiry(int64_t n) {
  if (n > static_cast<int64_t>(kMaxExpiry)) return fmt::format("{{value_too_large,{}}}", n);
  if (n < 0) return fmt::format("{{value_negative,{}}}", n);
  return std::nullopt;
}

Problem CheckExpiresArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  if (auto p = CheckInt(v)) return p;
  const int64_t n = *v.AsInt();
  if (n == 0) return std::string("{value_zero,0}");
  return CheckExpiry(n);
}

Problem CheckMessageTtlArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  if (auto p = CheckInt(v)) return p;
  return CheckExpiry(*v.AsInt());
}

Problem CheckNonNegIntArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  if (auto p = CheckInt(v)) return p;
  const int64_t n = *v.AsInt();
  if (n < 0) return fmt::format("{{value_negative,{}}}", n);
  return std::nullopt;
}

Problem CheckMaxPriorityArg(const amqp::FieldValue& v, const amqp::FieldTable& args) {
  if (auto p = CheckNonNegIntArg(v, args)) return p;
  const int64_t n = *v.AsInt();
  if (n > kMaxSupportedPriority) return fmt::format("{{max_value_exceeded,{}}}", n);
  return std::nullopt;
}

Problem CheckDlxNameArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  if (v.AsString() == nullptr) return Unacceptable(v);
  return std::nullopt;
}

Problem CheckDlxRoutingKeyArg(const amqp::FieldValue& v, const amqp::FieldTable& args) {
  if (v.AsString() == nullptr) return Unacceptable(v);
  if (args.Find("x-dead-letter-exchange") == nullptr) return std::string("routing_key_but_no_dlx_defined");
  return std::nullopt;
}

Problem CheckOneOf(const amqp::FieldValue& v, std::initializer_list<std::string_view> allowed, std::string_view error) {
  const std::string* s = v.AsString();
  if (s == nullptr) return Unacceptable(v);
  if (std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) return std::string(error);
  return std::nullopt;
}

Problem CheckOverflowArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  return CheckOneOf(v, {"drop-head", "reject-publish", "reject-publish-dlx"}, "invalid_overflow");
}

Problem CheckQueueModeArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  return CheckOneOf(v, {"default", "lazy"}, "invalid_queue_mode");
}

Problem CheckQueueTypeArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  const std::string* s = v.AsString();
  if (s == nullptr) return Unacceptable(v);
  if (*s != "classic" && *s != "quorum" && *s != "stream") return fmt::format("\"unsupported queue type '{}'\"", *s);
  return std::nullopt;
}

Problem CheckDlxStrategyArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  return CheckOneOf(v, {"at-most-once", "at-least-once"}, "invalid_dlx_strategy");
}

// RabbitMQ's check_initial_cluster_size_arg, whose type error is worded apart from the others.
Problem CheckGroupSizeArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  if (!v.IsInteger()) return fmt::format("\"expected integer, got {}\"", FieldTypeName(v));
  const int64_t n = *v.AsInt();
  if (n == 0) return std::string("{value_zero,0}");
  if (n < 0) return fmt::format("{{value_negative,{}}}", n);
  return std::nullopt;
}

Problem CheckLeaderLocatorArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  return CheckOneOf(v, {"client-local", "balanced", "random", "least-leaders"}, "invalid_queue_locator_arg");
}

Problem CheckBoolArg(const amqp::FieldValue& v, const amqp::FieldTable&) {
  if (!v.AsBool()) return Unacceptable(v);
  return std::nullopt;
}

struct Validator {
  std::string_view key;
  Problem (*check)(const amqp::FieldValue&, const amqp::FieldTable&);
};

// RabbitMQ 3.10's declare-time checks, in its order.
constexpr std::array kQueueValidators = {
    Validator{"x-expires", CheckExpiresArg},
    Validator{"x-message-ttl", CheckMessageTtlArg},
    Validator{"x-dead-letter-exchange", CheckDlxNameArg},
    Validator{"x-dead-letter-routing-key", CheckDlxRoutingKeyArg},
    Validator{"x-dead-letter-strategy", CheckDlxStrategyArg},
    Validator{"x-max-length", CheckNonNegIntArg},
    Validator{"x-max-length-bytes", CheckNonNegIntArg},
    Validator{"x-max-in-memory-length", CheckNonNegIntArg},
    Validator{"x-max-in-memory-bytes", CheckNonNegIntArg},
    Validator{"x-max-priority", CheckMaxPriorityArg},
    Validator{"x-overflow", CheckOverflowArg},
    Validator{"x-queue-mode", CheckQueueModeArg},
    Validator{"x-single-active-consumer", CheckBoolArg},
    Validator{"x-queue-type", CheckQueueTypeArg},
    Validator{"x-quorum-initial-group-size", CheckGroupSizeArg},
    Validator{"x-queue-leader-locator", CheckLeaderLocatorArg},
    Validator{"x-consumer-timeout", CheckNonNegIntArg},
};

// The arguments each queue type takes (RabbitMQ 3.10's queue_arguments capability, and 3.12's
// x-consumer-timeout for classic and quorum queues; x-delivery-limit on classic queues is Warren's
// extension). An argument another type takes is refused ("of queue
// type ..."); one no type knows is ignored.
constexpr std::array<std::string_view, 15> kClassicArguments = {
    "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-max-length",
    "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode", "x-queue-version",
    "x-single-active-consumer", "x-queue-type", "x-queue-master-locator", "x-delivery-limit", "x-consumer-timeout"};
constexpr std::array<std::string_view, 16> kQuorumArguments = {
    "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy", "x-expires", "x-max-length",
    "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes", "x-overflow",
    "x-single-active-consumer", "x-queue-type", "x-quorum-initial-group-size", "x-delivery-limit", "x-message-ttl",
    "x-queue-leader-locator", "x-consumer-timeout"};
constexpr std::array<std::string_view, 6> kStreamArguments = {
    "x-max-length-bytes", "x-queue-type", "x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size",
    "x-queue-leader-locator"};

std::span<const std::string_view> TypeArguments(QueueType type) {
  switch (type) {
    case QueueType::kQuorum: return kQuorumArguments;
    case QueueType::kStream: return kStreamArguments;
    case QueueType::kClassic: break;
  }
  return kClassicArguments;
}

bool Contains(std::span<const std::string_view> keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

bool KnownToSomeType(std::string_view key) {
  return Contains(kClassicArguments, key) || Contains(kQuorumArguments, key) || Contains(kStreamArguments, key);
}

// RabbitMQ's module name for a queue type, as its error texts print it.
std::string_view TypeModule(QueueType type) {
  switch (type) {
    case QueueType::kQuorum: return "rabbit_quorum_queue";
    case QueueType::kStream: return "rabbit_stream_queue";
    case QueueType::kClassic: break;
  }
  return "rabbit_classic_queue";
}

}  // namespace

QueueType QueueTypeOf(const amqp::FieldTable& args) {
  const amqp::FieldValue* v = args.Find("x-queue-type");
  const std::string* s = v != nullptr ? v->AsString() : nullptr;
  if (s != nullptr && *s == "quorum") return QueueType::kQuorum;
  if (s != nullptr && *s == "stream") return QueueType::kStream;
  return QueueType::kClassic;
}

namespace {

std::unexpected<Error> InvalidArg(std::string_view key, std::string_view label, const std::string& problem) {
  return Fail(r::kPreconditionFailed, fmt::format("invalid arg '{}' for {}: {}", key, label, problem));
}

// Builds the parsed form; every value present is assumed valid (checked or skipped).
QueueArguments Build(const amqp::FieldTable& args) {
  QueueArguments out;
  auto integer = [&](std::string_view key) -> std::optional<int64_t> {
    const amqp::FieldValue* v = args.Find(key);
    if (v == nullptr || !v->IsInteger()) return std::nullopt;
    return v->AsInt();
  };
  auto string = [&](std::string_view key) -> const std::string* {
    const amqp::FieldValue* v = args.Find(key);
    return v != nullptr ? v->AsString() : nullptr;
  };
  if (auto n = integer("x-message-ttl"); n && *n >= 0 && *n <= static_cast<int64_t>(kMaxExpiry)) {
    out.message_ttl = static_cast<uint32_t>(*n);
  }
  if (auto n = integer("x-expires"); n && *n > 0 && *n <= static_cast<int64_t>(kMaxExpiry)) {
    out.expires = static_cast<uint32_t>(*n);
  }
  if (auto n = integer("x-max-length"); n && *n >= 0) out.max_length = static_cast<uint64_t>(*n);
  if (auto n = integer("x-max-length-bytes"); n && *n >= 0) out.max_length_bytes = static_cast<uint64_t>(*n);
  if (auto n = integer("x-max-priority"); n && *n >= 0 && *n <= kMaxSupportedPriority) {
    out.max_priority = static_cast<uint8_t>(*n);
  }
  if (const std::string* s = string("x-overflow")) {
    if (*s == "reject-publish") out.overflow = Overflow::kRejectPublish;
    if (*s == "reject-publish-dlx") out.overflow = Overflow::kRejectPublishDlx;
  }
  if (const std::string* s = string("x-dead-letter-exchange")) {
    out.dead_letter_exchange = *s;
    if (const std::string* rk = string("x-dead-letter-routing-key")) out.dead_letter_routing_key = *rk;
  }
  out.type = QueueTypeOf(args);
  if (out.type == QueueType::kQuorum && out.overflow == Overflow::kRejectPublishDlx) {
    out.overflow = Overflow::kDropHead;  // RabbitMQ 3.10's quorum queues fall back to drop-head
  }
  // RabbitMQ does not validate it: a negative limit acts as 0 (the first return exceeds it), a
  // value that is no integer never matches (no limit).
  if (auto n = integer("x-delivery-limit")) {
    out.delivery_limit = static_cast<uint32_t>(std::clamp<int64_t>(*n, 0, UINT32_MAX));
  }
  if (const std::string* s = string("x-dead-letter-strategy"); s != nullptr && *s == "at-least-once") {
    out.dead_letter_strategy = DeadLetterStrategy::kAtLeastOnce;
  }
  if (const amqp::FieldValue* v = args.Find("x-single-active-consumer")) {
    out.single_active_consumer = v->AsBool().value_or(false);
  }
  if (auto n = integer("x-consumer-timeout"); n && *n >= 0) out.consumer_timeout = static_cast<uint64_t>(*n);
  return out;
}

}  // namespace

std::string_view QueueTypeName(QueueType type) {
  switch (type) {
    case QueueType::kQuorum: return "quorum";
    case QueueType::kStream: return "stream";
    case QueueType::kClassic: break;
  }
  return "classic";
}

std::string_view FieldTypeName(const amqp::FieldValue& value) {
  switch (value.TypeCode()) {
    case 't': return "bool";
    case 'b': return "byte";
    case 'B': return "unsignedbyte";
    case 's': return "short";
    case 'u': return "unsignedshort";
    case 'I': return "signedint";
    case 'i': return "unsignedint";
    case 'l': return "long";
    case 'f': return "float";
    case 'd': return "double";
    case 'D': return "decimal";
    case 'S': return "longstr";
    case 'x': return "binary";
    case 'A': return "array";
    case 'T': return "timestamp";
    case 'F': return "table";
    case 'V': return "void";
    default: return "unknown";
  }
}

std::string_view QueueTypeModule(QueueType type) { return TypeModule(type); }

Result<QueueArguments> ParseQueueArguments(const amqp::FieldTable& arguments, std::string_view queue_label) {
  // RabbitMQ checks the type first, then which arguments the type takes, then their values.
  if (const amqp::FieldValue* v = arguments.Find("x-queue-type")) {
    if (Problem problem = CheckQueueTypeArg(*v, arguments)) return InvalidArg("x-queue-type", queue_label, *problem);
  }
  const QueueType type = QueueTypeOf(arguments);
  const std::span<const std::string_view> allowed = TypeArguments(type);
  for (const auto& [key, value] : arguments.entries) {
    if (!Contains(allowed, key) && KnownToSomeType(key)) {
      return Fail(r::kPreconditionFailed,
                  fmt::format("invalid arg '{}' for {} of queue type {}", key, queue_label, TypeModule(type)));
    }
  }
  for (const Validator& validator : kQueueValidators) {
    const amqp::FieldValue* v = arguments.Find(validator.key);
    if (v == nullptr) continue;
    if (Problem problem = validator.check(*v, arguments)) return InvalidArg(validator.key, queue_label, *problem);
  }
  return Build(arguments);
}

QueueArguments ParseValidQueueArguments(const amqp::FieldTable& arguments) { return Build(arguments); }

Result<> CheckQueueTypeProperties(QueueType type, bool durable, bool exclusive, bool auto_delete, bool server_named,
                                  std::string_view queue_label) {
  if (type != QueueType::kQuorum && type != QueueType::kStream) return {};
  if (server_named) {
    return Fail(r::kPreconditionFailed, fmt::format("Cannot declare a server-named queue for type {}", TypeModule(type)));
  }
  auto invalid = [&](std::string_view property) {
    return Fail(r::kPreconditionFailed, fmt::format("invalid property '{}' for {}", property, queue_label));
  };
  if (auto_delete) return invalid("auto-delete");
  if (exclusive) return invalid("exclusive-owner");
  if (!durable) return invalid("non-durable");
  return {};
}

Result<int32_t> ParseConsumerPriority(const amqp::FieldTable& arguments, std::string_view queue_label) {
  if (const amqp::FieldValue* v = arguments.Find("x-cancel-on-ha-failover")) {
    if (Problem problem = CheckBoolArg(*v, arguments)) {
      return InvalidArg("x-cancel-on-ha-failover", queue_label, *problem);
    }
  }
  const amqp::FieldValue* v = arguments.Find("x-priority");
  if (v == nullptr) return 0;
  if (Problem problem = CheckInt(*v)) return InvalidArg("x-priority", queue_label, *problem);
  return static_cast<int32_t>(std::clamp<int64_t>(*v->AsInt(), INT32_MIN, INT32_MAX));
}

Result<uint32_t> ParseExpiration(std::string_view expiration) {
  // Erlang's string:to_integer: an optional sign and digits at the start, the rest left over.
  auto fail = [&](std::string_view problem) {
    return Fail(r::kPreconditionFailed, fmt::format("invalid expiration '{}': {}", expiration, problem));
  };
  size_t pos = 0;
  bool negative = false;
  if (pos < expiration.size() && (expiration[pos] == '+' || expiration[pos] == '-')) {
    negative = expiration[pos] == '-';
    ++pos;
  }
  const size_t digits_begin = pos;
  while (pos < expiration.size() && expiration[pos] >= '0' && expiration[pos] <= '9') ++pos;
  if (pos == digits_begin) return fail("no_integer");
  std::string_view digits = expiration.substr(digits_begin, pos - digits_begin);
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  if (pos != expiration.size()) {
    return fail(fmt::format("{{leftover_string,\"{}\"}}", expiration.substr(pos)));
  }
  const bool zero = digits == "0";
  if (negative && !zero) return fail(fmt::format("{{value_negative,-{}}}", digits));
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value > kMaxExpiry) {
    return fail(fmt::format("{{value_too_large,{}}}", digits));
  }
  return static_cast<uint32_t>(value);
}

}  // namespace warren::broker
