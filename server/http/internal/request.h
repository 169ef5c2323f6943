// A management API request and its reply as they travel between the HTTP threads and the broker
// thread, the errors a handler answers with, and the readers of JSON bodies and query flags
// that answer 400 on bad input.
//
// Error handling: a handler on the broker thread throws HttpError (through NotFound,
// BadRequest, ...) and Api::Dispatch turns it into the JSON error reply; nothing else throws
// past Dispatch.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/amqp/field_table.h"
#include "server/broker/error.h"

namespace warren::http::internal {

using nlohmann::json;

struct Request {
  std::string method;
  std::vector<std::string> segments;  // decoded path segments after "/api"
  std::multimap<std::string, std::string> params;
  std::string body;
  bool has_credentials = false;
  std::string bearer;  // Authorization: Bearer <token>
  std::string remote_addr;
  std::string user;
  std::string password;

  std::optional<std::string> Param(const std::string& name) const {
    auto it = params.find(name);
    if (it == params.end()) return std::nullopt;
    return it->second;
  }
};

struct Reply {
  int status = 200;
  std::string body;  // JSON text, or empty (201, 204)
  bool authenticate = false;  // add WWW-Authenticate
  std::string location;
  // Non-empty: the broker thread only admitted the request, and the HTTP thread that carries it
  // runs this to build the real reply — slow work that touches no broker state (a backup).
  std::function<Reply()> off_broker;
};

struct HttpError {
  int status;
  std::string error;
  std::string reason;
};

[[noreturn]] void NotFound();
[[noreturn]] void BadRequest(std::string reason);
[[noreturn]] void NotAuthorised(std::string reason);
// A broker error from an operation RabbitMQ runs on an internal AMQP channel, mapped as its
// management plugin maps channel errors (404 not found, 401 access refused, 400 otherwise).
[[noreturn]] void BrokerError(const broker::Error& e);

std::string Dump(const json& j);
Reply JsonReply(const json& j, int status = 200);
Reply NoContent();
Reply Created();

// The JSON object of the request body ({} when empty); 400 when it is not a JSON object.
json ParseBody(const Request& req);
// Fields of a body; a field of the wrong type is 400. A missing field takes the fallback, or is
// 400 when there is none.
bool BoolField(const json& body, const char* key, bool fallback);
std::string StringField(const json& body, const char* key, std::optional<std::string> fallback);
// A non-negative integer given as a number or as a string of digits (rabbitmqadmin sends
// strings); nullopt when absent.
std::optional<int64_t> IntField(const json& body, const char* key);
// A field table in RabbitMQ's JSON shape (broker/field_table_json.h); null is an empty table.
amqp::FieldTable JsonToTable(const json& j, std::string_view what);
// ?name=true
bool QueryFlag(const Request& req, const std::string& name);

// The exchange name in URLs: RabbitMQ writes the default exchange as amq.default.
std::string ExchangeName(const std::string& s);

}  // namespace warren::http::internal
