#include "server/http/management.h"

#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asio/post.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "server/amqp/properties.h"
#include "server/broker/definitions.h"
#include "server/broker/field_table_json.h"
#include "server/broker/password.h"
#include "server/broker/persister.h"
#include "server/broker/queue_arguments.h"
#include "server/http/listener.h"
#include "server/http/web_ui.h"
#include "server/net/channel.h"
#include "server/net/channel_consumer.h"
#include "server/net/connection.h"
#include "server/net/server.h"

namespace warren::http {

using nlohmann::json;

namespace {

constexpr auto kBrokerTimeout = std::chrono::seconds(5);
constexpr char kRealm[] = "Basic realm=\"RabbitMQ Management\"";
constexpr char kManagementVersion[] = "3.10.8";

// ---- Request and reply, copied between the HTTP threads and the broker thread ----

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
  std::string body;  // JSON text, or empty (204)
  bool authenticate = false;  // add WWW-Authenticate
  std::string location;
};

// Thrown inside a broker-thread handler to answer with an error; caught by the dispatcher.
struct HttpError {
  int status;
  std::string error;
  std::string reason;
};

[[noreturn]] void NotFound() { throw HttpError{404, "Object Not Found", "Not Found"}; }
[[noreturn]] void BadRequest(std::string reason) { throw HttpError{400, "bad_request", std::move(reason)}; }
[[noreturn]] void NotAuthorised(std::string reason) { throw HttpError{401, "not_authorised", std::move(reason)}; }

// A broker error from an operation RabbitMQ runs on an internal AMQP channel, mapped as its
// management plugin maps channel errors.
[[noreturn]] void BrokerError(const broker::Error& e) {
  if (e.code == amqp::reply::kNotFound) throw HttpError{404, "not_found", e.text};
  if (e.code == amqp::reply::kAccessRefused) NotAuthorised(e.text);
  BadRequest(e.text);
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Reply JsonReply(const json& j, int status = 200) { return Reply{status, Dump(j), false, {}}; }
Reply NoContent() { return Reply{204, {}, false, {}}; }

// ---- Small codecs (not HTTP parsing: httplib does that) ----

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes one path segment (httplib decodes the whole path, which would turn the vhost
// "%2F" into a separator, so the raw target is split first and each segment decoded here).
std::string DecodeSegment(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexDigit(s[i + 1]);
      const int lo = HexDigit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string EncodeSegment(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string EncodeBase64(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kBase64[(acc << (6 - bits)) & 63]);
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

// Standard base64 (padding optional, whitespace ignored); nullopt when malformed.
std::optional<std::string> DecodeBase64(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const char* p = std::strchr(kBase64, c);
    if (c == '\0' || p == nullptr) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - kBase64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    const int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// ---- Field tables <-> JSON (server/broker/field_table_json.h) ----

amqp::FieldTable JsonToTable(const json& j, std::string_view what) {
  if (j.is_null()) return {};
  if (!j.is_object()) BadRequest(fmt::format("{} must be an object", what));
  auto table = broker::FieldTableFromJson(j);
  if (!table) BadRequest(fmt::format("{}: {}", what, table.error()));
  return std::move(*table);
}

json ParseBody(const Request& req) {
  if (req.body.empty()) return json::object();
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) BadRequest("failed to decode json");
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

// A non-negative integer given as a number or as a string of digits (rabbitmqadmin sends strings);
// nullopt when absent.
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

// The binding's key in URLs (RabbitMQ's "properties_key"): the routing key, "~" for an empty one,
// and a hash of the arguments after a "~" when there are any.
std::string PropertiesKey(std::string_view key, const amqp::FieldTable& args) {
  std::string quoted;
  for (char c : key) {
    if (c == '%') {
      quoted += "%25";
    } else if (c == '~') {
      quoted += "%7E";
    } else {
      quoted.push_back(c);
    }
  }
  if (args.empty()) return quoted.empty() ? "~" : quoted;
  std::string encoded;
  amqp::ByteWriter w(encoded);
  amqp::EncodeFieldTable(args, w);
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : encoded) h = (h ^ c) * 1099511628211ull;
  std::string raw(reinterpret_cast<const char*>(&h), sizeof h);
  std::string b64 = EncodeBase64(raw);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return quoted + "~" + b64;
}

bool HasTag(const broker::User& user, std::string_view tag) {
  for (const auto& t : user.tags) {
    if (t == tag) return true;
  }
  return false;
}

// Compares a presented secret with the expected one in time independent of where they differ.
bool SameSecret(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) diff |= given[i] ^ expected[i % expected.size()];
  return diff == 0;
}

bool IsLoopback(std::string_view addr) {
  return addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.");
}

// "1.2.3.4:5 -> 6.7.8.9:10" -> {"1.2.3.4", 5}
std::pair<std::string, int> SplitHostPort(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return {std::string(s), 0};
  return {std::string(s.substr(0, colon)), std::atoi(std::string(s.substr(colon + 1)).c_str())};
}

}  // namespace

// ---- The broker-thread side: everything below runs on the broker thread ----

class ManagementServer::Impl {
 public:
  Impl(broker::Broker& broker, net::Server& server, ManagementOptions options)
      : broker_(broker), server_(server), options_(std::move(options)) {
    AddRoutes();
  }

  Reply Dispatch(const Request& req) {
    try {
      return Serve(req);
    } catch (const HttpError& e) {
      return JsonReply(json{{"error", e.error}, {"reason", e.reason}}, e.status);
    } catch (const std::exception& e) {
      spdlog::error("management API: {} /api/{}: {}", req.method, fmt::join(req.segments, "/"), e.what());
      return JsonReply(json{{"error", "internal_server_error"}, {"reason", e.what()}}, 500);
    }
  }

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

  void On(std::string method, std::string_view path, Handler handler) {
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

  Reply Serve(const Request& req) {
    const Route* found = nullptr;
    bool path_exists = false;
    std::vector<std::string> args;
    for (const Route& r : routes_) {
      if (r.pattern.size() != req.segments.size()) continue;
      bool match = true;
      for (size_t i = 0; i < r.pattern.size() && match; ++i) {
        match = r.pattern[i] == "*" || r.pattern[i] == req.segments[i];
      }
      if (!match) continue;
      path_exists = true;
      if (r.method != req.method) continue;
      found = &r;
      for (size_t i = 0; i < r.pattern.size(); ++i) {
        if (r.pattern[i] == "*") args.push_back(req.segments[i]);
      }
      break;
    }
    if (found == nullptr && !path_exists) NotFound();
    // Authenticate before revealing anything else.
    static const broker::User kTokenUser{"warrenctl", "", {"administrator"}};
    const bool by_token = !options_.admin_token.empty() && SameSecret(req.bearer, options_.admin_token);
    if (by_token && found == nullptr) {
      return JsonReply(json{{"error", "method_not_allowed"}, {"reason", "Method Not Allowed"}}, 405);
    }
    if (by_token) {
      Ctx ctx{req, kTokenUser, true, args, true};
      return found->handler(ctx);
    }
    const broker::User* user = req.has_credentials ? broker_.Authenticate(req.user, req.password) : nullptr;
    if (user == nullptr) {
      if (req.has_credentials) spdlog::warn("management API: HTTP access denied: user '{}' - invalid credentials", req.user);
      Reply r = JsonReply(json{{"error", "not_authorised"}, {"reason", "Login failed"}}, 401);
      r.authenticate = true;
      return r;
    }
    if (server_.IsLoopbackOnly(user->name) && !IsLoopback(req.remote_addr)) {
      spdlog::warn("management API: HTTP access denied: user '{}' - User can only log in via localhost", user->name);
      NotAuthorised("User can only log in via localhost");
    }
    const bool sees_all = HasTag(*user, "administrator") || HasTag(*user, "monitoring");
    if (!sees_all && !HasTag(*user, "management")) {
      spdlog::warn("management API: HTTP access denied: user '{}' - Not management user", user->name);
      NotAuthorised("Not management user");
    }
    if (found == nullptr) {
      return JsonReply(json{{"error", "method_not_allowed"}, {"reason", "Method Not Allowed"}}, 405);
    }
    Ctx ctx{req, *user, sees_all, args, false};
    return found->handler(ctx);
  }

  // ---- Access ----

  bool Visible(const Ctx& ctx, std::string_view vhost) const {
    return ctx.sees_all || broker_.HasVhostAccess(ctx.user.name, vhost);
  }

  // The vhost of a vhost-scoped request: 404 when missing, 401 when the user may not see it.
  broker::Vhost& VhostFor(const Ctx& ctx, const std::string& name) {
    broker::Vhost* v = broker_.FindVhost(name);
    if (v == nullptr) NotFound();
    if (!Visible(ctx, name)) NotAuthorised("User not authorised to access virtual host");
    return *v;
  }

  // A change, publish or get made as `ctx.user`: needs access to the vhost and the permission,
  // as the same operation over AMQP would.
  void Permit(const Ctx& ctx, const broker::Vhost& vhost, broker::AccessKind access, broker::ResourceKind resource,
              std::string_view name) {
    if (ctx.token) return;
    if (!broker_.HasVhostAccess(ctx.user.name, vhost.name())) {
      NotAuthorised("User not authorised to access virtual host");
    }
    if (auto ok = broker_.CheckAccess(ctx.user.name, vhost.name(), access, resource, name); !ok) {
      NotAuthorised(ok.error().text);
    }
  }

  // Vhosts the user may see: all of them, or the one named in the request.
  std::vector<broker::Vhost*> VhostsFor(const Ctx& ctx, const std::string* only) {
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

  // ---- Renderers ----

  json QueueJson(const broker::Vhost& vhost, const broker::Queue& q) const {
    const auto& o = q.options();
    return json{{"name", q.name()},
                {"vhost", vhost.name()},
                {"durable", o.durable},
                {"auto_delete", o.auto_delete},
                {"exclusive", o.exclusive},
                {"arguments", broker::FieldTableToJson(o.arguments)},
                {"messages", q.ready_count() + q.unacked_count()},
                {"messages_ready", q.ready_count()},
                {"messages_unacknowledged", q.unacked_count()},
                {"messages_paged_out", q.paged_count()},
                {"consumers", q.consumer_count()},
                {"state", "running"},
                {"type", "classic"},
                {"node", options_.node_name},
                {"policy", nullptr},
                {"exclusive_consumer_tag", nullptr}};
  }

  json ExchangeJson(const broker::Vhost& vhost, const broker::Exchange& e) const {
    const auto& o = e.options();
    return json{{"name", e.name()},
                {"vhost", vhost.name()},
                {"type", std::string(broker::ExchangeTypeName(e.type()))},
                {"durable", o.durable},
                {"auto_delete", o.auto_delete},
                {"internal", o.internal},
                {"arguments", broker::FieldTableToJson(o.arguments)},
                {"user_who_performed_action", "rmq-internal"}};
  }

  json BindingJson(const broker::Vhost& vhost, std::string_view source, std::string_view destination,
                   bool to_queue, std::string_view key, const amqp::FieldTable& args) const {
    return json{{"source", source},
                {"vhost", vhost.name()},
                {"destination", destination},
                {"destination_type", to_queue ? "queue" : "exchange"},
                {"routing_key", key},
                {"arguments", broker::FieldTableToJson(args)},
                {"properties_key", PropertiesKey(key, args)}};
  }

  // Every binding of `vhost`, the default exchange's implicit ones first, as RabbitMQ lists them.
  void AppendBindings(const broker::Vhost& vhost, json& out) const {
    for (const auto& [name, q] : vhost.queues()) {
      out.push_back(BindingJson(vhost, "", name, true, name, {}));
    }
    for (const auto& [name, e] : vhost.exchanges()) {
      if (name.empty()) continue;
      for (const broker::Binding& b : e->bindings()) {
        const bool to_queue = b.destination.queue != nullptr;
        const std::string& dest = to_queue ? b.destination.queue->name() : b.destination.exchange->name();
        out.push_back(BindingJson(vhost, name, dest, to_queue, b.key, b.arguments));
      }
    }
  }

  struct PeerInfo {
    std::string name, peer_host, host;
    int peer_port = 0, port = 0;
  };
  static PeerInfo Peer(const net::Connection& c) {
    PeerInfo p;
    p.name = c.peer();
    const auto arrow = p.name.find(" -> ");
    if (arrow != std::string::npos) {
      std::tie(p.peer_host, p.peer_port) = SplitHostPort(std::string_view(p.name).substr(0, arrow));
      std::tie(p.host, p.port) = SplitHostPort(std::string_view(p.name).substr(arrow + 4));
    } else {
      p.peer_host = p.name;
    }
    return p;
  }

  bool ConnectionVisible(const Ctx& ctx, const net::Connection& c) const {
    return ctx.sees_all || c.user_name() == ctx.user.name;
  }

  json ConnectionJson(const net::Connection& c) const {
    const PeerInfo p = Peer(c);
    size_t channels = 0;
    for (const auto& ch : c.channels()) channels += ch != nullptr ? 1 : 0;
    return json{{"name", p.name},
                {"node", options_.node_name},
                {"user", c.user_name()},
                {"vhost", std::string(c.vhost_name())},
                {"peer_host", p.peer_host},
                {"peer_port", p.peer_port},
                {"host", p.host},
                {"port", p.port},
                {"channels", channels},
                {"state", !c.is_open() ? "starting" : c.blocked() ? "blocked" : "running"},
                {"protocol", "AMQP 0-9-1"},
                {"type", "network"},
                {"auth_mechanism", "PLAIN"},
                {"ssl", false},
                {"timeout", c.heartbeat()},
                {"frame_max", c.frame_max()},
                {"channel_max", c.channel_max()}};
  }

  json ChannelJson(const net::Connection& c, const net::Channel& ch) const {
    const PeerInfo p = Peer(c);
    return json{{"name", fmt::format("{} ({})", p.name, ch.id())},
                {"node", options_.node_name},
                {"number", ch.id()},
                {"user", c.user_name()},
                {"vhost", std::string(c.vhost_name())},
                {"connection_details", {{"name", p.name}, {"peer_host", p.peer_host}, {"peer_port", p.peer_port}}},
                {"consumer_count", ch.consumers().size()},
                {"messages_unacknowledged", ch.unacked_count()},
                {"prefetch_count", ch.prefetch_count()},
                {"global_prefetch_count", ch.global_prefetch_count()},
                {"confirm", ch.confirm_mode()},
                {"transactional", ch.tx_mode()},
                {"state", ch.closing() ? "closing" : "running"}};
  }

  // ---- Routes ----

  void AddRoutes() {
    On("GET", "overview", [this](Ctx& ctx) { return Overview(ctx); });
    On("GET", "whoami", [](Ctx& ctx) {
      return JsonReply(json{{"name", ctx.user.name}, {"tags", ctx.user.tags}});
    });
    On("GET", "vhosts", [this](Ctx& ctx) {
      json out = json::array();
      for (broker::Vhost* v : VhostsFor(ctx, nullptr)) out.push_back(VhostJson(*v));
      return JsonReply(out);
    });
    On("GET", "vhosts/*", [this](Ctx& ctx) { return JsonReply(VhostJson(VhostFor(ctx, ctx.args[0]))); });

    // Exchanges
    auto list_exchanges = [this](Ctx& ctx) {
      json out = json::array();
      for (broker::Vhost* v : VhostsFor(ctx, ctx.args.empty() ? nullptr : &ctx.args[0])) {
        for (const auto& [name, e] : v->exchanges()) out.push_back(ExchangeJson(*v, *e));
      }
      return JsonReply(out);
    };
    On("GET", "exchanges", list_exchanges);
    On("GET", "exchanges/*", list_exchanges);
    On("GET", "exchanges/*/*", [this](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      auto it = v.exchanges().find(ExchangeName(ctx.args[1]));
      if (it == v.exchanges().end()) NotFound();
      return JsonReply(ExchangeJson(v, *it->second));
    });
    On("PUT", "exchanges/*/*", [this](Ctx& ctx) { return PutExchange(ctx); });
    On("DELETE", "exchanges/*/*", [this](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      const std::string name = ExchangeName(ctx.args[1]);
      if (!v.exchanges().contains(name)) NotFound();
      Permit(ctx, v, broker::AccessKind::kConfigure, broker::ResourceKind::kExchange, name);
      if (auto ok = v.DeleteExchange(name, QueryFlag(ctx.req, "if-unused")); !ok) BrokerError(ok.error());
      return NoContent();
    });
    On("POST", "exchanges/*/*/publish", [this](Ctx& ctx) { return Publish(ctx); });
    On("GET", "exchanges/*/*/bindings/source", [this](Ctx& ctx) { return ExchangeBindings(ctx, true); });
    On("GET", "exchanges/*/*/bindings/destination", [this](Ctx& ctx) { return ExchangeBindings(ctx, false); });

    // Queues
    auto list_queues = [this](Ctx& ctx) {
      json out = json::array();
      for (broker::Vhost* v : VhostsFor(ctx, ctx.args.empty() ? nullptr : &ctx.args[0])) {
        for (const auto& [name, q] : v->queues()) out.push_back(QueueJson(*v, *q));
      }
      return JsonReply(out);
    };
    On("GET", "queues", list_queues);
    On("GET", "queues/*", list_queues);
    On("GET", "queues/*/*", [this](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      return JsonReply(QueueJson(v, ExistingQueue(v, ctx.args[1])));
    });
    On("PUT", "queues/*/*", [this](Ctx& ctx) { return PutQueue(ctx); });
    On("DELETE", "queues/*/*", [this](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      const std::string& name = ctx.args[1];
      ExistingQueue(v, name);
      Permit(ctx, v, broker::AccessKind::kConfigure, broker::ResourceKind::kQueue, name);
      auto deleted = v.DeleteQueue(name, QueryFlag(ctx.req, "if-unused"), QueryFlag(ctx.req, "if-empty"), 0);
      if (!deleted) BrokerError(deleted.error());
      return NoContent();
    });
    On("DELETE", "queues/*/*/contents", [this](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      const std::string& name = ctx.args[1];
      ExistingQueue(v, name);
      Permit(ctx, v, broker::AccessKind::kRead, broker::ResourceKind::kQueue, name);
      if (auto purged = v.PurgeQueue(name, 0); !purged) BrokerError(purged.error());
      return NoContent();
    });
    On("POST", "queues/*/*/get", [this](Ctx& ctx) { return Get(ctx); });
    On("GET", "queues/*/*/bindings", [this](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      ExistingQueue(v, ctx.args[1]);
      json all = json::array();
      AppendBindings(v, all);
      json out = json::array();
      for (auto& b : all) {
        if (b["destination_type"] == "queue" && b["destination"] == ctx.args[1]) out.push_back(std::move(b));
      }
      return JsonReply(out);
    });

    // Bindings
    auto list_bindings = [this](Ctx& ctx) {
      json out = json::array();
      for (broker::Vhost* v : VhostsFor(ctx, ctx.args.empty() ? nullptr : &ctx.args[0])) AppendBindings(*v, out);
      return JsonReply(out);
    };
    On("GET", "bindings", list_bindings);
    On("GET", "bindings/*", list_bindings);
    for (const char* kind : {"q", "e"}) {
      const bool to_queue = kind[0] == 'q';
      On("GET", fmt::format("bindings/*/e/*/{}/*", kind),
         [this, to_queue](Ctx& ctx) { return JsonReply(BindingsBetween(ctx, to_queue)); });
      On("POST", fmt::format("bindings/*/e/*/{}/*", kind),
         [this, to_queue](Ctx& ctx) { return PostBinding(ctx, to_queue); });
      On("GET", fmt::format("bindings/*/e/*/{}/*/*", kind), [this, to_queue](Ctx& ctx) {
        for (auto& b : BindingsBetween(ctx, to_queue)) {
          if (b["properties_key"] == ctx.args[3]) return JsonReply(b);
        }
        NotFound();
      });
      On("DELETE", fmt::format("bindings/*/e/*/{}/*/*", kind),
         [this, to_queue](Ctx& ctx) { return DeleteBinding(ctx, to_queue); });
    }

    // Connections, channels, consumers
    On("GET", "connections", [this](Ctx& ctx) {
      json out = json::array();
      for (const auto& [id, c] : server_.connections()) {
        if (ConnectionVisible(ctx, *c)) out.push_back(ConnectionJson(*c));
      }
      return JsonReply(out);
    });
    On("GET", "connections/*", [this](Ctx& ctx) {
      for (const auto& [id, c] : server_.connections()) {
        if (c->peer() == ctx.args[0] && ConnectionVisible(ctx, *c)) return JsonReply(ConnectionJson(*c));
      }
      NotFound();
    });
    On("DELETE", "connections/*", [this](Ctx& ctx) {
      bool found = false;
      for (const auto& [id, c] : server_.connections()) {
        if (c->peer() == ctx.args[0] && ConnectionVisible(ctx, *c)) found = true;
      }
      if (!found) NotFound();
      if (!HasTag(ctx.user, "administrator")) {
        for (const auto& [id, c] : server_.connections()) {
          if (c->peer() == ctx.args[0] && c->user_name() != ctx.user.name) NotAuthorised("Not administrator user");
        }
      }
      const std::string reason = ctx.req.Param("X-Reason").value_or("Closed via management plugin");
      server_.CloseConnectionsIf([&](const net::Connection& c) { return c.peer() == ctx.args[0]; }, reason);
      return NoContent();
    });
    On("GET", "channels", [this](Ctx& ctx) {
      json out = json::array();
      for (const auto& [id, c] : server_.connections()) {
        if (!ConnectionVisible(ctx, *c)) continue;
        for (const auto& ch : c->channels()) {
          if (ch != nullptr) out.push_back(ChannelJson(*c, *ch));
        }
      }
      return JsonReply(out);
    });
    auto list_consumers = [this](Ctx& ctx) {
      if (!ctx.args.empty()) VhostFor(ctx, ctx.args[0]);
      json out = json::array();
      for (const auto& [id, c] : server_.connections()) {
        if (!Visible(ctx, c->vhost_name()) && !ConnectionVisible(ctx, *c)) continue;
        if (!ctx.args.empty() && c->vhost_name() != ctx.args[0]) continue;
        const PeerInfo p = Peer(*c);
        for (const auto& ch : c->channels()) {
          if (ch == nullptr) continue;
          for (const auto& [tag, consumer] : ch->consumers()) {
            out.push_back(json{
                {"consumer_tag", tag},
                {"queue", {{"name", consumer->queue()->name()}, {"vhost", std::string(c->vhost_name())}}},
                {"channel_details",
                 {{"name", fmt::format("{} ({})", p.name, ch->id())},
                  {"number", ch->id()},
                  {"connection_name", p.name},
                  {"peer_host", p.peer_host},
                  {"peer_port", p.peer_port},
                  {"user", c->user_name()},
                  {"node", options_.node_name}}},
                {"ack_required", !consumer->no_ack()},
                {"prefetch_count", consumer->prefetch()},
                {"exclusive", false},
                {"arguments", json::object()},
                {"active", true},
                {"activity_status", "up"}});
          }
        }
      }
      return JsonReply(out);
    };
    On("GET", "consumers", list_consumers);
    On("GET", "consumers/*", list_consumers);

    AddAdminRoutes();

    // The one node
    auto node = [this] {
      return json{{"name", options_.node_name},
                  {"type", "disc"},
                  {"running", true},
                  {"disk_free_alarm", server_.alarm()},
                  {"mem_alarm", false},
                  {"cluster_links", json::array()}};
    };
    On("GET", "nodes", [node](Ctx&) { return JsonReply(json::array({node()})); });
    On("GET", "nodes/*", [this, node](Ctx& ctx) {
      if (ctx.args[0] != options_.node_name) NotFound();
      return JsonReply(node());
    });
    On("GET", "extensions", [](Ctx&) { return JsonReply(json::array()); });

    // Health
    On("GET", "aliveness-test/*", [this](Ctx& ctx) { return Aliveness(ctx); });
    On("GET", "health/checks/alarms", [this](Ctx&) {
      if (server_.alarm()) {
        return JsonReply(json{{"status", "failed"},
                              {"reason", "resource alarm(s) in effect in the cluster"},
                              {"alarms", json::array({json{{"node", options_.node_name}, {"resource", "disk"}}})}},
                         503);
      }
      return JsonReply(json{{"status", "ok"}});
    });
    On("GET", "health/checks/local-alarms", [this](Ctx&) {
      if (server_.alarm()) {
        return JsonReply(json{{"status", "failed"}, {"reason", "resource alarm(s) in effect on the node"}}, 503);
      }
      return JsonReply(json{{"status", "ok"}});
    });
  }

  // ---- Users, vhosts and permissions: administrators only ----

  static void RequireAdmin(const Ctx& ctx) {
    if (!HasTag(ctx.user, "administrator")) NotAuthorised("Not administrator user");
  }

  static json UserJson(const broker::User& u) {
    return json{{"name", u.name},
                {"password_hash", u.password_hash},
                {"hashing_algorithm", "rabbit_password_hashing_sha256"},
                {"tags", u.tags},
                {"limits", json::object()}};
  }

  static json PermissionJson(const broker::Permission& p) {
    return json{{"user", p.user}, {"vhost", p.vhost}, {"configure", p.configure}, {"write", p.write}, {"read", p.read}};
  }

  static std::vector<std::string> TagsFromJson(const json& body) {
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

  json PermissionsJson(std::string_view user, std::string_view vhost) const {
    json out = json::array();
    for (const auto& p : broker_.ListPermissions(user, vhost)) out.push_back(PermissionJson(p));
    return out;
  }

  void AddAdminRoutes() {
    // Definitions (RabbitMQ's export/import format; broker/definitions.*). The import is all or
    // nothing: an invalid document is 400 naming the bad entry, and nothing changes.
    On("GET", "definitions", [this](Ctx& ctx) {
      RequireAdmin(ctx);
      return Reply{200, broker::ExportDefinitions(broker_), false, {}};
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
      return Reply{201, {}, false, {}};
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
        return Reply{201, {}, false, {}};
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
      if (broker_.FindVhost(vhost) == nullptr || broker_.FindUser(user) == nullptr) NotFound();
      const bool existed = broker_.FindPermission(user, vhost) != nullptr;
      auto ok = broker_.SetPermissions(user, vhost, StringField(body, "configure", std::nullopt),
                                       StringField(body, "write", std::nullopt),
                                       StringField(body, "read", std::nullopt));
      if (!ok) BrokerError(ok.error());
      return existed ? NoContent() : Reply{201, {}, false, {}};
    });
    On("DELETE", "permissions/*/*", [this](Ctx& ctx) {
      RequireAdmin(ctx);
      if (broker_.FindPermission(ctx.args[1], ctx.args[0]) == nullptr) NotFound();
      if (auto ok = broker_.ClearPermissions(ctx.args[1], ctx.args[0]); !ok) BrokerError(ok.error());
      return NoContent();
    });
  }

  // The exchange name in URLs: RabbitMQ writes the default exchange as amq.default.
  static std::string ExchangeName(const std::string& s) { return s == "amq.default" ? std::string() : s; }

  broker::Queue& ExistingQueue(broker::Vhost& v, const std::string& name) {
    auto it = v.queues().find(name);
    if (it == v.queues().end()) NotFound();
    return *it->second;
  }

  json VhostJson(const broker::Vhost& v) const {
    size_t ready = 0, unacked = 0;
    for (const auto& [name, q] : v.queues()) {
      ready += q->ready_count();
      unacked += q->unacked_count();
    }
    return json{{"name", v.name()},
                {"description", ""},
                {"tags", json::array()},
                {"metadata", {{"description", ""}, {"tags", json::array()}}},
                {"default_queue_type", "classic"},
                {"tracing", false},
                {"messages", ready + unacked},
                {"messages_ready", ready},
                {"messages_unacknowledged", unacked},
                {"cluster_state", {{options_.node_name, "running"}}}};
  }

  Reply Overview(Ctx& ctx) {
    size_t exchanges = 0, queues = 0, consumers = 0, ready = 0, unacked = 0;
    for (broker::Vhost* v : VhostsFor(ctx, nullptr)) {
      exchanges += v->exchanges().size();
      queues += v->queues().size();
      for (const auto& [name, q] : v->queues()) {
        consumers += q->consumer_count();
        ready += q->ready_count();
        unacked += q->unacked_count();
      }
    }
    size_t connections = 0, channels = 0;
    for (const auto& [id, c] : server_.connections()) {
      if (!ConnectionVisible(ctx, *c)) continue;
      ++connections;
      for (const auto& ch : c->channels()) channels += ch != nullptr ? 1 : 0;
    }
    const std::string product_version = WARREN_VERSION;
    return JsonReply(json{
        {"management_version", kManagementVersion},
        {"rabbitmq_version", kManagementVersion},
        {"product_name", "Warren"},
        {"product_version", product_version},
        {"erlang_version", "none"},
        {"cluster_name", options_.cluster_name},
        {"node", options_.node_name},
        {"rates_mode", "none"},
        {"disable_stats", false},
        {"enable_queue_totals", true},
        {"exchange_types",
         json::array({json{{"name", "direct"}, {"description", "AMQP direct exchange"}, {"enabled", true}},
                      json{{"name", "fanout"}, {"description", "AMQP fanout exchange"}, {"enabled", true}},
                      json{{"name", "headers"}, {"description", "AMQP headers exchange"}, {"enabled", true}},
                      json{{"name", "topic"}, {"description", "AMQP topic exchange"}, {"enabled", true}}})},
        {"object_totals",
         {{"connections", connections},
          {"channels", channels},
          {"exchanges", exchanges},
          {"queues", queues},
          {"consumers", consumers}}},
        {"queue_totals", {{"messages", ready + unacked}, {"messages_ready", ready}, {"messages_unacknowledged", unacked}}},
        {"message_stats", {{"publish", stats_publish_}, {"get", stats_get_}, {"deliver_get", stats_get_}}},
        {"listeners", json::array({json{{"node", options_.node_name}, {"protocol", "amqp"}, {"port", options_.amqp_port}},
                                   json{{"node", options_.node_name}, {"protocol", "http"}, {"port", options_.port}}})},
        {"contexts", json::array()}});
  }

  Reply PutExchange(Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string name = ExchangeName(ctx.args[1]);
    const json body = ParseBody(ctx.req);
    const std::string type = StringField(body, "type", std::nullopt);
    broker::ExchangeOptions options;
    options.durable = BoolField(body, "durable", false);
    options.auto_delete = BoolField(body, "auto_delete", false);
    options.internal = BoolField(body, "internal", false);
    if (auto it = body.find("arguments"); it != body.end()) options.arguments = JsonToTable(*it, "arguments");
    Permit(ctx, v, broker::AccessKind::kConfigure, broker::ResourceKind::kExchange, name);
    const bool existed = v.exchanges().contains(name);
    if (auto ok = v.DeclareExchange(name, type, false, std::move(options)); !ok) BrokerError(ok.error());
    return existed ? NoContent() : Reply{201, {}, false, {}};
  }

  Reply PutQueue(Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string& name = ctx.args[1];
    const json body = ParseBody(ctx.req);
    broker::QueueOptions options;
    options.durable = BoolField(body, "durable", false);
    options.auto_delete = BoolField(body, "auto_delete", false);
    if (auto it = body.find("arguments"); it != body.end()) options.arguments = JsonToTable(*it, "arguments");
    Permit(ctx, v, broker::AccessKind::kConfigure, broker::ResourceKind::kQueue, name);
    const bool existed = v.queues().contains(name);
    if (auto ok = v.DeclareQueue(name, false, std::move(options), 0); !ok) BrokerError(ok.error());
    return existed ? NoContent() : Reply{201, {}, false, {}};
  }

  // Builds a message as a publish over AMQP would carry it.
  static broker::MessageRef BuildMessage(std::string_view exchange, std::string_view key,
                                         const amqp::BasicProperties& props, std::string_view body) {
    std::string raw;
    amqp::ByteWriter w(raw);
    amqp::EncodeProperties(props, w);
    broker::MessageRef msg = broker::Message::Create(exchange, key, raw, body.size());
    msg->FillBody(body);
    return msg;
  }

  // Routes and enqueues a message as Channel::Route does (without confirms or returns).
  bool RouteMessage(broker::Vhost& v, broker::Exchange& ex, const broker::MessageRef& msg) {
    std::vector<broker::Queue*> queues;
    v.Route(ex, *msg, queues);
    const bool routed = !queues.empty();
    std::erase_if(queues, [&](broker::Queue* q) { return q->RejectsPublish(msg); });
    broker::Persister* persister = broker_.persister();
    if (persister != nullptr && persister->enabled() && msg->persistent()) {
      size_t durable = 0;
      for (broker::Queue* q : queues) durable += q->on_disk() ? 1 : 0;
      if (durable > 1) {
        const uint64_t body_id = persister->NextBodyId();
        persister->batch().PutBody(body_id, storage::MessageData{msg->exchange(), msg->routing_key(),
                                                                 msg->raw_properties(), msg->body()});
        persister->AddBodyRefs(body_id, static_cast<uint32_t>(durable));
        msg->set_body_id(body_id);
      }
    }
    bool stored = false;
    for (broker::Queue* q : queues) stored = q->Enqueue(msg) || stored;
    if (stored) persister->CountPersistentPublish();
    return routed;
  }

  static amqp::BasicProperties PropertiesFromJson(const json& j) {
    amqp::BasicProperties p;
    if (j.is_null() || (j.is_array() && j.empty())) return p;
    if (!j.is_object()) BadRequest("properties must be an object");
    auto str = [&](const char* key, std::optional<std::string>& out) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return;
      if (!it->is_string()) BadRequest(fmt::format("property {} must be a string", key));
      if (it->get_ref<const std::string&>().size() > 255) BadRequest(fmt::format("property {} is too long", key));
      out = it->get<std::string>();
    };
    auto octet = [&](const char* key, std::optional<uint8_t>& out) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return;
      if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 255) {
        BadRequest(fmt::format("property {} must be an integer 0..255", key));
      }
      out = static_cast<uint8_t>(it->get<int64_t>());
    };
    str("content_type", p.content_type);
    str("content_encoding", p.content_encoding);
    if (auto it = j.find("headers"); it != j.end() && !it->is_null()) p.headers = JsonToTable(*it, "headers");
    octet("delivery_mode", p.delivery_mode);
    octet("priority", p.priority);
    str("correlation_id", p.correlation_id);
    str("reply_to", p.reply_to);
    str("expiration", p.expiration);
    str("message_id", p.message_id);
    if (auto it = j.find("timestamp"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer()) BadRequest("property timestamp must be an integer");
      p.timestamp = it->get<uint64_t>();
    }
    str("type", p.type);
    str("user_id", p.user_id);
    str("app_id", p.app_id);
    str("cluster_id", p.cluster_id);
    return p;
  }

  static json PropertiesToJson(std::string_view raw) {
    json out = json::object();
    amqp::BasicProperties p;
    if (!amqp::DecodeProperties(raw, &p)) return out;
    amqp::ForEachProperty(p, [&out](const char* key, const auto& v) {
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, amqp::FieldTable>) {
        out[key] = broker::FieldTableToJson(v);
      } else {
        out[key] = v;
      }
    });
    return out;
  }

  Reply Publish(Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string name = ExchangeName(ctx.args[1]);
    const json body = ParseBody(ctx.req);
    const std::string key = StringField(body, "routing_key", std::nullopt);
    std::string payload = StringField(body, "payload", std::nullopt);
    const std::string encoding = StringField(body, "payload_encoding", "string");
    if (encoding == "base64") {
      auto decoded = DecodeBase64(payload);
      if (!decoded) BadRequest("payload is not valid base64");
      payload = std::move(*decoded);
    } else if (encoding != "string") {
      BadRequest(fmt::format("unsupported payload_encoding '{}'", encoding));
    }
    amqp::BasicProperties props = PropertiesFromJson(body.contains("properties") ? body["properties"] : json());
    if (key.size() > 255) BadRequest("routing_key is longer than 255 bytes");
    if (props.user_id && *props.user_id != ctx.user.name) {
      BadRequest(fmt::format("user_id property set to '{}' but authenticated user was '{}'", *props.user_id,
                             ctx.user.name));
    }
    auto ex = v.FindExchange(name);
    if (!ex) NotFound();
    Permit(ctx, v, broker::AccessKind::kWrite, broker::ResourceKind::kExchange, name);
    if ((*ex)->options().internal) {
      NotAuthorised(fmt::format("cannot publish to internal exchange '{}' in vhost '{}'", name, v.name()));
    }
    broker::MessageRef msg = BuildMessage(name, key, props, payload);
    if (msg->expiration() == broker::Message::Expiration::kInvalid) {
      auto ttl = broker::ParseExpiration(props.expiration.value_or(""));
      BadRequest(ttl ? std::string("invalid expiration") : ttl.error().text);
    }
    const bool routed = RouteMessage(v, **ex, msg);
    ++stats_publish_;
    ++broker_.counters().published;  // Prometheus warren_published_total
    return JsonReply(json{{"routed", routed}});
  }

  Reply Get(Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string& name = ctx.args[1];
    const json body = ParseBody(ctx.req);
    const std::optional<int64_t> count_field = IntField(body, "count");
    if (!count_field) BadRequest("count not found");
    const int64_t count = *count_field;
    const std::string ackmode = StringField(body, "ackmode", std::nullopt);
    const std::string encoding = StringField(body, "encoding", "auto");
    if (encoding != "auto" && encoding != "base64") BadRequest(fmt::format("unsupported encoding '{}'", encoding));
    const std::optional<int64_t> truncate = IntField(body, "truncate");
    enum class After { kRequeue, kAck, kReject };
    After after;
    if (ackmode == "ack_requeue_true" || ackmode == "reject_requeue_true") {
      after = After::kRequeue;
    } else if (ackmode == "ack_requeue_false") {
      after = After::kAck;
    } else if (ackmode == "reject_requeue_false") {
      after = After::kReject;
    } else {
      BadRequest(fmt::format("unknown ackmode '{}'", ackmode));
    }
    ExistingQueue(v, name);
    Permit(ctx, v, broker::AccessKind::kRead, broker::ResourceKind::kQueue, name);
    auto found = v.FindQueue(name, 0);
    if (!found) BrokerError(found.error());
    std::shared_ptr<broker::Queue> queue = *found;
    std::vector<broker::QueuedMessage> taken;
    json out = json::array();
    for (int64_t i = 0; i < count; ++i) {
      auto m = queue->Get(false);
      if (!m) break;
      ++stats_get_;
      const broker::Message& msg = *m->msg;
      std::string_view payload = msg.body();
      if (truncate && static_cast<uint64_t>(*truncate) < payload.size()) payload = payload.substr(0, *truncate);
      const bool as_string = encoding == "auto" && IsUtf8(payload);
      out.push_back(json{{"payload_bytes", msg.body_size()},
                         {"redelivered", m->redelivered},
                         {"exchange", std::string(msg.exchange())},
                         {"routing_key", std::string(msg.routing_key())},
                         {"message_count", queue->ready_count()},
                         {"properties", PropertiesToJson(msg.raw_properties())},
                         {"payload", as_string ? std::string(payload) : EncodeBase64(payload)},
                         {"payload_encoding", as_string ? "string" : "base64"}});
      taken.push_back(std::move(*m));
    }
    // Settle: requeue newest first, so each message returns to its place in O(1).
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
      switch (after) {
        case After::kRequeue:
          queue->Requeue(std::move(*it));
          break;
        case After::kAck:
          queue->Settle(*it);
          break;
        case After::kReject:
          queue->Reject(*it);
          break;
      }
    }
    if (after == After::kRequeue) queue->Dispatch();
    return JsonReply(out);
  }

  Reply ExchangeBindings(Ctx& ctx, bool as_source) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string name = ExchangeName(ctx.args[1]);
    if (!v.exchanges().contains(name)) NotFound();
    json all = json::array();
    AppendBindings(v, all);
    json out = json::array();
    for (auto& b : all) {
      if (as_source ? b["source"] == name : (b["destination_type"] == "exchange" && b["destination"] == name)) {
        out.push_back(std::move(b));
      }
    }
    return JsonReply(out);
  }

