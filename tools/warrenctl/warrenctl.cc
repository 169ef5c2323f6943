// warrenctl: rabbitmqctl's verbs and output, through Warren's management HTTP API.
//
// Without --user it authenticates with the token the server writes to DATA_DIR/.warrenctl-token
// at each start (`Authorization: Bearer`), as rabbitmqctl needs no password on the server's own
// machine. Exit codes are rabbitmqctl's (sysexits): 0 ok, 64 usage, 65 data error, 69 server
// unavailable, 70 software error, 77 no permission.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/http/loopback.h"

namespace {

using nlohmann::json;

constexpr int kOk = 0;
constexpr int kUsage = 64;
constexpr int kDataErr = 65;
constexpr int kNoUser = 67;
constexpr int kUnavailable = 69;
constexpr int kSoftware = 70;
constexpr int kNoPerm = 77;

// Ends the command with an exit code (thrown, caught in main).
struct Exit {
  int code;
  std::string message;  // printed to stderr when non-empty
  bool no_token = false;  // the token file is missing (a starting server writes it)
};

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// The host of a URL: "http://[::1]:15672/x" -> "[::1]", "http://u@h:1" -> "h".
std::string UrlHost(std::string_view url) {
  if (const size_t scheme = url.find("://"); scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (const size_t at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  if (!url.empty() && url.front() == '[') return std::string(url.substr(0, url.find(']') + 1));
  return std::string(url.substr(0, url.find(':')));
}

struct Options {
  // Beside a server configured by environment (a container), its own management port is the one to ask.
  std::string url = EnvOr("WARREN_URL", "http://127.0.0.1:" + EnvOr("WARREN_MANAGEMENT_PORT", "15672"));
  std::string user = EnvOr("WARREN_USER", "");
  std::string password = EnvOr("WARREN_PASSWORD", "");
  std::string data_dir = EnvOr("WARREN_DATA_DIR", "./data");
  std::string formatter = "table";
  bool quiet = false;
  bool no_table_headers = false;
  std::string vhost = "/";
  double timeout = 300;
};

std::string Encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct Response {
  int status = 0;
  std::string body;
  json Json() const {
    if (body.empty()) return json();
    return json::parse(body, nullptr, false);
  }
};

class Api {
 public:
  explicit Api(const Options& o) : o_(o) {}

  // How long a reply may take; a backup reads every file of the store before it answers.
  time_t read_timeout_seconds = 30;

  // Sends a request; no response at all is "unavailable" (69).
  Response Send(const std::string& method, const std::string& path, const std::string& body = {},
                const httplib::Headers& extra = {}) {
    httplib::Client cli(o_.url);
    cli.set_connection_timeout(5);
    cli.set_read_timeout(read_timeout_seconds);
    Authorize(cli);
    const std::string full = "/api/" + path;
    httplib::Result r = method == "GET"    ? cli.Get(full, extra)
                        : method == "PUT"  ? cli.Put(full, extra, body, "application/json")
                        : method == "POST" ? cli.Post(full, extra, body, "application/json")
                                           : cli.Delete(full, extra);
    if (!r) {
      throw Exit{kUnavailable, "Error: unable to perform an operation on node at " + o_.url + ": " +
                                   httplib::to_string(r.error()) + "\n\nIs the server running, and its management API "
                                   "enabled (--management-port)?"};
    }
    return Response{r->status, r->body};
  }

  // As Send, and turns error statuses into exit codes (404 as `not_found`, 65 by default).
  Response Call(const std::string& method, const std::string& path, const std::string& body = {},
                const httplib::Headers& extra = {}) {
    Response r = Send(method, path, body, extra);
    if (r.status >= 200 && r.status < 300) return r;
    throw ErrorFor(r);
  }

  Exit ErrorFor(const Response& r) const {
    std::string reason = r.body;
    json j = r.Json();
    if (j.is_object() && j.contains("reason") && j["reason"].is_string()) reason = j["reason"].get<std::string>();
    if (r.status == 401 || r.status == 403) return Exit{kNoPerm, "Error: access refused: " + reason};
    if (r.status == 400 || r.status == 404 || r.status == 405) return Exit{kDataErr, "Error:\n" + reason};
    if (r.status == 503) return Exit{kUnavailable, "Error: server unavailable: " + reason};
    return Exit{kSoftware, "Error: HTTP " + std::to_string(r.status) + ": " + reason};
  }

  json GetJson(const std::string& path) {
    json j = Call("GET", path).Json();
    if (j.is_discarded()) throw Exit{kSoftware, "Error: the server sent invalid JSON for /api/" + path};
    return j;
  }

 private:
  void Authorize(httplib::Client& cli) {
    if (!o_.user.empty()) {
      cli.set_basic_auth(o_.user, o_.password);
      return;
    }
    // The token is an administrator's credential of this machine: a URL naming anything but the
    // loopback could hand it to another host (or to a name that resolves elsewhere).
    if (!warren::http::IsLoopbackHost(UrlHost(o_.url))) {
      throw Exit{kNoPerm, "Error: --url " + o_.url + " is not a loopback address: the local admin token is only sent "
                          "to 127.0.0.1, ::1 or localhost; pass --user and --password for another host"};
    }
    if (token_.empty()) {
      const std::string path = o_.data_dir + "/.warrenctl-token";
      std::ifstream in(path);
      std::getline(in, token_);
      while (!token_.empty() && (token_.back() == '\n' || token_.back() == '\r' || token_.back() == ' ')) token_.pop_back();
      if (token_.empty()) {
        throw Exit{kNoPerm, "Error: cannot read the token file " + path +
                                " (run warrenctl as the server's user with --data-dir set to its data directory, "
                                "or pass --user and --password)",
                   true};
      }
    }
    cli.set_bearer_token_auth(token_);
  }

  const Options& o_;
  std::string token_;
};

// ---- Output ----

std::string Cell(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ", ";
      out += Cell(v[i]);
    }
    return out + "]";
  }
  if (v.is_object() && v.empty()) return "[]";
  return v.dump();
}

struct Column {
  std::string header;
  std::function<json(const json&)> get;
};

Column Field(std::string name) {
  return Column{name, [name](const json& row) { return row.contains(name) ? row[name] : json(); }};
}

// The columns a list verb may be asked for (rabbitmqctl's info items Warren's API has).
const std::vector<std::string> kQueueColumns = {"name", "messages", "messages_ready", "messages_unacknowledged",
                                                "consumers", "durable", "auto_delete", "exclusive",
                                                "arguments", "state", "type", "vhost"};
const std::vector<std::string> kConnectionColumns = {
    "name", "user", "vhost", "peer_host", "peer_port", "host", "port", "state", "protocol", "channels",
    "auth_mechanism", "ssl", "timeout", "frame_max", "channel_max", "client_properties", "user_provided_name"};

// The columns asked for (`defaults` when none), each one of `known`, else a usage error naming them.
std::vector<Column> PickColumns(const std::vector<std::string>& asked, const std::vector<std::string>& defaults,
                                const std::vector<std::string>& known) {
  std::vector<Column> columns;
  for (const auto& c : asked.empty() ? defaults : asked) {
    if (std::find(known.begin(), known.end(), c) == known.end()) {
      std::string all;
      for (const auto& k : known) all += (all.empty() ? "" : ", ") + k;
      throw Exit{kUsage, "Error:\nInvalid column: " + c + "\nValid columns: " + all};
    }
    columns.push_back(Field(c));
  }
  return columns;
}

class Printer {
 public:
  explicit Printer(const Options& o) : o_(o) {}
  bool json_mode() const { return o_.formatter == "json"; }

