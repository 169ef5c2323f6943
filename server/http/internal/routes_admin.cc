#include <fmt/format.h>

#include "server/broker/definitions.h"
#include "server/broker/password.h"
#include "server/http/internal/api.h"

// Users, permissions, vhost changes and definitions: administrators only.

namespace warren::http::internal {

namespace {

json UserJson(const broker::User& u) {
  return json{{"name", u.name},
              {"password_hash", u.password_hash},
              {"hashing_algorithm", "rabbit_password_hashing_sha256"},
              {"tags", u.tags},
              {"limits", json::object()}};
}

json PermissionJson(const broker::Permission& p) {
  return json{{"user", p.user}, {"vhost", p.vhost}, {"configure", p.configure}, {"write", p.write}, {"read", p.read}};
}

json TopicPermissionsJson(const std::vector<broker::TopicPermission>& permissions) {
  json out = json::array();
  for (const auto& p : permissions) {
    out.push_back(json{{"user", p.user}, {"vhost", p.vhost}, {"exchange", p.exchange}, {"write", p.write},
                       {"read", p.read}});
  }
  return out;
}

std::vector<std::string> TagsFromJson(const json& body) {
  std::vector<std::string> tags;
  auto it = body.find("tags");
  if (it == body.end() || it->is_null()) return tags;
  if (it->is_array()) {
    for (const auto& t : *it) {
      if (!t.is_string()) BadRequest("tags must be strings");
      if (!t.get_ref<const std::string&>().empty()) tags.push_back(t.get<std::string>());
    }
    return tags;
  }
  if (!it->is_string()) BadRequest("tags must be a string or a list");
  std::string_view rest = it->get_ref<const std::string&>();
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view tag = rest.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (!tag.empty()) tags.emplace_back(tag);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return tags;
}

}  // namespace

void Api::RequireVhostAndUser(std::string_view vhost, std::string_view user) const {
  if (broker_.FindVhost(vhost) == nullptr || broker_.FindUser(user) == nullptr) BadRequest("vhost_or_user_not_found");
}

void Api::RequireAdmin(const Ctx& ctx) {
  if (!HasTag(ctx.user, "administrator")) NotAuthorised("Not administrator user");
}

json Api::PermissionsJson(std::string_view user, std::string_view vhost) const {
  json out = json::array();
  for (const auto& p : broker_.ListPermissions(user, vhost)) out.push_back(PermissionJson(p));
  return out;
}

void Api::AddAdminRoutes() {
  // Definitions (RabbitMQ's export/import format; broker/definitions.*). The import is all or
  // nothing: an invalid document is 400 naming the bad entry, and nothing changes.
  On("GET", "definitions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    return Reply{200, broker::ExportDefinitions(broker_), false, {}, {}};
  });
  On("POST", "definitions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (auto loaded = broker::LoadDefinitions(broker_, ctx.req.body); !loaded) BadRequest(loaded.error().text);
    return NoContent();
  });
  On("PUT", "vhosts/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindVhost(ctx.args[0]) != nullptr) return NoContent();
    if (auto ok = broker_.AddVhost(ctx.args[0]); !ok) BrokerError(ok.error());
    return Created();
  });
  On("DELETE", "vhosts/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindVhost(ctx.args[0]) == nullptr) NotFound();
    if (auto ok = broker_.DeleteVhost(ctx.args[0]); !ok) BrokerError(ok.error());
    return NoContent();
  });
  On("GET", "vhosts/*/permissions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindVhost(ctx.args[0]) == nullptr) NotFound();
    return JsonReply(PermissionsJson({}, ctx.args[0]));
  });
  On("GET", "users", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    json out = json::array();
    for (const auto& u : broker_.ListUsers()) out.push_back(UserJson(u));
    return JsonReply(out);
  });
  On("GET", "users/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    const broker::User* u = broker_.FindUser(ctx.args[0]);
    if (u == nullptr) NotFound();
    return JsonReply(UserJson(*u));
  });
  On("PUT", "users/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    const json body = ParseBody(ctx.req);
    const std::string& name = ctx.args[0];
    std::optional<std::string> hash;
    if (auto it = body.find("password"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) BadRequest("password must be a string");
      hash = broker::HashPassword(it->get<std::string>());
    } else if (auto h = body.find("password_hash"); h != body.end() && !h->is_null()) {
      if (!h->is_string()) BadRequest("password_hash must be a string");
      const std::string& given = h->get_ref<const std::string&>();
      if (!given.empty() && !broker::IsValidPasswordHash(given)) BadRequest("invalid password_hash");
      hash = given;
    }
    if (auto a = body.find("hashing_algorithm"); a != body.end() && a->is_string() &&
                                                *a != "rabbit_password_hashing_sha256") {
      BadRequest(fmt::format("unsupported hashing_algorithm '{}'", a->get<std::string>()));
    }
    std::vector<std::string> tags = TagsFromJson(body);
    if (broker_.FindUser(name) == nullptr) {
      if (auto ok = broker_.AddUser(name, hash.value_or(""), std::move(tags)); !ok) BrokerError(ok.error());
      return Created();
    }
    if (hash) {
      if (auto ok = broker_.ChangePassword(name, *hash); !ok) BrokerError(ok.error());
    }
    if (auto ok = broker_.SetUserTags(name, std::move(tags)); !ok) BrokerError(ok.error());
    return NoContent();
  });
  On("DELETE", "users/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindUser(ctx.args[0]) == nullptr) NotFound();
    if (auto ok = broker_.DeleteUser(ctx.args[0]); !ok) BrokerError(ok.error());
    return NoContent();
  });
  On("GET", "users/*/permissions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindUser(ctx.args[0]) == nullptr) NotFound();
    return JsonReply(PermissionsJson(ctx.args[0], {}));
  });
  On("GET", "permissions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    return JsonReply(PermissionsJson({}, {}));
  });
  On("GET", "permissions/*/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    const broker::Permission* p = broker_.FindPermission(ctx.args[1], ctx.args[0]);
    if (p == nullptr) NotFound();
    return JsonReply(PermissionJson(*p));
  });
  On("PUT", "permissions/*/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    const json body = ParseBody(ctx.req);
    const std::string& vhost = ctx.args[0];
    const std::string& user = ctx.args[1];
    RequireVhostAndUser(vhost, user);
    const bool existed = broker_.FindPermission(user, vhost) != nullptr;
    auto ok = broker_.SetPermissions(user, vhost, StringField(body, "configure", std::nullopt),
                                     StringField(body, "write", std::nullopt),
                                     StringField(body, "read", std::nullopt));
    if (!ok) BrokerError(ok.error());
    return existed ? NoContent() : Created();
  });
  On("DELETE", "permissions/*/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindPermission(ctx.args[1], ctx.args[0]) == nullptr) NotFound();
    if (auto ok = broker_.ClearPermissions(ctx.args[1], ctx.args[0]); !ok) BrokerError(ok.error());
    return NoContent();
  });
  AddTopicPermissionRoutes();
}

