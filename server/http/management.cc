#include "server/http/management.h"

#include <strings.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>
#include <httplib.h>

#include "server/http/handoff.h"
#include "server/http/internal/api.h"
#include "server/http/internal/codec.h"
#include "server/http/listener.h"
#include "server/http/origin.h"
#include "server/http/web_ui.h"

namespace warren::http {

using internal::json;
using internal::JsonReply;
using internal::Reply;
using internal::Request;

namespace {

constexpr auto kBrokerTimeout = std::chrono::seconds(5);
constexpr char kRealm[] = "Basic realm=\"RabbitMQ Management\"";

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
    segments.push_back(internal::DecodeSegment(target.substr(start, end - start)));
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
    if (auto decoded = internal::DecodeBase64(std::string_view(auth).substr(kBasic.size()))) {
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

// Security headers for every reply, the UI's pages and the API's JSON alike. The UI loads
// only its own files (the data: URL is its empty favicon) and may not be framed.
void SecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                 "form-action 'self'; frame-ancestors 'none'");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
}

void Answer(const Reply& reply, const httplib::Request& req, httplib::Response& res) {
  res.status = reply.status;
  // Not for the web UI's fetches: the header would make the browser pop its own login dialog.
  if (reply.authenticate && req.get_header_value("X-Requested-With") != "XMLHttpRequest") {
    res.set_header("WWW-Authenticate", kRealm);
  }
  if (!reply.location.empty()) res.set_header("Location", reply.location);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("Vary", "accept, accept-encoding, origin");
  if (!reply.body.empty()) res.set_content(reply.body, "application/json");
}

Reply Refused(int status, std::string_view error, std::string reason) {
  return JsonReply(json{{"error", error}, {"reason", std::move(reason)}}, status);
}

Reply Unavailable() {
  return Refused(503, "service_unavailable", "the broker did not start the request in time; it was not applied");
}

bool IsWrite(const std::string& method) { return method != "GET" && method != "HEAD" && method != "OPTIONS"; }

size_t BodyLimit(const Request& r) {
  const auto& s = r.segments;
  const bool large = (!s.empty() && s[0] == "definitions") || (s.size() == 4 && s[0] == "exchanges" && s[3] == "publish");
  return large ? kMaxBody : kMaxObjectBody;
}

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return {};
  return name;
}

}  // namespace

ManagementServer::ManagementServer(asio::io_context& io, broker::Broker& broker, net::Server& server,
                                   ManagementOptions options)
    : stopping_(std::make_shared<std::atomic<bool>>(false)) {
  const std::string bind = options.bind_address;
  const uint16_t port = options.port;
  ssl_port_ = options.ssl_port;
  tls_ = options.tls;
  const std::vector<std::string> allowed_hosts = options.allowed_hosts;
  api_ = std::make_unique<internal::Api>(broker, server, std::move(options));
  http_ = std::make_unique<HttpServer>();
  http_->set_payload_max_length(kMaxBody);
  bind_address_ = bind;
  bound_port_ = port;

  internal::Api* api = api_.get();
  std::shared_ptr<std::atomic<bool>> stopping = stopping_;
  auto on_broker = [&io, stopping](std::function<Reply()> fn) {
    return CallOnBroker<Reply>(io, std::move(fn), kBrokerTimeout, *stopping);
  };

  // Runs on the HTTP thread once the head has arrived and before any body is read.
  http_->set_pre_routing_handler([api, &io, stopping, allowed_hosts, hostname = Hostname()](
                                     const httplib::Request& req, httplib::Response& res) {
    const auto refuse = [&](const Reply& reply) {
      Answer(reply, req, res);
      SecurityHeaders(res);
      return httplib::Server::HandlerResponse::Handled;
    };
    const std::string host = req.get_header_value("Host");
    if (!HostAllowed(host, hostname, allowed_hosts)) {
      return refuse(Refused(403, "forbidden",
                            fmt::format("Host '{}' is not this server's address, hostname or one of "
                                        "--management-allowed-hosts",
                                        host)));
    }
    if (IsWrite(req.method) && req.has_header("Origin") && !SameOrigin(req.get_header_value("Origin"), host)) {
      return refuse(Refused(403, "forbidden",
                            fmt::format("cross-origin request from '{}' refused", req.get_header_value("Origin"))));
    }
    const size_t length = req.get_header_value<uint64_t>("Content-Length");
    if (length == 0) return httplib::Server::HandlerResponse::Unhandled;
    Request head = CopyRequest(req.method.c_str(), req);
    const std::optional<std::optional<Reply>> refusal =
        CallOnBroker<std::optional<Reply>>(io, [api, head] { return api->Refusal(head); }, kBrokerTimeout, *stopping);
    if (!refusal) return refuse(Unavailable());
    if (*refusal) return refuse(**refusal);
    if (!IsJsonContentType(req.get_header_value("Content-Type"))) {
      return refuse(Refused(415, "unsupported_media_type",
                            fmt::format("a request body must be sent as Content-Type: application/json, not '{}'",
                                        req.get_header_value("Content-Type"))));
    }
    if (const size_t limit = BodyLimit(head); length > limit) {
      return refuse(Refused(413, "payload_too_large",
                            fmt::format("request body of {} bytes exceeds this endpoint's limit of {} bytes", length, limit)));
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_->set_post_routing_handler([](const httplib::Request&, httplib::Response& res) { SecurityHeaders(res); });

  auto handle = [api, on_broker](const char* method) {
    return [api, on_broker, method](const httplib::Request& req, httplib::Response& res) {
      Reply reply;
      try {
        reply = on_broker([api, request = CopyRequest(method, req)] { return api->Dispatch(request); })
                    .value_or(Unavailable());
        if (reply.off_broker) reply = std::function<Reply()>(std::move(reply.off_broker))();
      } catch (const std::exception& e) {
        reply = Refused(500, "internal_server_error", e.what());
      }
      Answer(reply, req, res);
    };
  };
  MountWebUi(*http_);  // first: httplib answers with the first matching handler
  http_->Get(".*", handle("GET"));
  http_->Put(".*", handle("PUT"));
  http_->Post(".*", handle("POST"));
  http_->Delete(".*", handle("DELETE"));
  http_->Patch(".*", handle("PATCH"));
}

ManagementServer::~ManagementServer() { Stop(); }

std::string ManagementServer::Start() {
  std::string error = http_->Start("management API", bind_address_, &bound_port_);
  if (error.empty() && tls_ != nullptr) error = http_->StartTls("management HTTPS", bind_address_, &ssl_port_, tls_);
  return error;
}

void ManagementServer::Stop() {
  stopping_->store(true);
  http_->Stop();
}

}  // namespace warren::http