  void Banner(const std::string& text) const {
    if (!o_.quiet && !json_mode()) std::cout << text << "\n";
  }

  void Table(const json& rows, const std::vector<Column>& cols) const {
    if (json_mode()) {
      json out = json::array();
      for (const auto& row : rows) {
        json o = json::object();
        for (const auto& c : cols) o[c.header] = c.get(row);
        out.push_back(std::move(o));
      }
      std::cout << out.dump(1) << "\n";
      return;
    }
    if (!o_.no_table_headers) {
      for (size_t i = 0; i < cols.size(); ++i) std::cout << (i ? "\t" : "") << cols[i].header;
      std::cout << "\n";
    }
    for (const auto& row : rows) {
      for (size_t i = 0; i < cols.size(); ++i) std::cout << (i ? "\t" : "") << Cell(cols[i].get(row));
      std::cout << "\n";
    }
  }

 private:
  const Options& o_;
};

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string ReadFile(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Exit{kDataErr, "Error: cannot read " + path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- Verbs ----

struct Args {
  std::string a, b, c, d;
  std::vector<std::string> list;
  int64_t priority = 0;
  std::string apply_to;  // empty: the verb's default
};

// The management API HTML-escapes policy errors (as RabbitMQ's does); rabbitmqctl prints them plain.
std::string HtmlUnescaped(std::string text) {
  for (auto [from, to] : {std::pair{"&lt;", "<"}, std::pair{"&gt;", ">"}, std::pair{"&amp;", "&"}}) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + 1)) {
      text.replace(at, std::string_view(from).size(), to);
    }
  }
  return text;
}

