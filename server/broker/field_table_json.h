// Field tables as JSON, the way RabbitMQ's management API and definitions files write them:
// null for void, booleans, numbers (decimals as numbers, timestamps as seconds), strings (byte
// arrays too), arrays and objects.
#pragma once

#include <expected>
#include <string>

#include <nlohmann/json.hpp>

#include "server/amqp/field_table.h"

namespace warren::broker {

nlohmann::json FieldTableToJson(const amqp::FieldTable& table);
// REQUIRES: `object` is a JSON object. The error names the unsupported value.
std::expected<amqp::FieldTable, std::string> FieldTableFromJson(const nlohmann::json& object);

}  // namespace warren::broker