  // GET bindings/{vhost}/e/{source}/{q|e}/{destination}
  json BindingsBetween(Ctx& ctx, bool to_queue) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string source = ExchangeName(ctx.args[1]);
    const std::string& dest = ctx.args[2];
    if (!v.exchanges().contains(source)) NotFound();
    if (to_queue ? !v.queues().contains(dest) : !v.exchanges().contains(dest)) NotFound();
    json all = json::array();
    AppendBindings(v, all);
    json out = json::array();
    for (auto& b : all) {
      if (b["source"] == source && b["destination"] == dest &&
          b["destination_type"] == (to_queue ? "queue" : "exchange")) {
        out.push_back(std::move(b));
      }
    }
    return out;
  }

  Reply PostBinding(Ctx& ctx, bool to_queue) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string source = ExchangeName(ctx.args[1]);
    const std::string& dest = ctx.args[2];
    if (!v.exchanges().contains(source)) NotFound();
    if (to_queue ? !v.queues().contains(dest) : !v.exchanges().contains(dest)) NotFound();
    const json body = ParseBody(ctx.req);
    const std::string key = StringField(body, "routing_key", "");
    amqp::FieldTable args;
    if (auto it = body.find("arguments"); it != body.end()) args = JsonToTable(*it, "arguments");
    Permit(ctx, v, broker::AccessKind::kWrite, to_queue ? broker::ResourceKind::kQueue : broker::ResourceKind::kExchange,
           dest);
    Permit(ctx, v, broker::AccessKind::kRead, broker::ResourceKind::kExchange, source);
    auto ok = to_queue ? v.BindQueue(dest, source, key, args, 0) : v.BindExchange(dest, source, key, args);
    if (!ok) BrokerError(ok.error());
    Reply r{201, {}, false, {}};
    r.location = fmt::format("/api/bindings/{}/e/{}/{}/{}/{}", EncodeSegment(v.name()),
                             EncodeSegment(source.empty() ? "amq.default" : source), to_queue ? "q" : "e",
                             EncodeSegment(dest), EncodeSegment(PropertiesKey(key, args)));
    return r;
  }

  Reply DeleteBinding(Ctx& ctx, bool to_queue) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string source = ExchangeName(ctx.args[1]);
    const std::string& dest = ctx.args[2];
    if (!v.exchanges().contains(source)) NotFound();
    if (to_queue ? !v.queues().contains(dest) : !v.exchanges().contains(dest)) NotFound();
    const broker::Exchange& ex = *v.exchanges().find(source)->second;
    const broker::Binding* match = nullptr;
    for (const broker::Binding& b : ex.bindings()) {
      const bool same_dest = to_queue ? (b.destination.queue != nullptr && b.destination.queue->name() == dest)
                                      : (b.destination.exchange != nullptr && b.destination.exchange->name() == dest);
      if (same_dest && PropertiesKey(b.key, b.arguments) == ctx.args[3]) {
        match = &b;
        break;
      }
    }
    if (match == nullptr) NotFound();
    const std::string key = match->key;
    const amqp::FieldTable args = match->arguments;
    Permit(ctx, v, broker::AccessKind::kWrite, to_queue ? broker::ResourceKind::kQueue : broker::ResourceKind::kExchange,
           dest);
    Permit(ctx, v, broker::AccessKind::kRead, broker::ResourceKind::kExchange, source);
    auto ok = to_queue ? v.UnbindQueue(dest, source, key, args, 0) : v.UnbindExchange(dest, source, key, args);
    if (!ok) BrokerError(ok.error());
    return NoContent();
  }

  Reply Aliveness(Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string name = "aliveness-test";
    Permit(ctx, v, broker::AccessKind::kConfigure, broker::ResourceKind::kQueue, name);
    auto declared = v.DeclareQueue(name, false, broker::QueueOptions{}, 0);
    if (!declared) BrokerError(declared.error());
    std::shared_ptr<broker::Queue> queue = declared->queue;
    queue->Enqueue(BuildMessage("", name, {}, "test_message"));
    bool ok = false;
    // Consumers may hold the queue's messages; check what we get back is ours.
    for (int i = 0; i < 16; ++i) {
      auto m = queue->Get(true);
      if (!m) break;
      if (m->msg->body() == "test_message") {
        ok = true;
        break;
      }
    }
    if (!ok) return JsonReply(json{{"status", "failed"}, {"reason", "the test message did not come back"}}, 503);
    return JsonReply(json{{"status", "ok"}});
  }

  broker::Broker& broker_;
  net::Server& server_;
  ManagementOptions options_;
  std::vector<Route> routes_;
  uint64_t stats_publish_ = 0;  // publishes and gets made through this API
  uint64_t stats_get_ = 0;
};