int Run(const std::string& verb, Options& o, Args& x) {
  Api api(o);
  Printer out(o);
  const std::string vh = Encode(o.vhost);

  auto user_json = [&](const std::string& name) -> std::optional<json> {
    Response r = api.Send("GET", "users/" + Encode(name));
    if (r.status == 404) return std::nullopt;
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    return r.Json();
  };
  // rabbitmqctl's exit codes and texts (Debian's RabbitMQ 3.10.8) for the usual failures.
  auto no_such_user = [&](const std::string& name) { return Exit{kNoUser, "Error:\nUser " + name + " does not exist"}; };
  auto no_such_user_to_list = [&](const std::string& name) {
    return Exit{kUnavailable, "Error:\n{:no_such_user, " + Quoted(name) + "}"};
  };

  if (verb == "list_users") {
    out.Banner("Listing users ...");
    out.Table(api.GetJson("users"), {Column{"user", [](const json& r) { return r.value("name", json("")); }},
                                     Column{"tags", [](const json& r) { return r.value("tags", json::array()); }}});
    return kOk;
  }
  if (verb == "add_user") {
    out.Banner("Adding user " + Quoted(x.a) + " ...");
    if (user_json(x.a)) throw Exit{kSoftware, "Error:\nUser " + Quoted(x.a) + " already exists"};
    api.Call("PUT", "users/" + Encode(x.a), json{{"password", x.b}, {"tags", ""}}.dump());
    return kOk;
  }
  if (verb == "delete_user") {
    out.Banner("Deleting user " + Quoted(x.a) + " ...");
    if (!user_json(x.a)) throw no_such_user(x.a);
    api.Call("DELETE", "users/" + Encode(x.a));
    return kOk;
  }
  if (verb == "change_password") {
    out.Banner("Changing password for user " + Quoted(x.a) + " ...");
    auto u = user_json(x.a);
    if (!u) throw no_such_user(x.a);
    api.Call("PUT", "users/" + Encode(x.a), json{{"password", x.b}, {"tags", u->value("tags", json::array())}}.dump());
    return kOk;
  }
  if (verb == "set_user_tags") {
    out.Banner("Setting tags for user " + Quoted(x.a) + " to " + Cell(json(x.list)) + " ...");
    auto u = user_json(x.a);
    if (!u) throw no_such_user(x.a);
    api.Call("PUT", "users/" + Encode(x.a), json{{"tags", x.list}}.dump());
    return kOk;
  }
  if (verb == "list_vhosts") {
    out.Banner("Listing vhosts ...");
    out.Table(api.GetJson("vhosts"), {Field("name")});
    return kOk;
  }
  if (verb == "add_vhost") {
    out.Banner("Adding vhost " + Quoted(x.a) + " ...");
    api.Call("PUT", "vhosts/" + Encode(x.a), "{}");  // an existing vhost is left as it is
    return kOk;
  }
  if (verb == "delete_vhost") {
    out.Banner("Deleting vhost " + Quoted(x.a) + " ...");
    Response r = api.Send("DELETE", "vhosts/" + Encode(x.a));
    if (r.status == 404) throw Exit{kDataErr, "Error:\nVirtual host '" + x.a + "' does not exist"};
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    return kOk;
  }
  // Listing answers 65 for a missing vhost, changing permissions 69 (as rabbitmqctl).
  auto require_vhost = [&](int code = kDataErr) {
    Response r = api.Send("GET", "vhosts/" + vh);
    if (r.status == 404) {
      throw Exit{code, code == kDataErr ? "Error:\nVirtual host '" + o.vhost + "' does not exist"
                                        : "Error:\nVirtual host " + o.vhost + " does not exist"};
    }
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
  };
  if (verb == "set_permissions") {
    out.Banner("Setting permissions for user " + Quoted(x.a) + " in vhost " + Quoted(o.vhost) + " ...");
    if (!user_json(x.a)) throw no_such_user(x.a);
    require_vhost(kUnavailable);
    api.Call("PUT", "permissions/" + vh + "/" + Encode(x.a),
             json{{"configure", x.b}, {"write", x.c}, {"read", x.d}}.dump());
    return kOk;
  }
  if (verb == "clear_permissions") {
    out.Banner("Clearing permissions for user " + Quoted(x.a) + " in vhost " + Quoted(o.vhost) + " ...");
    if (!user_json(x.a)) throw no_such_user(x.a);
    require_vhost(kUnavailable);
    Response r = api.Send("DELETE", "permissions/" + vh + "/" + Encode(x.a));
    if (r.status != 404 && (r.status < 200 || r.status >= 300)) throw api.ErrorFor(r);  // none: nothing to clear
    return kOk;
  }
  if (verb == "list_permissions") {
    out.Banner("Listing permissions for vhost " + Quoted(o.vhost) + " ...");
    require_vhost();
    out.Table(api.GetJson("vhosts/" + vh + "/permissions"), {Field("user"), Field("configure"), Field("write"), Field("read")});
    return kOk;
  }
  if (verb == "list_user_permissions") {
    out.Banner("Listing permissions for user " + Quoted(x.a) + " ...");
    if (!user_json(x.a)) throw no_such_user_to_list(x.a);
    out.Table(api.GetJson("users/" + Encode(x.a) + "/permissions"), {Field("vhost"), Field("configure"), Field("write"), Field("read")});
    return kOk;
  }
  if (verb == "set_topic_permissions") {
    out.Banner("Setting topic permissions on " + Quoted(x.b) + " for user " + Quoted(x.a) + " in vhost " +
               Quoted(o.vhost) + " ...");
    if (!user_json(x.a)) throw no_such_user(x.a);
    require_vhost(kUnavailable);
    api.Call("PUT", "topic-permissions/" + vh + "/" + Encode(x.a),
             json{{"exchange", x.b}, {"write", x.c}, {"read", x.d}}.dump());
    return kOk;
  }
  if (verb == "clear_topic_permissions") {
    out.Banner("Clearing topic permissions" + (x.b.empty() ? "" : " on " + Quoted(x.b)) + " for user " +
               Quoted(x.a) + " in vhost " + Quoted(o.vhost) + " ...");
    if (!user_json(x.a)) throw no_such_user(x.a);
    require_vhost(kUnavailable);
    const std::string query = x.b.empty() ? "" : "?exchange=" + Encode(x.b);
    Response r = api.Send("DELETE", "topic-permissions/" + vh + "/" + Encode(x.a) + query);
    if (r.status != 404 && (r.status < 200 || r.status >= 300)) throw api.ErrorFor(r);  // none: nothing to clear
    return kOk;
  }
  if (verb == "list_topic_permissions") {
    out.Banner("Listing topic permissions for vhost " + Quoted(o.vhost) + " ...");
    require_vhost();
    out.Table(api.GetJson("vhosts/" + vh + "/topic-permissions"),
              {Field("user"), Field("exchange"), Field("write"), Field("read")});
    return kOk;
  }
  if (verb == "list_user_topic_permissions") {
    out.Banner("Listing topic permissions for user " + Quoted(x.a) + " ...");
    if (!user_json(x.a)) throw no_such_user_to_list(x.a);
    out.Table(api.GetJson("users/" + Encode(x.a) + "/topic-permissions"),
              {Field("vhost"), Field("exchange"), Field("write"), Field("read")});
    return kOk;
  }
  // Policies and operator policies, as rabbitmqctl's set_policy / clear_policy / list_policies.
  if (verb == "set_policy" || verb == "set_operator_policy") {
    const bool op = verb == "set_operator_policy";
    out.Banner(std::string(op ? "Setting operator policy override " : "Setting policy ") + Quoted(x.a) +
               " for pattern " + Quoted(x.b) + " to " + Quoted(x.c) + " with priority " +
               Quoted(std::to_string(x.priority)) + " for vhost " + Quoted(o.vhost) + " ...");
    json definition = json::parse(x.c, nullptr, false);
    if (definition.is_discarded()) throw Exit{kDataErr, "Error:\nCould not parse JSON document: " + x.c};
    const std::string apply_to = !x.apply_to.empty() ? x.apply_to : op ? "queues" : "all";
    Response r = api.Send("PUT", std::string(op ? "operator-policies/" : "policies/") + vh + "/" + Encode(x.a),
                          json{{"pattern", x.b}, {"definition", definition}, {"priority", x.priority},
                               {"apply-to", apply_to}}.dump());
    if (r.status < 200 || r.status >= 300) {
      Exit e = api.ErrorFor(r);
      e.message = HtmlUnescaped(e.message);
      throw e;
    }
    return kOk;
  }
  if (verb == "clear_policy" || verb == "clear_operator_policy") {
    const bool op = verb == "clear_operator_policy";
    out.Banner(std::string(op ? "Clearing operator policy " : "Clearing policy ") + Quoted(x.a) + " on vhost " +
               Quoted(o.vhost) + " ...");
    Response r = api.Send("DELETE", std::string(op ? "operator-policies/" : "policies/") + vh + "/" + Encode(x.a));
    if (r.status == 404) throw Exit{kDataErr, "Error:\nParameter does not exist"};
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    return kOk;
  }
  if (verb == "list_policies" || verb == "list_operator_policies") {
    const bool op = verb == "list_operator_policies";
    out.Banner(std::string(op ? "Listing operator policy overrides" : "Listing policies") + " for vhost " +
               Quoted(o.vhost) + " ...");
    require_vhost();
    out.Table(api.GetJson(std::string(op ? "operator-policies/" : "policies/") + vh),
              {Field("vhost"), Field("name"), Field("pattern"), Field("apply-to"),
               Column{"definition", [](const json& r) { return json(r.value("definition", json::object()).dump()); }},
               Field("priority")});
    return kOk;
  }
  if (verb == "list_queues") {
    const std::vector<Column> columns = PickColumns(x.list, {"name", "messages"}, kQueueColumns);
    out.Banner("Timeout: 60.0 seconds ...");
    out.Banner("Listing queues for vhost " + o.vhost + " ...");
    require_vhost();
    out.Table(api.GetJson("queues/" + vh), columns);
    return kOk;
  }
  if (verb == "list_exchanges") {
    out.Banner("Listing exchanges for vhost " + o.vhost + " ...");
    require_vhost();
    out.Table(api.GetJson("exchanges/" + vh), {Field("name"), Field("type")});
    return kOk;
  }
  if (verb == "list_bindings") {
    out.Banner("Listing bindings for vhost " + o.vhost + "...");
    require_vhost();
    out.Table(api.GetJson("bindings/" + vh),
              {Column{"source_name", [](const json& r) { return r.value("source", json("")); }},
               Column{"source_kind", [](const json&) { return json("exchange"); }},
               Column{"destination_name", [](const json& r) { return r.value("destination", json("")); }},
               Column{"destination_kind", [](const json& r) { return r.value("destination_type", json("")); }},
               Field("routing_key"), Field("arguments")});
    return kOk;
  }
  if (verb == "list_connections") {
    const std::vector<Column> columns =
        PickColumns(x.list, {"name", "user", "peer_host", "peer_port", "state"}, kConnectionColumns);
    out.Banner("Listing connections ...");
    out.Table(api.GetJson("connections"), columns);
    return kOk;
  }
  if (verb == "list_channels") {
    out.Banner("Listing channels ...");
    out.Table(api.GetJson("channels"),
              {Field("name"), Field("user"), Field("consumer_count"), Field("messages_unacknowledged")});
    return kOk;
  }
  if (verb == "list_consumers") {
    out.Banner("Listing consumers in vhost " + o.vhost + " ...");
    require_vhost();
    out.Table(api.GetJson("consumers/" + vh),
              {Column{"queue_name", [](const json& r) { return r.contains("queue") ? r["queue"].value("name", json("")) : json(""); }},
               Column{"channel_pid", [](const json& r) { return r.contains("channel_details") ? r["channel_details"].value("name", json("")) : json(""); }},
               Field("consumer_tag"), Field("ack_required"), Field("prefetch_count"), Field("active"), Field("arguments")});
    return kOk;
  }
  auto queue_path = [&] { return "queues/" + vh + "/" + Encode(x.a); };
  auto no_such_queue = [&](int code, const char* text) { return Exit{code, std::string("Error:\n") + text}; };
  if (verb == "purge_queue") {
    out.Banner("Purging queue '" + x.a + "' in vhost '" + o.vhost + "' ...");
    Response r = api.Send("DELETE", queue_path() + "/contents");
    if (r.status == 404) throw no_such_queue(kUnavailable, "not_found");
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    return kOk;
  }
  if (verb == "delete_queue") {
    out.Banner("Deleting queue '" + x.a + "' on vhost '" + o.vhost + "' ...");
    Response q = api.Send("GET", queue_path());
    if (q.status == 404) throw no_such_queue(kUsage, "Queue not found");
    if (q.status < 200 || q.status >= 300) throw api.ErrorFor(q);
    const json info = q.Json();
    Response r = api.Send("DELETE", queue_path());
    if (r.status == 404) throw no_such_queue(kUsage, "Queue not found");
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    const json messages = info.is_object() ? info.value("messages", json(0)) : json(0);
    if (out.json_mode()) {
      std::cout << json{{"result", "ok"}, {"message_count", messages}}.dump() << "\n";
    } else {
      std::cout << "Queue was successfully deleted with " << Cell(messages) << " messages\n";
    }
    return kOk;
  }
  if (verb == "close_connection") {
    out.Banner("Closing connection " + x.a + ", reason: " + x.b + "...");
    Response r = api.Send("DELETE", "connections/" + Encode(x.a), {}, {{"X-Reason", x.b}});
    if (r.status == 404) throw Exit{kUnavailable, "Error:\nConnection " + Quoted(x.a) + " not found"};
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    return kOk;
  }
  if (verb == "status") {
    const json ov = api.GetJson("overview");
    if (out.json_mode()) {
      std::cout << ov.dump(1) << "\n";
      return kOk;
    }
    out.Banner("Status of node " + ov.value("node", std::string("?")) + " ...");
    std::cout << "Runtime\n\n"
              << "Node name: " << ov.value("node", std::string()) << "\n"
              << "Cluster name: " << ov.value("cluster_name", std::string()) << "\n"
              << "Product name: " << ov.value("product_name", std::string()) << "\n"
              << "Product version: " << ov.value("product_version", std::string()) << "\n"
              << "RabbitMQ version: " << ov.value("rabbitmq_version", std::string()) << "\n";
    if (ov.contains("listeners") && ov["listeners"].is_array()) {
      std::cout << "\nListeners\n\n";
      for (const auto& l : ov["listeners"]) {
        std::cout << "Interface: " << Cell(l.value("ip_address", json("[::]"))) << ", port: "
                  << Cell(l.value("port", json(""))) << ", protocol: " << Cell(l.value("protocol", json(""))) << "\n";
      }
    }
    if (ov.contains("object_totals")) {
      std::cout << "\nTotals\n\n";
      for (const auto& [k, v] : ov["object_totals"].items()) std::cout << k << ": " << Cell(v) << "\n";
    }
    if (ov.contains("queue_totals")) {
      for (const auto& [k, v] : ov["queue_totals"].items()) std::cout << k << ": " << Cell(v) << "\n";
    }
    return kOk;
  }
  if (verb == "await_startup") {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(o.timeout * 1000));
    while (true) {
      try {
        Response r = api.Send("GET", "overview");
        if (r.status >= 200 && r.status < 300) return kOk;
        if (r.status == 401 || r.status == 403) throw api.ErrorFor(r);
      } catch (const Exit& e) {
        if (e.code != kUnavailable && !e.no_token) throw;
        if (std::chrono::steady_clock::now() >= deadline) throw;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        throw Exit{kUnavailable, "Error: the server at " + o.url + " did not start within " + std::to_string(static_cast<long>(o.timeout)) + " s"};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  if (verb == "backup") {
    // The server writes the copy, so a relative DIR means the same place to both only as an
    // absolute path.
    const std::string dir = std::filesystem::absolute(x.a).lexically_normal().string();
    out.Banner("Backing up the store to " + Quoted(dir) + " ...");
    api.read_timeout_seconds = 24 * 3600;
    Response r = api.Send("POST", "backup", json{{"dir", dir}}.dump());
    if (r.status == 404 || r.status == 405) throw Exit{kUnavailable, "Error: online backup (/api/backup) is not supported by this server"};
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    const json manifest = r.Json();
    if (out.json_mode()) {
      std::cout << manifest.dump(1) << "\n";
    } else if (!o.quiet) {
      std::cout << "Backup written: " << Cell(manifest.value("files", json::array()).size()) << " files, "
                << Cell(manifest.value("total_size", json(0))) << " bytes, last sequence number "
                << Cell(manifest.value("last_sequence_number", json(0))) << "; manifest "
                << Cell(manifest.value("manifest", json(""))) << "\nRestore: start warren-server with --data-dir "
                << dir << "\n";
    }
    return kOk;
  }
  auto unsupported = [&](const Response& r) {
    if (r.status == 404 || r.status == 405) {
      throw Exit{kUnavailable, "Error: definitions export/import (/api/definitions) is not supported by this server"};
    }
  };
  if (verb == "export_definitions") {
    if (x.a != "-") out.Banner("Exporting definitions in JSON to a file at " + Quoted(x.a) + " ...");
    Response r = api.Send("GET", "definitions");
    unsupported(r);
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    if (x.a == "-") {
      std::cout << r.body << "\n";
      return kOk;
    }
    std::ofstream f(x.a, std::ios::binary | std::ios::trunc);
    f << r.body;
    f.close();
    if (!f) throw Exit{kDataErr, "Error: cannot write " + x.a};
    return kOk;
  }
  if (verb == "import_definitions") {
    out.Banner("Importing definitions in JSON from a file at " + Quoted(x.a) + " ...");
    const std::string body = ReadFile(x.a);
    if (json::parse(body, nullptr, false).is_discarded()) throw Exit{kDataErr, "Error: " + x.a + " is not valid JSON"};
    Response r = api.Send("POST", "definitions", body);
    unsupported(r);
    if (r.status < 200 || r.status >= 300) throw api.ErrorFor(r);
    if (!o.quiet && !out.json_mode()) std::cout << "Successfully started definition import. This process is asynchronous and can take some time.\n";
    return kOk;
  }
  throw Exit{kUsage, "Error: unknown command " + verb};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  Args x;
  CLI::App app{"warrenctl: manage a Warren broker through its management HTTP API (rabbitmqctl's verbs)"};
  app.require_subcommand(1);
  app.add_option("--url", o.url, "management API base URL (env WARREN_URL)")->capture_default_str();
  app.add_option("--user,-u", o.user, "user for basic auth (env WARREN_USER); default: the server's token file");
  app.add_option("--password", o.password, "password (env WARREN_PASSWORD)");
  app.add_option("--data-dir", o.data_dir, "the server's data directory, for .warrenctl-token (env WARREN_DATA_DIR)")
      ->capture_default_str();
  app.add_option("--formatter", o.formatter, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  app.add_flag("-q,--quiet", o.quiet, "suppress informational messages");
  app.add_flag("--no-table-headers", o.no_table_headers, "no header row in tables");

  std::string verb;
  auto sub = [&](const char* name, const char* help) {
    CLI::App* s = app.add_subcommand(name, help);
    s->callback([&verb, name] { verb = name; });
    // Global flags are accepted after the verb too.
    s->fallthrough();
    return s;
  };
  auto vhost = [&](CLI::App* s) { s->add_option("-p,--vhost", o.vhost, "virtual host")->capture_default_str(); };

  sub("list_users", "list users");
  auto* s = sub("add_user", "add a user");
  s->add_option("username", x.a)->required();
  s->add_option("password", x.b)->required();
  s = sub("delete_user", "delete a user");
  s->add_option("username", x.a)->required();
  s = sub("change_password", "change a user's password");
  s->add_option("username", x.a)->required();
  s->add_option("new_password", x.b)->required();
  s = sub("set_user_tags", "set a user's tags (none: clear them)");
  s->add_option("username", x.a)->required();
  s->add_option("tag", x.list);
  sub("list_vhosts", "list virtual hosts");
  s = sub("add_vhost", "add a virtual host");
  s->add_option("vhost", x.a)->required();
  s = sub("delete_vhost", "delete a virtual host");
  s->add_option("vhost", x.a)->required();
  s = sub("set_permissions", "set a user's permissions in a vhost");
  vhost(s);
  s->add_option("username", x.a)->required();
  s->add_option("conf", x.b)->required();
  s->add_option("write", x.c)->required();
  s->add_option("read", x.d)->required();
  s = sub("clear_permissions", "clear a user's permissions in a vhost");
  vhost(s);
  s->add_option("username", x.a)->required();
  s = sub("list_permissions", "list the permissions in a vhost");
  vhost(s);
  s = sub("list_user_permissions", "list a user's permissions");
  s->add_option("username", x.a)->required();
  s = sub("set_topic_permissions", "set a user's routing-key regexes for a topic exchange of a vhost");
  vhost(s);
  s->add_option("username", x.a)->required();
  s->add_option("exchange", x.b)->required();
  s->add_option("write", x.c)->required();
  s->add_option("read", x.d)->required();
  s = sub("clear_topic_permissions", "clear a user's topic permissions in a vhost (one exchange's, or all)");
  vhost(s);
  s->add_option("username", x.a)->required();
  s->add_option("exchange", x.b);
  s = sub("list_topic_permissions", "list the topic permissions in a vhost");
  vhost(s);
  s = sub("list_user_topic_permissions", "list a user's topic permissions");
  s->add_option("username", x.a)->required();
  for (const char* name : {"set_policy", "set_operator_policy"}) {
    const bool op = std::string_view(name) == "set_operator_policy";
    s = sub(name, op ? "set an operator policy (limits that override policies and arguments)"
                     : "set a policy: its definition applies to the queues and exchanges whose names match PATTERN");
    vhost(s);
    s->add_option("--priority", x.priority, "the highest-priority matching policy applies")->capture_default_str();
    s->add_option("--apply-to", x.apply_to, op ? "queues (default), exchanges or all" : "all (default), queues or exchanges")
        ->check(CLI::IsMember({"all", "queues", "exchanges"}));
    s->add_option("name", x.a)->required();
    s->add_option("pattern", x.b)->required();
    s->add_option("definition", x.c, "a JSON object of policy keys")->required();
  }
  s = sub("clear_policy", "clear a policy");
  vhost(s);
  s->add_option("name", x.a)->required();
  s = sub("clear_operator_policy", "clear an operator policy");
  vhost(s);
  s->add_option("name", x.a)->required();
  s = sub("list_policies", "list the policies of a vhost");
  vhost(s);
  s = sub("list_operator_policies", "list the operator policies of a vhost");
  vhost(s);
  s = sub("list_queues", "list queues (columns: name messages messages_ready messages_unacknowledged consumers durable "
                         "auto_delete exclusive arguments state type vhost)");
  vhost(s);
  s->add_option("column", x.list);
  s = sub("list_exchanges", "list exchanges");
  vhost(s);
  s = sub("list_bindings", "list bindings");
  vhost(s);
  s = sub("list_connections", "list connections (columns: name user vhost peer_host peer_port host port state "
                              "protocol channels auth_mechanism ssl timeout frame_max channel_max client_properties "
                              "user_provided_name)");
  s->add_option("column", x.list);
  sub("list_channels", "list channels");
  s = sub("list_consumers", "list consumers");
  vhost(s);
  s = sub("purge_queue", "purge a queue");
  vhost(s);
  s->add_option("queue", x.a)->required();
  s = sub("delete_queue", "delete a queue");
  vhost(s);
  s->add_option("queue", x.a)->required();
  s = sub("close_connection", "close a connection (name as in list_connections)");
  s->add_option("connection", x.a)->required();
  s->add_option("reason", x.b)->required();
  sub("status", "show the node's status");
  s = sub("await_startup", "wait until the management API answers");
  s->add_option("--timeout,-t", o.timeout, "seconds")->capture_default_str();
  s = sub("export_definitions", "write definitions (GET /api/definitions) to FILE ('-': stdout)");
  s->add_option("file", x.a)->required();
  s = sub("import_definitions", "load definitions from FILE ('-': stdin)");
  s->add_option("file", x.a)->required();
  s = sub("backup", "online backup: the server writes a copy of its store to DIR (missing or empty), laid out "
                    "as a data dir, with the manifest DIR/warren-backup.json");
  s->add_option("dir", x.a)->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }

  try {
    return Run(verb, o, x);
  } catch (const Exit& e) {
    std::cout.flush();
    if (!e.message.empty()) std::cerr << e.message << "\n";
    return e.code;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "Error: " << e.what() << "\n";
    return kSoftware;
  }
}
