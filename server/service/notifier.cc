#include "server/service/notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace warren::service {

namespace {

// STATUS= ends at a newline: a line break inside the text would start another assignment.
std::string OneLine(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

}  // namespace

Notifier::Notifier(asio::io_context& io) : watchdog_timer_(io), status_timer_(io) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  if (!enabled_) return;
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_interval_ = std::chrono::microseconds(usec / 2);
}

Notifier::~Notifier() {
  watchdog_timer_.cancel();
  status_timer_.cancel();
}

void Notifier::Send(const std::string& state) {
  if (!enabled_) return;
  if (int r = sd_notify(0, state.c_str()); r < 0) {
    spdlog::warn("cannot notify systemd ({}): {}", state.substr(0, state.find('\n')), std::strerror(-r));
  }
}

void Notifier::Ready(std::string_view status) { Send(fmt::format("READY=1\nSTATUS={}", OneLine(status))); }

void Notifier::Status(std::string_view status) { Send(fmt::format("STATUS={}", OneLine(status))); }

void Notifier::SendProgress(std::string_view status) {
  Send(fmt::format("STATUS={}\nEXTEND_TIMEOUT_USEC={}", OneLine(status),
                   std::chrono::microseconds(kProgressTimeout).count()));
}

void Notifier::Stopping(std::string_view status) {
  watchdog_timer_.cancel();
  status_timer_.cancel();
  status_ = nullptr;
  Send(fmt::format("STOPPING=1\nSTATUS={}", OneLine(status)));
}

void Notifier::StartWatchdog() {
  if (watchdog_interval_.count() == 0) return;
  spdlog::info("systemd watchdog: pinging every {} ms", watchdog_interval_.count() / 1000);
  Ping();
}

void Notifier::StartStatusUpdates(std::chrono::milliseconds interval, std::function<std::string()> status) {
  if (!enabled_) return;
  status_interval_ = interval;
  status_ = std::move(status);
  status_timer_.expires_after(status_interval_);
  status_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) UpdateStatus();
  });
}

void Notifier::UpdateStatus() {
  if (!status_) return;
  Status(status_());
  StartStatusUpdates(status_interval_, std::move(status_));
}

void Notifier::Ping() {
  Send("WATCHDOG=1");
  watchdog_timer_.expires_after(watchdog_interval_);
  watchdog_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) Ping();
  });
}

}  // namespace warren::service