// ---- The HTTP-thread side ----

namespace {

Request CopyRequest(const char* method, const httplib::Request& req) {
  Request r;
  r.method = method;
  std::string_view target = req.target;
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= target.size()) {
    const size_t slash = target.find('/', start);
    const size_t end = slash == std::string_view::npos ? target.size() : slash;
    segments.push_back(DecodeSegment(target.substr(start, end - start)));
    start = end + 1;
  }
  // "/api/x/" -> ["", "api", "x", ""]: drop the leading empty segment and a trailing one.
  if (!segments.empty() && segments.front().empty()) segments.erase(segments.begin());
  if (segments.size() > 1 && segments.back().empty()) segments.pop_back();
  if (!segments.empty() && segments.front() == "api") {
    r.segments.assign(segments.begin() + 1, segments.end());
  } else {
    r.segments = {"\x01not-api"};  // matches no route: 404
  }
  for (const auto& [k, v] : req.params) r.params.emplace(k, v);
  r.body = req.body;
  r.remote_addr = req.remote_addr;
  if (req.has_header("X-Reason")) r.params.emplace("X-Reason", req.get_header_value("X-Reason"));
  const std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kBasic = "Basic ";
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() > kBearer.size() && strncasecmp(auth.c_str(), kBearer.data(), kBearer.size()) == 0) {
    r.bearer = auth.substr(kBearer.size());
  }
  if (auth.size() > kBasic.size() && strncasecmp(auth.c_str(), kBasic.data(), kBasic.size()) == 0) {
    if (auto decoded = DecodeBase64(std::string_view(auth).substr(kBasic.size()))) {
      const auto colon = decoded->find(':');
      if (colon != std::string::npos) {
        r.has_credentials = true;
        r.user = decoded->substr(0, colon);
        r.password = decoded->substr(colon + 1);
      }
    }
  }
  return r;
}

}  // namespace

