// warren-server: parses settings (flags, then WARREN_* environment variables, then defaults),
// builds the broker and runs the AMQP listener on one io_context thread until SIGTERM/SIGINT.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <asio/post.hpp>

#include "server/broker/broker.h"
#include "server/broker/definitions.h"
#include "server/broker/persister.h"
#include "server/broker/recovery.h"
#include "server/http/management.h"
#include "server/http/prometheus.h"
#include "server/net/asio_timers.h"
#include "server/net/disk_monitor.h"
#include "server/net/fd_budget.h"
#include "server/net/memory_monitor.h"
#include "server/net/server.h"
#include "server/store_env.h"
#include "storage/store.h"

namespace {

struct Settings {
  uint16_t port = 5672;
  std::string bind = "0.0.0.0";
  std::string data_dir = "./data";
  std::string default_user = "guest";
  std::string default_pass = "guest";
  std::string log_level = "info";
  bool sync_writes = true;
  size_t queue_memory_window = 20000;
  uint64_t queue_memory_window_bytes = 64ull << 20;
  std::string memory_high_watermark = "0.4";  // RabbitMQ's vm_memory_high_watermark default
  uint64_t disk_free_limit = 50'000'000;  // RabbitMQ's default disk_free_limit
  uint16_t heartbeat = 60;
  uint32_t frame_max = 131072;
  uint16_t channel_max = 2047;
  uint64_t max_message_size = 128ull << 20;  // RabbitMQ's max_message_size
  std::string loopback_users = "guest";
  std::string load_definitions;
  uint16_t management_port = 15672;
  std::string management_bind;  // empty: same as bind
  std::string management_allowed_hosts;
  uint16_t prometheus_port = 15692;  // 0: off
  uint32_t collect_statistics_interval = 5000;  // ms, RabbitMQ's default
  uint64_t max_connections = 0;  // 0: only the file-descriptor budget bounds them
  size_t max_login_failures = 10;
  bool truncate_corrupt_wal = false;
};

// "a,b" -> {"a", "b"}; blanks around names are dropped, empty entries ignored.
std::set<std::string, std::less<>> SplitNames(const std::string& list) {
  std::set<std::string, std::less<>> names;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    const auto first = name.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    names.insert(name.substr(first, name.find_last_not_of(' ') - first + 1));
  }
  return names;
}

}  // namespace

