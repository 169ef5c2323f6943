#include "server/broker/field_table_json.h"

#include <type_traits>

#include <fmt/format.h>

namespace warren::broker {

using json = nlohmann::json;

namespace {

json ValueToJson(const amqp::FieldValue& value) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, amqp::Void>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, amqp::Decimal>) {
          double v = x.value;
          for (int i = 0; i < x.scale; ++i) v /= 10;
          return v;
        } else if constexpr (std::is_same_v<T, std::string>) {
          return x;
        } else if constexpr (std::is_same_v<T, amqp::ByteArray>) {
          return x.bytes;
        } else if constexpr (std::is_same_v<T, amqp::Timestamp>) {
          return x.seconds;
        } else if constexpr (std::is_same_v<T, std::shared_ptr<amqp::FieldArray>>) {
          json a = json::array();
          if (x) {
            for (const auto& e : *x) a.push_back(ValueToJson(e));
          }
          return a;
        } else if constexpr (std::is_same_v<T, std::shared_ptr<amqp::FieldTable>>) {
          return x ? FieldTableToJson(*x) : json::object();
        } else {
          return x;  // bool and numbers
        }
      },
      value.v);
}

// One conversion: the container levels left and the encoded bytes left.
struct Budget {
  int depth;
  size_t bytes;
  // Takes `n` encoded bytes; false when they pass the cap.
  bool Take(size_t n) {
    if (n > bytes) return false;
    bytes -= n;
    return true;
  }
};

const std::string kTooLarge = fmt::format("table larger than {} bytes", kMaxJsonTableBytes);
const std::string kTooDeep = fmt::format("tables and arrays nested deeper than {} levels", amqp::kMaxFieldNesting);

std::expected<amqp::FieldTable, std::string> TableFromJson(const json& object, Budget& budget);

std::expected<amqp::FieldValue, std::string> JsonToValue(const json& j, Budget& budget) {
  // A type letter and the largest fixed-size payload (8 bytes); strings add their length.
  if (!budget.Take(9)) return std::unexpected(kTooLarge);
  switch (j.type()) {
    case json::value_t::null:
      return amqp::FieldValue{amqp::Void{}};
    case json::value_t::boolean:
      return amqp::FieldValue{j.get<bool>()};
    case json::value_t::number_integer:
      return amqp::FieldValue{j.get<int64_t>()};
    case json::value_t::number_unsigned:
      return amqp::FieldValue{static_cast<int64_t>(j.get<uint64_t>())};
    case json::value_t::number_float:
      return amqp::FieldValue{j.get<double>()};
    case json::value_t::string:
      if (!budget.Take(j.get_ref<const std::string&>().size())) return std::unexpected(kTooLarge);
      return amqp::FieldValue{j.get<std::string>()};
    case json::value_t::array: {
      if (budget.depth == 0) return std::unexpected(kTooDeep);
      --budget.depth;
      amqp::FieldArray a;
      for (const json& e : j) {
        auto v = JsonToValue(e, budget);
        if (!v) return std::unexpected(v.error());
        a.push_back(std::move(*v));
      }
      ++budget.depth;
      return amqp::FieldValue::Array(std::move(a));
    }
    case json::value_t::object: {
      auto t = TableFromJson(j, budget);
      if (!t) return std::unexpected(t.error());
      return amqp::FieldValue::Table(std::move(*t));
    }
    default:
      return std::unexpected(std::string("unsupported JSON value"));
  }
}

std::expected<amqp::FieldTable, std::string> TableFromJson(const json& object, Budget& budget) {
  if (budget.depth == 0) return std::unexpected(kTooDeep);
  --budget.depth;
  amqp::FieldTable t;
  for (const auto& [k, e] : object.items()) {
    if (k.size() > 255) return std::unexpected(std::string("key longer than 255 bytes"));
    if (!budget.Take(1 + k.size())) return std::unexpected(kTooLarge);
    auto v = JsonToValue(e, budget);
    if (!v) return std::unexpected(v.error());
    t.entries.emplace_back(k, std::move(*v));
  }
  ++budget.depth;
  return t;
}

}  // namespace

json FieldTableToJson(const amqp::FieldTable& table) {
  json out = json::object();
  for (const auto& [key, value] : table.entries) out[key] = ValueToJson(value);
  return out;
}

std::expected<amqp::FieldTable, std::string> FieldTableFromJson(const json& object) {
  Budget budget{amqp::kMaxFieldNesting, kMaxJsonTableBytes};
  return TableFromJson(object, budget);
}

std::expected<json, std::string> ParseJson(std::string_view text) {
  bool too_deep = false;
  // The parser itself is iterative; the callback keeps what it builds (and what the conversions
  // and the destructor later walk) within the depth limit.
  json::parser_callback_t limit = [&too_deep](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    return !too_deep;
  };
  json doc = json::parse(text.begin(), text.end(), limit, /*allow_exceptions=*/false);
  if (too_deep) return std::unexpected(fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth));
  if (doc.is_discarded()) return std::unexpected(std::string("not valid JSON"));
  return doc;
}

}  // namespace warren::broker