ManagementServer::ManagementServer(asio::io_context& io, broker::Broker& broker, net::Server& server,
                                   ManagementOptions options)
    : stopping_(std::make_shared<std::atomic<bool>>(false)) {
  const std::string bind = options.bind_address;
  const uint16_t port = options.port;
  impl_ = std::make_unique<Impl>(broker, server, std::move(options));
  http_ = std::make_unique<httplib::Server>();
  http_->set_payload_max_length(size_t{64} << 20);
  // An idle keep-alive connection holds a worker thread this long; Stop() waits for it.
  http_->set_keep_alive_timeout(1);
  bind_address_ = bind;
  bound_port_ = port;

  auto handle = [this, &io](const char* method) {
    return [this, &io, method](const httplib::Request& req, httplib::Response& res) {
      auto promise = std::make_shared<std::promise<Reply>>();
      std::future<Reply> future = promise->get_future();
      Impl* impl = impl_.get();
      asio::post(io, [impl, promise, request = CopyRequest(method, req)] {
        promise->set_value(impl->Dispatch(request));
      });
      const auto deadline = std::chrono::steady_clock::now() + kBrokerTimeout;
      Reply reply;
      bool answered = false;
      while (!stopping_->load()) {
        if (future.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready) {
          try {
            reply = future.get();
            answered = true;
          } catch (const std::exception&) {
          }
          break;
        }
        if (std::chrono::steady_clock::now() > deadline) break;
      }
      if (!answered) {
        reply = JsonReply(json{{"error", "service_unavailable"}, {"reason", "the broker did not answer in time"}}, 503);
      }
      res.status = reply.status;
      // Not for the web UI's fetches: the header would make the browser pop its own login dialog.
      if (reply.authenticate && req.get_header_value("X-Requested-With") != "XMLHttpRequest") {
        res.set_header("WWW-Authenticate", kRealm);
      }
      if (!reply.location.empty()) res.set_header("Location", reply.location);
      res.set_header("Cache-Control", "no-cache");
      res.set_header("Vary", "accept, accept-encoding, origin");
      if (!reply.body.empty()) res.set_content(reply.body, "application/json");
    };
  };
  MountWebUi(*http_);  // first: httplib answers with the first matching handler
  http_->Get(".*", handle("GET"));
  http_->Put(".*", handle("PUT"));
  http_->Post(".*", handle("POST"));
  http_->Delete(".*", handle("DELETE"));
}

ManagementServer::~ManagementServer() { Stop(); }

std::string ManagementServer::Start() {
  return StartListening(*http_, "management API", bind_address_, &bound_port_, &thread_);
}

void ManagementServer::Stop() {
  stopping_->store(true);
  StopListening(*http_, thread_);
}

}  // namespace warren::http
