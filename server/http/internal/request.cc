#include "server/http/internal/request.h"

#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/field_table_json.h"

namespace warren::http::internal {

void NotFound() { throw HttpError{404, "Object Not Found", "Not Found"}; }
void BadRequest(std::string reason) { throw HttpError{400, "bad_request", std::move(reason)}; }
void NotAuthorised(std::string reason) { throw HttpError{401, "not_authorised", std::move(reason)}; }

void BrokerError(const broker::Error& e) {
  if (e.code == amqp::reply::kNotFound) throw HttpError{404, "not_found", e.text};
  if (e.code == amqp::reply::kAccessRefused) NotAuthorised(e.text);
  BadRequest(e.text);
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Reply JsonReply(const json& j, int status) { return Reply{status, Dump(j), false, {}, {}}; }
Reply NoContent() { return Reply{204, {}, false, {}, {}}; }
Reply Created() { return Reply{201, {}, false, {}, {}}; }

amqp::FieldTable JsonToTable(const json& j, std::string_view what) {
  if (j.is_null()) return {};
  if (!j.is_object()) BadRequest(fmt::format("{} must be an object", what));
  auto table = broker::FieldTableFromJson(j);
  if (!table) BadRequest(fmt::format("{}: {}", what, table.error()));
  return std::move(*table);
}

json ParseBody(const Request& req) {
  if (req.body.empty()) return json::object();
  auto parsed = broker::ParseJson(req.body);
  if (!parsed) BadRequest(parsed.error());
  json j = std::move(*parsed);
  if (!j.is_object()) BadRequest("not_json_object");
  return j;
}

bool BoolField(const json& body, const char* key, bool fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) return it->get<std::string>() == "true";
  BadRequest(fmt::format("{} must be a boolean", key));
}

std::string StringField(const json& body, const char* key, std::optional<std::string> fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (!fallback) BadRequest(fmt::format("{} not found", key));
    return *fallback;
  }
  if (!it->is_string()) BadRequest(fmt::format("{} must be a string", key));
  return it->get<std::string>();
}

std::optional<int64_t> IntField(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (!s.empty() && s.size() < 18 && s.find_first_not_of("0123456789") == std::string::npos) return std::stoll(s);
  }
  BadRequest(fmt::format("{} must be a non-negative integer", key));
}

bool QueryFlag(const Request& req, const std::string& name) {
  auto v = req.Param(name);
  return v && *v == "true";
}

std::string ExchangeName(const std::string& s) { return s == "amq.default" ? std::string() : s; }

}  // namespace warren::http::internal
