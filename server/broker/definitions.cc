#include "server/broker/definitions.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "server/amqp/constants.h"
#include "server/broker/password.h"

namespace warren::broker {

namespace r = amqp::reply;
using nlohmann::json;

namespace {

std::unexpected<Error> Invalid(std::string text) { return Fail(r::kPreconditionFailed, std::move(text)); }

struct UserDef {
  std::string name;
  std::string hash;
  std::vector<std::string> tags;
};

// A string member; `required` missing or a non-string value is an error.
Result<std::string> StringField(const json& entry, const char* key, std::string_view what, bool required) {
  auto it = entry.find(key);
  if (it == entry.end() || it->is_null()) {
    if (required) return Invalid(fmt::format("{}: missing \"{}\"", what, key));
    return std::string();
  }
  if (!it->is_string()) return Invalid(fmt::format("{}: \"{}\" must be a string", what, key));
  return it->get<std::string>();
}

std::vector<std::string> SplitTags(std::string_view text) {
  std::vector<std::string> tags;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view tag = text.substr(start, comma - start);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (!tag.empty()) tags.emplace_back(tag);
    start = comma + 1;
  }
  return tags;
}

Result<std::vector<UserDef>> ParseUsers(const json& users) {
  std::vector<UserDef> out;
  if (!users.is_array()) return Invalid("\"users\" must be an array");
  for (size_t i = 0; i < users.size(); ++i) {
    const json& u = users[i];
    std::string what = fmt::format("users[{}]", i);
    if (!u.is_object()) return Invalid(what + " must be an object");
    auto name = StringField(u, "name", what, true);
    if (!name) return std::unexpected(name.error());
    if (name->empty()) return Invalid(what + ": empty name");
    what = fmt::format("user '{}'", *name);
    auto hash = StringField(u, "password_hash", what, false);
    if (!hash) return std::unexpected(hash.error());
    auto algorithm = StringField(u, "hashing_algorithm", what, false);
    if (!algorithm) return std::unexpected(algorithm.error());
    auto password = StringField(u, "password", what, false);
    if (!password) return std::unexpected(password.error());
    UserDef def{*name, {}, {}};
    if (!hash->empty()) {
      if (!algorithm->empty() && *algorithm != kSha256Hashing) {
        return Invalid(fmt::format("{}: unsupported hashing_algorithm '{}' (only {})", what, *algorithm,
                                   kSha256Hashing));
      }
      if (!IsValidPasswordHash(*hash)) {
        return Invalid(fmt::format("{}: password_hash is not a base64 salted SHA-256 hash", what));
      }
      def.hash = *hash;
    } else if (!password->empty()) {
      def.hash = HashPassword(*password);
    }
    if (auto tags = u.find("tags"); tags != u.end() && !tags->is_null()) {
      if (tags->is_string()) {
        def.tags = SplitTags(tags->get<std::string>());
      } else if (tags->is_array()) {
        for (const json& t : *tags) {
          if (!t.is_string()) return Invalid(what + ": \"tags\" entries must be strings");
          def.tags.push_back(t.get<std::string>());
        }
      } else {
        return Invalid(what + ": \"tags\" must be a string or an array of strings");
      }
    }
    out.push_back(std::move(def));
  }
  return out;
}

}  // namespace

Result<DefinitionsSummary> LoadDefinitions(Broker& broker, std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid("not valid JSON");
  if (!doc.is_object()) return Invalid("the top level must be a JSON object");

  DefinitionsSummary summary;
  std::vector<std::string> vhosts;
  std::vector<UserDef> users;
  std::vector<Permission> permissions;
  for (const auto& [key, value] : doc.items()) {
    if (key == "vhosts") {
      if (!value.is_array()) return Invalid("\"vhosts\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_object()) return Invalid(fmt::format("vhosts[{}] must be an object", i));
        auto name = StringField(value[i], "name", fmt::format("vhosts[{}]", i), true);
        if (!name) return std::unexpected(name.error());
        if (name->empty()) return Invalid(fmt::format("vhosts[{}]: empty name", i));
        vhosts.push_back(*name);
      }
    } else if (key == "users") {
      auto parsed = ParseUsers(value);
      if (!parsed) return std::unexpected(parsed.error());
      users = std::move(*parsed);
    } else if (key == "permissions") {
      if (!value.is_array()) return Invalid("\"permissions\" must be an array");
      for (size_t i = 0; i < value.size(); ++i) {
        const json& p = value[i];
        const std::string what = fmt::format("permissions[{}]", i);
        if (!p.is_object()) return Invalid(what + " must be an object");
        Permission perm;
        for (auto [field, out] : {std::pair{"user", &perm.user}, std::pair{"vhost", &perm.vhost},
                                  std::pair{"configure", &perm.configure}, std::pair{"write", &perm.write},
                                  std::pair{"read", &perm.read}}) {
          auto v = StringField(p, field, what, true);
          if (!v) return std::unexpected(v.error());
          *out = std::move(*v);
        }
        // Validate the regexes before changing anything.
        if (auto compiled = CompiledPermission::Compile(perm); !compiled) {
          return Invalid(fmt::format("{} (user '{}', vhost '{}'): {}", what, perm.user, perm.vhost,
                                     compiled.error().text));
        }
        permissions.push_back(std::move(perm));
      }
    } else {
      summary.ignored.push_back(key);
    }
  }
  // Every permission must name a user and vhost that exist or are defined here.
  for (const Permission& p : permissions) {
    const bool user_known = broker.FindUser(p.user) != nullptr ||
                            std::any_of(users.begin(), users.end(), [&](const UserDef& u) { return u.name == p.user; });
    if (!user_known) return Invalid(fmt::format("permission for unknown user '{}'", p.user));
    const bool vhost_known = broker.FindVhost(p.vhost) != nullptr ||
                             std::find(vhosts.begin(), vhosts.end(), p.vhost) != vhosts.end();
    if (!vhost_known) return Invalid(fmt::format("permission in unknown vhost '{}'", p.vhost));
  }

  for (const std::string& v : vhosts) {
    if (broker.FindVhost(v) == nullptr) {
      if (auto added = broker.AddVhost(v); !added) return std::unexpected(added.error());
    }
  }
  summary.vhosts = vhosts.size();
  for (UserDef& u : users) {
    Result<> done = broker.FindUser(u.name) == nullptr ? broker.AddUser(u.name, u.hash, u.tags)
                                                       : broker.ChangePassword(u.name, u.hash);
    if (done) done = broker.SetUserTags(u.name, std::move(u.tags));
    if (!done) return std::unexpected(done.error());
  }
  summary.users = users.size();
  for (const Permission& p : permissions) {
    if (auto set = broker.SetPermissions(p.user, p.vhost, p.configure, p.write, p.read); !set) {
      return std::unexpected(set.error());
    }
  }
  summary.permissions = permissions.size();
  return summary;
}

}  // namespace warren::broker
