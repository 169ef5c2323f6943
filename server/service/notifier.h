// systemd's readiness protocol (sd_notify(3)): READY=1 once recovery is done and every listener is
// open, STATUS= lines while recovering and serving, WATCHDOG=1 pings, STOPPING=1 at shutdown.
// Without NOTIFY_SOCKET in the environment (not started by systemd with Type=notify) every call
// does nothing.
//
// The watchdog pings come from a timer on the broker's io_context, so they stop when that thread
// hangs and systemd (WatchdogSec=) restarts the service; they are sent every half WATCHDOG_USEC.
// systemd arms the watchdog only after READY=1; before it, while a long recovery runs, Progress()
// extends the start timeout (EXTEND_TIMEOUT_USEC) so that a recovery that advances is not killed
// and one that stalls is.
//
// Thread: the broker thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

namespace warren::service {

class Notifier {
 public:
  // How long a recovery may go without calling Progress() before systemd gives up on the start.
  static constexpr auto kProgressTimeout = std::chrono::seconds(60);
  static constexpr auto kProgressInterval = std::chrono::seconds(1);

  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (WATCHDOG_PID, when set, must be this process).
  explicit Notifier(asio::io_context& io);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return enabled_; }
  // Zero when systemd asked for no watchdog.
  std::chrono::microseconds watchdog_interval() const { return watchdog_interval_; }

  void Ready(std::string_view status);
  void Status(std::string_view status);
  // At most one STATUS per kProgressInterval, each with EXTEND_TIMEOUT_USEC=kProgressTimeout.
  // `status` is only called when a line is due.
  template <typename Fn>
  void Progress(Fn&& status) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress_ < kProgressInterval) return;
    last_progress_ = now;
    SendProgress(status());
  }
  // Also stops the watchdog pings and status updates: systemd stops expecting pings with STOPPING=1.
  void Stopping(std::string_view status);
  // Begins the WATCHDOG=1 pings (when systemd asked for them).
  void StartWatchdog();
  // While serving: a STATUS= line from `status` every `interval` (systemctl status shows it).
  void StartStatusUpdates(std::chrono::milliseconds interval, std::function<std::string()> status);

 private:
  void Send(const std::string& state);
  void SendProgress(std::string_view status);
  void Ping();
  void UpdateStatus();

  bool enabled_ = false;
  std::chrono::microseconds watchdog_interval_{0};
  std::chrono::steady_clock::time_point last_progress_{};
  asio::steady_timer watchdog_timer_;
  asio::steady_timer status_timer_;
  std::chrono::milliseconds status_interval_{0};
  std::function<std::string()> status_;
};

}  // namespace warren::service
