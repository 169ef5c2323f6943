#include "server/net/server.h"

#include <utility>
#include <vector>

#include <asio/post.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/amqp/constants.h"

namespace warren::net {

Server::Server(asio::io_context& io, broker::Broker& broker, ServerOptions options)
    : io_(io),
      broker_(broker),
      options_(std::move(options)),
      listeners_{Listener(io), Listener(io)},
      login_throttle_(options_.login_throttle),
      read_arena_(std::make_unique_for_overwrite<char[]>(kReadArenaBytes)) {
  broker_.memory().Add(broker::MemoryUse::kConnectionBuffers, kReadArenaBytes);
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
  broker_.memory().Sub(broker::MemoryUse::kConnectionBuffers, kReadArenaBytes);
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
  if (std::string error = Bind(listeners_[0], options_.port); !error.empty()) return error;
  if (options_.tls != nullptr) {
    if (std::string error = Bind(listeners_[1], options_.ssl_port); !error.empty()) return error;
  }
  Accept();
  return {};
}

std::string Server::Bind(Listener& listener, uint16_t port) {
  asio::error_code ec;
  auto address = asio::ip::make_address(options_.bind_address, ec);
  if (ec) return "invalid bind address '" + options_.bind_address + "': " + ec.message();
  asio::ip::tcp::endpoint endpoint(address, port);
  asio::ip::tcp::acceptor& acceptor = listener.acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on " + options_.bind_address + ":" + std::to_string(port) + ": " + ec.message();
  listener.bound_port = acceptor.local_endpoint(ec).port();
  if (ec) return "cannot listen on " + options_.bind_address + ": " + ec.message();
  return {};
}

void Server::Accept() {
  for (Listener& listener : listeners_) Accept(listener);
}

void Server::Accept(Listener& listener) {
  if (listener.accept_pending || !listener.acceptor.is_open()) return;
  if (options_.max_connections != 0 && connections_.size() >= options_.max_connections) {
    const auto now = std::chrono::steady_clock::now();
    if (!at_limit_logged_ && now - last_limit_log_ >= kAcceptLogInterval) {
      spdlog::warn("{} AMQP connections open, the limit: new connections wait until one closes",
                   connections_.size());
      at_limit_logged_ = true;
      last_limit_log_ = now;
    }
    return;  // Unregister resumes
  }
  if (at_limit_logged_) {
    spdlog::info("below the AMQP connection limit again ({} open)", connections_.size());
    at_limit_logged_ = false;
  }
  listener.accept_pending = true;
  listener.acceptor.async_accept(listener.accept_peer, [this, &listener](const asio::error_code& ec,
                                                                         asio::ip::tcp::socket socket) {
    listener.accept_pending = false;
    try {
      OnAccepted(listener, ec, std::move(socket));
    } catch (const std::exception& e) {
      spdlog::error("error while accepting an AMQP connection: {}", e.what());
      Accept(listener);
    }
  });
}

void Server::OnAccepted(Listener& listener, const asio::error_code& ec, asio::ip::tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  const auto now = std::chrono::steady_clock::now();
  if (ec && ec != asio::error::connection_aborted) {
    ++failed_accepts_;
    if (failed_accepts_ == 1 || now - last_accept_log_ >= kAcceptLogInterval) {
      spdlog::warn("accepting AMQP connections failed: {} ({} open, {} failures in a row); retrying every {} ms",
                   ec.message(), connections_.size(), failed_accepts_, kAcceptBackoff.count());
      last_accept_log_ = now;
    }
    listener.accept_pending = true;
    listener.backoff_timer.expires_after(kAcceptBackoff);
    listener.backoff_timer.async_wait([this, &listener](const asio::error_code& wait_error) {
      listener.accept_pending = false;
      if (!wait_error) Accept(listener);
    });
    return;
  }
  if (failed_accepts_ != 0) {
    spdlog::info("accepting AMQP connections again after {} failures", failed_accepts_);
    failed_accepts_ = 0;
  }
  if (!ec) {
    const bool tls = &listener == &listeners_[1];
    auto connection = std::make_shared<Connection>(
        std::move(socket), listener.accept_peer, *this, broker_, options_.limits,
        tls ? options_.tls->current() : nullptr, tls && options_.tls->options().verify_peer);
    connections_.emplace(connection->id(), connection);
    connection->Start();
  }
  Accept(listener);
}

void Server::Unregister(uint64_t connection_id) {
  connections_.erase(connection_id);
  if (connections_.empty() && on_all_closed_) asio::post(io_, std::exchange(on_all_closed_, nullptr));
  Accept();
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

void Server::CloseListeners() {
  asio::error_code ec;
  for (Listener& listener : listeners_) {
    listener.acceptor.close(ec);
    listener.backoff_timer.cancel();
  }
}

void Server::StopAccepting() {
  CloseListeners();
  for (auto& [id, c] : connections_) c->StopReading();
}

void Server::CloseAll(std::string_view reason, std::function<void()> on_closed) {
  on_all_closed_ = std::move(on_closed);
  if (connections_.empty()) {
    asio::post(io_, std::exchange(on_all_closed_, nullptr));
    return;
  }
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [id, c] : connections_) live.push_back(c);
  for (auto& c : live) {
    if (c->is_open()) {
      c->CloseWithError(amqp::reply::kConnectionForced, reason);
    } else if (c->handshaking()) {
      c->Abort();
    }  // else closing already, within its close-ok timeout
  }
}

void Server::Stop() {
  on_all_closed_ = nullptr;
  CloseListeners();
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [id, c] : connections_) live.push_back(c);
  for (auto& c : live) c->Abort();
  connections_.clear();
}

}  // namespace warren::net
