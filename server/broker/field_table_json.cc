#include "server/broker/field_table_json.h"

#include <type_traits>

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

std::expected<amqp::FieldValue, std::string> JsonToValue(const json& j) {
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
      return amqp::FieldValue{j.get<std::string>()};
    case json::value_t::array: {
      amqp::FieldArray a;
      for (const json& e : j) {
        auto v = JsonToValue(e);
        if (!v) return std::unexpected(v.error());
        a.push_back(std::move(*v));
      }
      return amqp::FieldValue::Array(std::move(a));
    }
    case json::value_t::object: {
      auto t = FieldTableFromJson(j);
      if (!t) return std::unexpected(t.error());
      return amqp::FieldValue::Table(std::move(*t));
    }
    default:
      return std::unexpected(std::string("unsupported JSON value"));
  }
}

}  // namespace

json FieldTableToJson(const amqp::FieldTable& table) {
  json out = json::object();
  for (const auto& [key, value] : table.entries) out[key] = ValueToJson(value);
  return out;
}

std::expected<amqp::FieldTable, std::string> FieldTableFromJson(const json& object) {
  amqp::FieldTable t;
  for (const auto& [k, e] : object.items()) {
    auto v = JsonToValue(e);
    if (!v) return std::unexpected(v.error());
    t.entries.emplace_back(k, std::move(*v));
  }
  return t;
}

}  // namespace warren::broker
