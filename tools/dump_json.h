// Rendering stored bytes for people: AMQP field tables and properties as JSON, bodies as text
// or hex. Used by warren-dump.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "server/amqp/field_table.h"

namespace warren::tools {

std::string Hex(std::string_view bytes);
std::string Base64(std::string_view bytes);
// True when bytes are valid UTF-8 without control characters other than \t \n \r.
bool IsPrintableText(std::string_view bytes);

nlohmann::json FieldValueToJson(const amqp::FieldValue& v);
nlohmann::json FieldTableToJson(const amqp::FieldTable& t);
// An encoded field table (u32 length + entries) as a JSON object; empty bytes -> {}.
// *ok = false (and a hex dump is returned) when the bytes do not decode.
nlohmann::json EncodedTableToJson(std::string_view encoded, bool* ok);
// Raw basic properties (flags + list) as a JSON object of the present properties.
nlohmann::json PropertiesToJson(std::string_view raw, bool* ok);
// A body: {"text": ...} when printable and !force_hex, else {"hex": ...}.
nlohmann::json BodyToJson(std::string_view body, bool force_hex);

// JSON text safe for any input (invalid UTF-8 is replaced, not thrown on).
std::string Dump(const nlohmann::json& j, int indent = -1);

}  // namespace warren::tools