// RabbitMQ's /api/topic-permissions: one entry per user, vhost and topic exchange.
void Api::AddTopicPermissionRoutes() {
  On("GET", "topic-permissions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    return JsonReply(TopicPermissionsJson(broker_.ListTopicPermissions()));
  });
  On("GET", "users/*/topic-permissions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindUser(ctx.args[0]) == nullptr) NotFound();
    return JsonReply(TopicPermissionsJson(broker_.ListTopicPermissions(ctx.args[0], {})));
  });
  On("GET", "vhosts/*/topic-permissions", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindVhost(ctx.args[0]) == nullptr) NotFound();
    return JsonReply(TopicPermissionsJson(broker_.ListTopicPermissions({}, ctx.args[0])));
  });
  // As RabbitMQ: 404 when the user has none in the vhost; PUT is 201 for the user's first one there.
  On("GET", "topic-permissions/*/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    auto permissions = broker_.ListTopicPermissions(ctx.args[1], ctx.args[0]);
    if (permissions.empty()) NotFound();
    return JsonReply(TopicPermissionsJson(permissions));
  });
  On("PUT", "topic-permissions/*/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    const json body = ParseBody(ctx.req);
    if (!body.contains("exchange")) BadRequest("[{key_missing,exchange}]");
    RequireVhostAndUser(ctx.args[0], ctx.args[1]);
    const bool first = broker_.ListTopicPermissions(ctx.args[1], ctx.args[0]).empty();
    auto ok = broker_.SetTopicPermission(broker::TopicPermission{
        ctx.args[1], ctx.args[0], StringField(body, "exchange", std::nullopt),
        StringField(body, "write", std::nullopt), StringField(body, "read", std::nullopt)});
    if (!ok) BrokerError(ok.error());
    return first ? Created() : NoContent();
  });
  // ?exchange=X clears that exchange's only; otherwise all of the user's in the vhost.
  On("DELETE", "topic-permissions/*/*", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    if (broker_.FindVhost(ctx.args[0]) == nullptr || broker_.FindUser(ctx.args[1]) == nullptr) NotFound();
    auto ok = broker_.ClearTopicPermissions(ctx.args[1], ctx.args[0], ctx.req.Param("exchange").value_or(""));
    if (!ok) BrokerError(ok.error());
    return NoContent();
  });
}

}  // namespace warren::http::internal