// A fresh random token in DATA_DIR/.warrenctl-token (mode 0600), rewritten at each start: the
// management API accepts it as `Authorization: Bearer <token>` for an administrator, so that
// warrenctl on this machine needs no password (like rabbitmqctl). Empty on failure (logged).
static std::string WriteWarrenctlToken(const std::string& data_dir) {
  unsigned char raw[32];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(raw), sizeof raw)) {
    spdlog::warn("cannot read /dev/urandom: warrenctl token disabled");
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char c : raw) {
    token += kHex[c >> 4];
    token += kHex[c & 15];
  }
  const std::string path = (std::filesystem::path(data_dir) / ".warrenctl-token").string();
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0;
  const std::string line = token + "\n";
  ok = ok && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    spdlog::warn("cannot write {}: warrenctl token disabled", path);
    ::unlink(tmp.c_str());
    return {};
  }
  return token;
}

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"Warren: a durable AMQP 0-9-1 message broker, compatible with RabbitMQ clients"};
  app.add_option("--port", s.port, "AMQP port")->envname("WARREN_PORT")->capture_default_str();
  app.add_option("--bind", s.bind, "address to listen on (all interfaces by default)")
      ->envname("WARREN_BIND")->capture_default_str();
  app.add_option("--data-dir", s.data_dir, "data directory")->envname("WARREN_DATA_DIR")->capture_default_str();
  app.add_option("--default-user", s.default_user, "user created at first start")
      ->envname("WARREN_DEFAULT_USER")->capture_default_str();
  app.add_option("--default-pass", s.default_pass, "password of the default user")
      ->envname("WARREN_DEFAULT_PASS");
  app.add_option("--log-level", s.log_level, "trace, debug, info, warn, error")
      ->envname("WARREN_LOG_LEVEL")->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--sync-writes", s.sync_writes,
                 "fsync the store before confirming persistent messages (false: OS-buffered writes, "
                 "faster, may lose the last confirmed messages on power loss)")
      ->envname("WARREN_SYNC_WRITES")->capture_default_str();
  app.add_option("--queue-memory-window", s.queue_memory_window,
                 "ready messages a durable queue keeps in memory; the rest of a backlog stays on disk")
      ->envname("WARREN_QUEUE_MEMORY_WINDOW")->check(CLI::Range(size_t{2}, size_t{100000000}))->capture_default_str();
  app.add_option("--queue-memory-window-bytes", s.queue_memory_window_bytes,
                 "body bytes of ready messages a queue keeps in memory (e.g. 64MiB); the rest of a backlog stays on disk")
      ->envname("WARREN_QUEUE_MEMORY_WINDOW_BYTES")->transform(CLI::AsSizeValue(false))->capture_default_str();
  app.add_option("--memory-high-watermark", s.memory_high_watermark,
                 "block publishers while the broker holds this much: a fraction of RAM (or of the cgroup's limit), "
                 "e.g. 0.4, or an amount, e.g. 512MiB or 1GB (RabbitMQ's vm_memory_high_watermark)")
      ->envname("WARREN_MEMORY_HIGH_WATERMARK")->capture_default_str();
  app.add_option("--disk-free-limit", s.disk_free_limit,
                 "block publishers while the data directory's file system has less free space (e.g. 50MB, 1GiB)")
      ->envname("WARREN_DISK_FREE_LIMIT")->transform(CLI::AsSizeValue(false))->capture_default_str();
  app.add_option("--heartbeat", s.heartbeat, "heartbeat interval proposed to clients, seconds (0 = off)")
      ->envname("WARREN_HEARTBEAT")->capture_default_str();
  app.add_option("--frame-max", s.frame_max, "largest frame accepted, bytes")
      ->check(CLI::Range(4096u, 1u << 24))->capture_default_str();
  app.add_option("--channel-max", s.channel_max, "most channels per connection")
      ->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("--max-message-size", s.max_message_size,
                 "largest message body accepted, bytes (RabbitMQ's max_message_size); a connection may hold "
                 "twice this in publishes being assembled")
      ->check(CLI::Range(uint64_t{1}, uint64_t{512} << 20))->capture_default_str();
  app.add_option("--loopback-users", s.loopback_users,
                 "comma-separated users that may only connect from localhost (RabbitMQ's loopback_users; "
                 "empty: none)")
      ->envname("WARREN_LOOPBACK_USERS")->capture_default_str();
  app.add_option("--load-definitions", s.load_definitions,
                 "RabbitMQ definitions JSON file whose vhosts, users, permissions, exchanges, queues and bindings are created or updated "
                 "at startup (RabbitMQ's load_definitions) and again on SIGHUP")
      ->envname("WARREN_LOAD_DEFINITIONS");
  app.add_option("--management-port", s.management_port, "management HTTP API port (RabbitMQ's /api; 0 = disabled)")
      ->envname("WARREN_MANAGEMENT_PORT")->capture_default_str();
  app.add_option("--management-bind", s.management_bind, "address the management API listens on (default: --bind)")
      ->envname("WARREN_MANAGEMENT_BIND");
  app.add_option("--management-allowed-hosts", s.management_allowed_hosts,
                 "comma-separated host names the management API answers to besides IP addresses, localhost and this "
                 "machine's hostname (a request with another Host header is 403: DNS rebinding)")
      ->envname("WARREN_MANAGEMENT_ALLOWED_HOSTS");
  app.add_option("--prometheus-port", s.prometheus_port,
                 "Prometheus metrics port (GET /metrics, no authentication, listens on --management-bind; 0 = disabled)")
      ->envname("WARREN_PROMETHEUS_PORT")->capture_default_str();
  app.add_option("--collect-statistics-interval", s.collect_statistics_interval,
                 "milliseconds between samples of the message rates shown by the management API and UI")
      ->envname("WARREN_COLLECT_STATISTICS_INTERVAL")->check(CLI::Range(100u, 3'600'000u))->capture_default_str();
  app.add_option("--max-connections", s.max_connections,
                 "most AMQP connections at once; more wait in the listen backlog (RabbitMQ's connection_max; "
                 "0 = no limit but the file-descriptor budget)")
      ->envname("WARREN_MAX_CONNECTIONS")->capture_default_str();
  app.add_option("--max-login-failures", s.max_login_failures,
                 "failed AMQP logins from one address within 60 s after which its logins are refused for 60 s "
                 "(0 = no throttle)")
      ->envname("WARREN_MAX_LOGIN_FAILURES")->capture_default_str();
  app.add_flag("--truncate-corrupt-wal", s.truncate_corrupt_wal,
               "start on a store whose write-ahead log is damaged before its end, keeping only the records "
               "before the damage (the rest is lost: keep a copy of the data directory first)");
  CLI11_PARSE(app, argc, argv);
  // Message bodies and password hashes are for this user only: every file and directory the
  // server creates (the data dir, the store's files, the warrenctl token) is 0600 / 0700.
  ::umask(077);

  spdlog::set_level(spdlog::level::from_str(s.log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %v");
  const auto watermark = warren::broker::ParseMemoryWatermark(s.memory_high_watermark);
  if (!watermark) {
    spdlog::critical("{}", watermark.error());
    return 1;
  }

  if (struct stat st; ::stat(s.data_dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    spdlog::warn("the data directory '{}' is open to other local users (mode {:o}): stored messages and password "
                 "hashes may be readable by them; chmod 700 it",
                 s.data_dir, st.st_mode & 07777);
  }
  std::error_code ec;
  std::filesystem::create_directories(s.data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data directory '{}': {}", s.data_dir, ec.message());
    return 1;
  }

  std::string fd_error;
  const warren::net::FdBudget fds = warren::net::PlanFdBudget(warren::net::RaiseFdLimit(&fd_error), s.max_connections);
  if (!fd_error.empty()) spdlog::warn("cannot raise the file descriptor limit: {}", fd_error);
  spdlog::info("file descriptors: limit {}, {} kept for the store and listeners (store tables at most {}), "
               "AMQP connections at most {}",
               fds.fd_limit, fds.reserve, fds.store_max_open_files, fds.max_connections);

  asio::io_context io(1);
  std::unique_ptr<warren::storage::Store> store;
  warren::storage::StoreOptions store_options;
  store_options.dir = warren::storage::StoreDirFor(s.data_dir);
  store_options.sync_writes = s.sync_writes;
  store_options.env = warren::server::StoreEnv(store_options.dir);
  store_options.max_open_files = fds.store_max_open_files;
  store_options.truncate_corrupt_wal = s.truncate_corrupt_wal;
  if (s.truncate_corrupt_wal) {
    spdlog::warn("--truncate-corrupt-wal: a write-ahead log damaged before its end is replayed up to the damage "
                 "and the records after it are dropped");
  }
  if (auto status = warren::storage::Store::Open(store_options, &store); !status.ok()) {
    // The status says what is wrong and what to do; nothing is worth guessing beyond it.
    spdlog::critical("cannot open the data directory '{}', refusing to start: {}", s.data_dir, status.ToString());
    return 1;
  }
  warren::broker::Broker broker;
  const uint64_t total_memory = warren::net::TotalMemoryBytes();
  if (watermark->relative && total_memory == 0) {
    spdlog::critical("cannot read the machine's memory size for --memory-high-watermark {}; give an amount instead",
                     s.memory_high_watermark);
    return 1;
  }
  broker.memory().set_limit(warren::broker::MemoryLimit(*watermark, total_memory));
  spdlog::info("memory high watermark: {} bytes ({} of {} bytes of memory)", broker.memory().limit(),
               s.memory_high_watermark, total_memory);
  warren::net::AsioTimerService timers(io.get_executor());
  broker.set_timers(&timers);  // before recovery: restored queues arm their TTL and x-expires timers
  warren::broker::Persister persister(store.get(), [&io](std::function<void()> fn) { asio::post(io, std::move(fn)); });
  persister.set_memory_window(s.queue_memory_window);
  persister.set_memory_window_bytes(s.queue_memory_window_bytes);
  warren::broker::RecoveryStats recovered;
  if (auto status = warren::broker::RecoverBroker(*store, broker, persister, {s.default_user, s.default_pass}, &recovered);
      !status.ok()) {
    spdlog::critical("cannot recover from the data directory '{}': {}", s.data_dir, status.ToString());
    return 1;
  }
  spdlog::info("recovered {} vhosts, {} users, {} exchanges, {} queues, {} bindings, {} messages in {:.3f} s "
               "({} paged transient messages and {} transient queues' paged messages discarded, {} orphan bodies removed)",
               recovered.vhosts, recovered.users, recovered.exchanges, recovered.queues, recovered.bindings,
               recovered.messages, recovered.seconds, recovered.transient_discarded, recovered.transient_queues_discarded,
               recovered.orphan_bodies_removed);
  if (recovered.quarantined > 0) {
    spdlog::error("{} stored records could not be recovered and were quarantined (see the errors above; "
                  "`warren-dump quarantine` lists them)", recovered.quarantined);
  }

  // --load-definitions: applied at startup (an invalid file stops the server) and again on SIGHUP
  // (an invalid file is then logged and changes nothing).
  auto load_definitions = [&]() -> bool {
    std::ifstream in(s.load_definitions, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      spdlog::critical("cannot read the definitions file '{}'", s.load_definitions);
      return false;
    }
    auto loaded = warren::broker::LoadDefinitions(broker, text.str());
    if (!loaded) {
      spdlog::critical("invalid definitions file '{}': {}", s.load_definitions, loaded.error().text);
      return false;
    }
    spdlog::info("loaded definitions from '{}': {} vhosts, {} users, {} permissions, {} topic permissions, "
                 "{} exchanges, {} queues, {} bindings",
                 s.load_definitions, loaded->vhosts, loaded->users, loaded->permissions, loaded->topic_permissions,
                 loaded->exchanges, loaded->queues, loaded->bindings);
    for (const auto& section : loaded->ignored) {
      spdlog::warn("definitions file '{}': section '{}' is not imported", s.load_definitions, section);
    }
    return true;
  };
  if (!s.load_definitions.empty() && !load_definitions()) return 1;

  warren::net::ServerOptions options;
  options.loopback_users = SplitNames(s.loopback_users);
  options.bind_address = s.bind;
  options.port = s.port;
  options.limits.heartbeat = s.heartbeat;
  options.limits.frame_max = s.frame_max;
  options.limits.channel_max = s.channel_max;
  options.limits.max_message_size = s.max_message_size;
  options.limits.max_assembly_bytes = 2 * s.max_message_size;
  options.max_connections = fds.max_connections;
  options.login_throttle.max_failures = s.max_login_failures;
  warren::net::Server server(io, broker, options);
  if (std::string error = server.Listen(); !error.empty()) {
    spdlog::critical("{}", error);
    return 1;
  }
  spdlog::info("Warren {} accepting AMQP 0-9-1 connections on {}:{} (data dir '{}')", WARREN_VERSION, s.bind,
               server.port(), s.data_dir);

  warren::net::DiskMonitor disk_monitor(io, s.data_dir, s.disk_free_limit,
                                        [&server](bool alarm) { server.SetAlarm(warren::net::ResourceAlarm::kDisk, alarm); });
  disk_monitor.Start();
  warren::net::MemoryMonitor memory_monitor(
      io, broker.memory(), [&server](bool alarm) { server.SetAlarm(warren::net::ResourceAlarm::kMemory, alarm); });
  memory_monitor.Start();

  std::unique_ptr<warren::http::ManagementServer> management;
  if (s.management_port != 0) {
    warren::http::ManagementOptions management_options;
    management_options.bind_address = s.management_bind.empty() ? s.bind : s.management_bind;
    management_options.port = s.management_port;
    management_options.amqp_port = server.port();
    management_options.admin_token = WriteWarrenctlToken(s.data_dir);
    for (const std::string& host : SplitNames(s.management_allowed_hosts)) management_options.allowed_hosts.push_back(host);
    management_options.disk_monitor = &disk_monitor;
    management = std::make_unique<warren::http::ManagementServer>(io, broker, server, management_options);
    if (std::string error = management->Start(); !error.empty()) {
      spdlog::critical("{}", error);
      return 1;
    }
    spdlog::info("management HTTP API listening on {}:{}", management_options.bind_address, management->port());
  }

  std::unique_ptr<warren::http::PrometheusServer> prometheus;
  if (s.prometheus_port != 0) {
    warren::http::PrometheusOptions prometheus_options;
    prometheus_options.bind_address = s.management_bind.empty() ? s.bind : s.management_bind;
    prometheus_options.port = s.prometheus_port;
    prometheus = std::make_unique<warren::http::PrometheusServer>(io, broker, &server, store.get(), prometheus_options);
    if (std::string error = prometheus->Start(); !error.empty()) {
      spdlog::critical("{}", error);
      return 1;
    }
    spdlog::info("Prometheus metrics on {}:{}/metrics", prometheus_options.bind_address, prometheus->port());
  }

  broker.StartStatsSampling(s.collect_statistics_interval);

  asio::error_code signal_error;
  asio::signal_set reload(io);
  reload.add(SIGHUP, signal_error);
  if (signal_error) spdlog::warn("cannot handle SIGHUP: {}", signal_error.message());
  std::function<void()> wait_reload = [&] {
    reload.async_wait([&](const asio::error_code& error, int) {
      if (error) return;
      if (s.load_definitions.empty()) {
        spdlog::info("received SIGHUP; no --load-definitions file to reload");
      } else {
        spdlog::info("received SIGHUP, reloading definitions from '{}'", s.load_definitions);
        load_definitions();
      }
      wait_reload();
    });
  };
  wait_reload();
  asio::signal_set signals(io);
  for (int signal : {SIGINT, SIGTERM}) {
    if (signals.add(signal, signal_error); signal_error) {
      spdlog::critical("cannot handle signal {}: {}", signal, signal_error.message());
      return 1;
    }
  }
  bool shutting_down = false;
  auto shut_down = [&] {
    if (shutting_down) return;  // a signal and a store failure, or several failed batches
    shutting_down = true;
    disk_monitor.Stop();
    memory_monitor.Stop();
    asio::error_code cancel_error;
    reload.cancel(cancel_error);
    signals.cancel(cancel_error);
    if (management) management->Stop();
    if (prometheus) prometheus->Stop();
    server.Stop();
    io.stop();
  };
  signals.async_wait([&](const asio::error_code& error, int signal) {
    if (error) return;
    spdlog::info("received signal {}, shutting down", signal);
    shut_down();
  });
  // Nothing persistent can be confirmed any more; a restart replays the WAL and recovers every
  // confirmed message, so stop (non-zero: a supervisor restarts us) rather than serve half a broker.
  persister.set_on_fatal_failure([&](const std::string& error) {
    spdlog::critical("the store cannot write any more ({}); stopping", error);
    shut_down();
  });
  std::signal(SIGPIPE, SIG_IGN);
  // A handler that throws must not take the broker down: log it and keep serving. (Connections
  // catch their own; this is the net for everything else.)
  for (;;) {
    try {
      io.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("unexpected error in the event loop, continuing: {}", e.what());
    } catch (...) {
      spdlog::error("unexpected error in the event loop, continuing: unknown exception");
    }
  }
  // The stop left the closed connections' aborted reads and writes queued: run them, so every
  // connection and the messages its buffers pin are released here, while the broker (and its
  // MemoryAccount) lives, and not when the io_context is destroyed after it.
  io.restart();
  io.poll();
  broker.CloseDeliveryHorizons();
  persister.Commit();  // what the closed connections requeued or acked, and the horizons
  const auto store_stats = store->stats();
  const uint64_t published = persister.stats().persistent_publishes;
  spdlog::info("store: {} persistent publishes, {} batches in {} writes, {} fsyncs ({:.1f} publishes per fsync, "
               "mean fsync {:.0f} us)",
               published, store_stats.batches, store_stats.groups, store_stats.syncs,
               store_stats.syncs ? double(published) / double(store_stats.syncs) : 0.0,
               store_stats.syncs ? double(store_stats.sync_micros_total) / double(store_stats.syncs) : 0.0);
  if (persister.failing()) {
    // Closing RocksDB after a failed write can abort inside it; its WAL replay at the next start
    // recovers everything that was confirmed, so leave without closing.
    spdlog::critical("stopped with the store failing ({}); exiting without closing it", persister.failure());
    spdlog::shutdown();
    std::_Exit(1);
  }
  store.reset();  // drains the store's queue of batches
  spdlog::info("Warren stopped");
  return 0;
}
