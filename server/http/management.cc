#include "server/http/management.h"

#include <strings.h>

#include <chrono>
#include <future>

#include <asio/post.hpp>
#include <httplib.h>

#include "server/http/internal/api.h"
#include "server/http/internal/codec.h"
#include "server/http/listener.h"
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

}  // namespace

ManagementServer::ManagementServer(asio::io_context& io, broker::Broker& broker, net::Server& server,
                                   ManagementOptions options)
    : stopping_(std::make_shared<std::atomic<bool>>(false)) {
  const std::string bind = options.bind_address;
  const uint16_t port = options.port;
  api_ = std::make_unique<internal::Api>(broker, server, std::move(options));
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
      internal::Api* api = api_.get();
      asio::post(io, [api, promise, request = CopyRequest(method, req)] {
        try {
          promise->set_value(api->Dispatch(request));
        } catch (...) {
          promise->set_exception(std::current_exception());  // answered as an error, not left to time out
        }
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
  http_->Patch(".*", handle("PATCH"));
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

