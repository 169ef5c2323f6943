// The management API's broker-thread half: routes /api/... requests, authenticates them, checks
// what the user may see and change, and builds every reply from the broker's state.
// ManagementServer (management.h) feeds it requests copied off the HTTP threads.
//
// Thread: the broker thread owns an Api and runs every method, so handlers read and change the
// broker, vhosts, queues and connections directly.
//
// The implementation is split by concern: api.cc (routing, authentication, access),
// render.cc (JSON of queues, exchanges, bindings, connections, vhosts, message stats),
// routes_objects.cc (vhosts, exchanges, queues, bindings), routes_messages.cc (publish, get,
// aliveness), routes_runtime.cc (overview, connections, channels, consumers, nodes, health),
// routes_admin.cc (users, permissions, vhost changes, definitions), routes_policies.cc
// (policies and operator policies), routes_backup.cc (online
// backup: admitted here, run on the HTTP thread through Reply::off_broker).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "server/broker/authorize.h"
#include "server/broker/broker.h"
#include "server/http/internal/request.h"
#include "server/http/management.h"

namespace warren::net {
class Channel;
class Connection;
class Server;
}  // namespace warren::net

namespace warren::http::internal {

bool HasTag(const broker::User& user, std::string_view tag);

// A connection's name ("1.2.3.4:5 -> 6.7.8.9:10") split as RabbitMQ reports it.
struct PeerInfo {
  std::string name, peer_host, host;
  int peer_port = 0, port = 0;
};
PeerInfo Peer(const net::Connection& c);

// A binding's key in URLs (RabbitMQ's "properties_key"): the routing key, "~" for an empty one,
// and a hash of the arguments after a "~" when there are any.
std::string PropertiesKey(std::string_view key, const amqp::FieldTable& args);

class Api {
 public:
  Api(broker::Broker& broker, net::Server& server, ManagementOptions options);
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Never throws: errors become JSON error replies.
  Reply Dispatch(const Request& req);
  // The reply that refuses `req` on what its head says alone (unknown path 404, credentials
  // 401, method 405), or nullopt when Dispatch would run its handler: ManagementServer asks
  // before it reads a body, so an unauthenticated client never gets one read. Never throws.
  std::optional<Reply> Refusal(const Request& req);

 private:
  struct Ctx {
    const Request& req;
    const broker::User& user;
    bool sees_all = false;  // administrator or monitoring: every vhost
    const std::vector<std::string>& args;  // the path segments matched by '*'
    bool token = false;  // authenticated by the admin token: no per-vhost permission checks
  };
  using Handler = std::function<Reply(Ctx&)>;
  struct Route {
    std::string method;
    std::vector<std::string> pattern;  // "*" matches any segment
    Handler handler;
  };

  // Who may run which route: what Serve and Refusal both decide first.
  struct Admission {
    const Route* route = nullptr;
    std::vector<std::string> args;
    const broker::User* user = nullptr;
    bool sees_all = false;
    bool token = false;
  };

  // `path` is relative to /api, with "*" for a segment the handler gets in ctx.args.
  void On(std::string method, std::string_view path, Handler handler);
  // The route and the authenticated user, or the reply that refuses the request (may throw
  // HttpError).
  std::variant<Reply, Admission> Admit(const Request& req);
  Reply Serve(const Request& req);

  void AddObjectRoutes();
  void AddMessageRoutes();
  void AddRuntimeRoutes();
  void AddAdminRoutes();
  void AddTopicPermissionRoutes();
  void AddPolicyRoutes();  // routes_policies.cc
  void AddBackupRoute();  // routes_backup.cc
  // 401 "Not administrator user" unless the user is tagged administrator.
  static void RequireAdmin(const Ctx& ctx);
  // 400 "vhost_or_user_not_found" (RabbitMQ's answer to setting a permission) unless both exist.
  void RequireVhostAndUser(std::string_view vhost, std::string_view user) const;

  // ---- Access (api.cc) ----
  bool Visible(const Ctx& ctx, std::string_view vhost) const;
  // The vhost of a vhost-scoped request: 404 when missing, 401 when the user may not see it.
  broker::Vhost& VhostFor(const Ctx& ctx, const std::string& name);
  // A change, publish or get made as `ctx.user`: broker::Authorize decides, as for the same
  // operation over AMQP; 401 with its text otherwise. Handlers call it before they parse a body
  // (with the arguments and routing key not known yet) and again once they have them.
  void Permit(const Ctx& ctx, const broker::Vhost& vhost, const broker::AccessRequest& request);
  // Vhosts the user may see: all of them, or the one named (`only` non-null).
  std::vector<broker::Vhost*> VhostsFor(const Ctx& ctx, const std::string* only);
  bool ConnectionVisible(const Ctx& ctx, const net::Connection& c) const;
  // 404 when missing.
  static broker::Queue& ExistingQueue(broker::Vhost& v, const std::string& name);

  // ---- Renderers (render.cc) ----
  json QueueJson(const broker::Vhost& vhost, const broker::Queue& q) const;
  json ExchangeJson(const broker::Vhost& vhost, const broker::Exchange& e) const;
  json BindingJson(const broker::Vhost& vhost, std::string_view source, std::string_view destination,
                   bool to_queue, std::string_view key, const amqp::FieldTable& args) const;
  // Every binding of `vhost`, the default exchange's implicit ones first, as RabbitMQ lists them.
  void AppendBindings(const broker::Vhost& vhost, json& out) const;
  json ConnectionJson(const net::Connection& c) const;
  json ChannelJson(const net::Connection& c, const net::Channel& ch) const;
  json VhostJson(const broker::Vhost& v) const;
  // routes_admin.cc
  json PermissionsJson(std::string_view user, std::string_view vhost) const;

  // ---- Handlers ----
  // GET things or things/{vhost}: a JSON array that `append` fills for each vhost shown.
  Reply ListPerVhost(Ctx& ctx, const std::function<void(const broker::Vhost&, json&)>& append);
  // /api/overview's listeners, RabbitMQ's protocol names ("amqp/ssl", "https").
  json Listeners() const;
  Reply Overview(Ctx& ctx);
  Reply PutExchange(Ctx& ctx);
  Reply PutQueue(Ctx& ctx);
  Reply ExchangeBindings(Ctx& ctx, bool as_source);
  // GET bindings/{vhost}/e/{source}/{q|e}/{destination}
  json BindingsBetween(Ctx& ctx, bool to_queue);
  Reply PostBinding(Ctx& ctx, bool to_queue);
  Reply DeleteBinding(Ctx& ctx, bool to_queue);
  Reply Publish(Ctx& ctx);
  Reply Get(Ctx& ctx);
  Reply Aliveness(Ctx& ctx);

  broker::Broker& broker_;
  net::Server& server_;
  ManagementOptions options_;
  std::vector<Route> routes_;
  std::vector<broker::Queue*> route_scratch_;  // reused by Publish
};

// RabbitMQ's message_stats object: each count and its `<name>_details: {rate}`, for a queue
// (`queue` true: the per-queue stats only) or the whole broker.
json MessageStatsJson(const broker::MessageStats& stats, bool queue);
// {"rate": r}
json Details(double rate);

}  // namespace warren::http::internal
