#include "server/net/server.h"

#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/amqp/constants.h"

namespace warren::net {

Server::Server(asio::io_context& io, broker::Broker& broker, ServerOptions options)
    : io_(io), broker_(broker), options_(std::move(options)), acceptor_(io) {
  // As RabbitMQ (3.7+): deleting a user or a vhost force-closes the connections that use it.
  broker_.set_on_user_deleted([this](std::string_view user) {
    CloseConnectionsIf([&](const Connection& c) { return c.user_name() == user; },
                       fmt::format("user '{}' is deleted", user));
  });
  broker_.set_on_vhost_deleted([this](std::string_view vhost) {
    CloseConnectionsIf([&](const Connection& c) { return c.vhost_name() == vhost; },
                       fmt::format("vhost '{}' is deleted", vhost));
  });
}

Server::~Server() {
  broker_.set_on_user_deleted(nullptr);
  broker_.set_on_vhost_deleted(nullptr);
}

void Server::CloseConnectionsIf(const std::function<bool(const Connection&)>& match, std::string_view reason) {
  std::vector<std::shared_ptr<Connection>> matching;
  for (auto& [id, c] : connections_) {
    if (match(*c)) matching.push_back(c);
  }
  for (auto& c : matching) c->CloseWithError(amqp::reply::kConnectionForced, reason);
}

std::string Server::Listen() {
  asio::error_code ec;
  auto address = asio::ip::make_address(options_.bind_address, ec);
  if (ec) return "invalid bind address '" + options_.bind_address + "': " + ec.message();
  asio::ip::tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return "cannot listen on " + options_.bind_address + ":" + std::to_string(options_.port) + ": " + ec.message();
  }
  bound_port_ = acceptor_.local_endpoint().port();
  Accept();
  return {};
}

void Server::Accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      spdlog::warn("accept failed: {}", ec.message());
    } else {
      auto connection = std::make_shared<Connection>(std::move(socket), *this, broker_, options_.limits);
      connections_.emplace(connection->id(), connection);
      connection->Start();
    }
    Accept();
  });
}

void Server::SetAlarm(ResourceAlarm alarm, bool on) {
  const bool was_on = this->alarm();
  if (on) {
    alarms_ |= static_cast<uint8_t>(alarm);
  } else {
    alarms_ &= static_cast<uint8_t>(~static_cast<uint8_t>(alarm));
  }
  if (this->alarm() || !was_on) return;  // connections block themselves at their next publish
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [id, c] : connections_) live.push_back(c);
  for (auto& c : live) c->OnAlarmCleared();
}

std::string Server::AlarmReason() const {
  std::string reason;
  for (auto [alarm, text] : {std::pair{ResourceAlarm::kMemory, "low on memory"}, {ResourceAlarm::kDisk, "low on disk"}}) {
    if (!this->alarm(alarm)) continue;
    if (!reason.empty()) reason += " & ";
    reason += text;
  }
  return reason;
}

void Server::Stop() {
  asio::error_code ec;
  acceptor_.close(ec);
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [id, c] : connections_) live.push_back(c);
  for (auto& c : live) c->Abort();
  connections_.clear();
}

}  // namespace warren::net
