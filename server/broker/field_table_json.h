// Field tables as JSON, the way RabbitMQ's management API and definitions files write them:
// null for void, booleans, numbers (decimals as numbers, timestamps as seconds), strings (byte
// arrays too), arrays and objects.
//
// Limits (every JSON the broker takes in from outside goes through ParseJson, every table through
// FieldTableFromJson): a table may nest at most amqp::kMaxFieldNesting (64) containers, counting
// itself, the codec's own limit, so that nothing accepted here, stored, and decoded again at the
// next start can be refused by the decoder; and it may encode to at most kMaxJsonTableBytes. A
// JSON text may nest at most kMaxJsonDepth containers: enough for a table at the field-table
// limit inside the deepest envelope (a definitions file's {"queues": [{"arguments": ...}]}).
// ParseJson is nlohmann's iterative parser; the conversions recurse at most kMaxFieldNesting deep.
#pragma once

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "server/amqp/field_table.h"

namespace warren::broker {

inline constexpr size_t kMaxJsonTableBytes = 64 << 10;
inline constexpr int kMaxJsonDepth = amqp::kMaxFieldNesting + 3;

// Parses `text`; the error says what is wrong ("not valid JSON", nesting beyond kMaxJsonDepth).
std::expected<nlohmann::json, std::string> ParseJson(std::string_view text);

nlohmann::json FieldTableToJson(const amqp::FieldTable& table);
// REQUIRES: `object` is a JSON object. The error names the unsupported value or the limit passed.
std::expected<amqp::FieldTable, std::string> FieldTableFromJson(const nlohmann::json& object);

}  // namespace warren::broker
