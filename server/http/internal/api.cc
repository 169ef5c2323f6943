#include "server/http/internal/api.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "server/http/loopback.h"
#include "server/net/connection.h"
#include "server/net/server.h"

namespace warren::http::internal {

namespace {

// Compares a presented secret with the expected one in time independent of where they differ.
bool SameSecret(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  if (expected.empty()) return false;
  for (size_t i = 0; i < given.size(); ++i) diff |= given[i] ^ expected[i % expected.size()];
  return diff == 0;
}

}  // namespace

bool HasTag(const broker::User& user, std::string_view tag) {
  for (const auto& t : user.tags) {
    if (t == tag) return true;
  }
  return false;
}

Api::Api(broker::Broker& broker, net::Server& server, ManagementOptions options)
    : broker_(broker), server_(server), options_(std::move(options)) {
  AddObjectRoutes();
  AddMessageRoutes();
  AddRuntimeRoutes();
  AddAdminRoutes();
  AddPolicyRoutes();
  AddBackupRoute();
}

Reply Api::Dispatch(const Request& req) {
  try {
    return Serve(req);
  } catch (const HttpError& e) {
    return JsonReply(json{{"error", e.error}, {"reason", e.reason}}, e.status);
  } catch (const std::exception& e) {
    spdlog::error("management API: {} /api/{}: {}", req.method, fmt::join(req.segments, "/"), e.what());
    return JsonReply(json{{"error", "internal_server_error"}, {"reason", e.what()}}, 500);
  }
}


void Api::On(std::string method, std::string_view path, Handler handler) {
  Route r{std::move(method), {}, std::move(handler)};
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    r.pattern.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  routes_.push_back(std::move(r));
}

std::variant<Reply, Api::Admission> Api::Admit(const Request& req) {
  Admission a;
  bool path_exists = false;
  for (const Route& r : routes_) {
    if (r.pattern.size() != req.segments.size()) continue;
    bool match = true;
    for (size_t i = 0; i < r.pattern.size() && match; ++i) {
      match = r.pattern[i] == "*" || r.pattern[i] == req.segments[i];
    }
    if (!match) continue;
    path_exists = true;
    if (r.method != req.method) continue;
    a.route = &r;
    for (size_t i = 0; i < r.pattern.size(); ++i) {
      if (r.pattern[i] == "*") a.args.push_back(req.segments[i]);
    }
    break;
  }
  if (a.route == nullptr && !path_exists) NotFound();
  // Authenticate before revealing anything else.
  static const broker::User kTokenUser{"warrenctl", "", {"administrator"}};
  const bool token_given = !options_.admin_token.empty() && SameSecret(req.bearer, options_.admin_token);
  // The token file is readable on this machine only; from elsewhere it is not a credential.
  const bool by_token = token_given && IsLoopbackAddress(req.remote_addr);
  if (token_given && !by_token) {
    spdlog::warn("management API: HTTP access denied: the local admin token presented from {}", req.remote_addr);
  }
  if (by_token) {
    if (a.route == nullptr) return Reply{405, {}, false, {}, {}};
    a.user = &kTokenUser;
    a.sees_all = true;
    a.token = true;
    return a;
  }
  const broker::User* user = req.has_credentials ? broker_.Authenticate(req.user, req.password) : nullptr;
  if (user == nullptr) {
    if (req.has_credentials) spdlog::warn("management API: HTTP access denied: user '{}' - invalid credentials", req.user);
    // RabbitMQ's texts: no body without credentials, and "not_authorized" spelt so here only.
    Reply r = req.has_credentials ? JsonReply(json{{"error", "not_authorized"}, {"reason", "Login failed"}}, 401)
                                  : Reply{401, {}, false, {}, {}};
    r.authenticate = true;
    return r;
  }
  if (server_.IsLoopbackOnly(user->name) && !IsLoopbackAddress(req.remote_addr)) {
    spdlog::warn("management API: HTTP access denied: user '{}' - User can only log in via localhost", user->name);
    NotAuthorised("User can only log in via localhost");
  }
  const bool sees_all = HasTag(*user, "administrator") || HasTag(*user, "monitoring");
  // As RabbitMQ's is_mgmt_user: policymakers are management users too.
  if (!sees_all && !HasTag(*user, "management") && !HasTag(*user, "policymaker")) {
    spdlog::warn("management API: HTTP access denied: user '{}' - Not management user", user->name);
    NotAuthorised("Not management user");
  }
  if (a.route == nullptr) return Reply{405, {}, false, {}, {}};
  a.user = user;
  a.sees_all = sees_all;
  return a;
}

Reply Api::Serve(const Request& req) {
  auto admitted = Admit(req);
  if (Reply* refused = std::get_if<Reply>(&admitted)) return std::move(*refused);
  Admission& a = std::get<Admission>(admitted);
  Ctx ctx{req, *a.user, a.sees_all, a.args, a.token};
  return a.route->handler(ctx);
}

std::optional<Reply> Api::Refusal(const Request& req) {
  try {
    auto admitted = Admit(req);
    if (Reply* refused = std::get_if<Reply>(&admitted)) return std::move(*refused);
    return std::nullopt;
  } catch (const HttpError& e) {
    return JsonReply(json{{"error", e.error}, {"reason", e.reason}}, e.status);
  } catch (const std::exception& e) {
    return JsonReply(json{{"error", "internal_server_error"}, {"reason", e.what()}}, 500);
  }
}

bool Api::Visible(const Ctx& ctx, std::string_view vhost) const {
  return ctx.sees_all || broker_.HasVhostAccess(ctx.user.name, vhost);
}

broker::Vhost& Api::VhostFor(const Ctx& ctx, const std::string& name) {
  broker::Vhost* v = broker_.FindVhost(name);
  if (v == nullptr) NotFound();
  if (!Visible(ctx, name)) NotAuthorised("User not authorised to access virtual host");
  return *v;
}

void Api::Permit(const Ctx& ctx, const broker::Vhost& vhost, const broker::AccessRequest& request) {
  if (ctx.token) return;
  if (auto ok = broker::Authorize(broker_, ctx.user.name, vhost, request); !ok) NotAuthorised(ok.error().text);
}

std::vector<broker::Vhost*> Api::VhostsFor(const Ctx& ctx, const std::string* only) {
  std::vector<broker::Vhost*> out;
  if (only != nullptr) {
    out.push_back(&VhostFor(ctx, *only));
    return out;
  }
  for (const auto& name : broker_.ListVhosts()) {
    if (!Visible(ctx, name)) continue;
    if (broker::Vhost* v = broker_.FindVhost(name)) out.push_back(v);
  }
  return out;
}

bool Api::ConnectionVisible(const Ctx& ctx, const net::Connection& c) const {
  return ctx.sees_all || c.user_name() == ctx.user.name;
}

broker::Queue& Api::ExistingQueue(broker::Vhost& v, const std::string& name) {
  auto it = v.queues().find(name);
  if (it == v.queues().end()) NotFound();
  return *it->second;
}

}  // namespace warren::http::internal
