// warren-server: resolves its settings (flags, WARREN_* environment variables, the configuration
// file, defaults: server/config/settings.h), builds the broker and runs the AMQP listener on one
// io_context thread until SIGTERM/SIGINT, then shuts down gracefully (docs/ARCHITECTURE.md,
// "Service"). Under systemd (Type=notify) it reports readiness, progress and watchdog pings.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <asio/post.hpp>

#include "server/broker/broker.h"
#include "server/broker/definitions.h"
#include "server/broker/persister.h"
#include "server/broker/recovery.h"
#include "server/config/settings.h"
#include "server/http/management.h"
#include "server/http/prometheus.h"
#include "server/net/asio_timers.h"
#include "server/net/disk_monitor.h"
#include "server/net/fd_budget.h"
#include "server/net/memory_monitor.h"
#include "server/net/server.h"
#include "server/net/shards.h"
#include "server/net/tls.h"
#include "server/service/logging.h"
#include "server/service/notifier.h"
#include "server/journal/store_journal.h"
#include "server/store_env.h"
#include "storage/store.h"

namespace {

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

// The AMQPS listener's TLS settings (ssl_options.*), or the management API's (management.ssl.*
// files; no client certificates asked for).
warren::net::TlsOptions TlsOptionsFor(const warren::config::Settings& s, bool management) {
  warren::net::TlsOptions o;
  o.cacertfile = management ? s.management_ssl_cacertfile : s.ssl_cacertfile;
  o.certfile = management ? s.management_ssl_certfile : s.ssl_certfile;
  o.keyfile = management ? s.management_ssl_keyfile : s.ssl_keyfile;
  o.verify_peer = !management && s.ssl_verify_peer;
  o.fail_if_no_peer_cert = !management && s.ssl_fail_if_no_peer_cert;
  o.versions = s.ssl_versions;
  o.ciphers = s.ssl_ciphers;
  return o;
}

// Null when `port` is 0 (TLS off); exits the start with the reason when the files do not load.
std::unique_ptr<warren::net::TlsContexts> MakeTls(std::string what, uint16_t port, warren::net::TlsOptions options,
                                                  bool* failed) {
  if (port == 0) return nullptr;
  auto context = warren::net::MakeTlsContext(options);
  if (!context) {
    spdlog::critical("{}: {}", what, context.error());
    *failed = true;
    return nullptr;
  }
  return std::make_unique<warren::net::TlsContexts>(std::move(what), std::move(options), std::move(*context));
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

// The flags come from the settings table; CLI11 only collects their text, which the table
// validates as it does the environment's and the file's.
static std::expected<warren::config::Resolved, std::string> ParseSettings(CLI::App& app, int argc, char** argv,
                                                                          bool* print_config) {
  const auto& specs = warren::config::Specs();
  const warren::config::Settings defaults;
  std::vector<std::string> values(specs.size());
  auto switches = std::make_unique<bool[]>(specs.size());  // (vector<bool> has no bool&)
  std::vector<CLI::Option*> options;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    std::string help(spec.help);
    if (!spec.env.empty()) help += fmt::format(" [env {}]", spec.env);
    if (!spec.file_key.empty()) help += fmt::format(" [config {}]", spec.file_key);
    const std::string name = fmt::format("--{}", spec.flag);
    if (spec.is_switch) {
      options.push_back(app.add_flag(name, switches[i], help));
    } else {
      CLI::Option* option = app.add_option(name, values[i], help)->type_name(std::string(spec.type));
      if (!spec.secret) option->default_str(spec.show(defaults));
      options.push_back(option);
    }
  }
  std::string config_path;
  app.add_option("--config", config_path,
                 fmt::format("configuration file in rabbitmq.conf's syntax (default: {} when it exists; "
                             "deploy/warren.conf lists every key)",
                             warren::config::kDefaultConfigPath));
  app.add_flag("--print-config", *print_config, "print every effective setting and where it came from, then exit");
  app.parse(argc, argv);  // throws CLI::ParseError (main reports it)
  std::vector<std::pair<std::string, std::string>> flags;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (options[i]->count() > 0) flags.emplace_back(specs[i].flag, specs[i].is_switch ? "true" : values[i]);
  }
  if (config_path.empty() && std::filesystem::exists(warren::config::kDefaultConfigPath)) {
    config_path = warren::config::kDefaultConfigPath;
  }
  return warren::config::LoadSettings(config_path, std::move(flags));
}

int main(int argc, char** argv) {
  CLI::App app{"Warren: a durable AMQP 0-9-1 message broker, compatible with RabbitMQ clients"};
  bool print_config = false;
  std::expected<warren::config::Resolved, std::string> resolved;
  try {
    resolved = ParseSettings(app, argc, argv, &print_config);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!resolved) {
    // Where CLI11 reports a bad command line: the operator is looking at the command's errors.
    fmt::print(stderr, "warren-server: invalid configuration, refusing to start: {}\n", resolved.error());
    return 1;
  }
  if (print_config) {
    for (const std::string& warning : resolved->warnings) fmt::print(stderr, "warren-server: warning: {}\n", warning);
    fmt::print("{}", warren::config::FormatEffective(*resolved));
    return 0;
  }
  const warren::config::Settings& s = resolved->settings;
  // Message bodies and password hashes are for this user only: every file and directory the
  // server creates (the data dir, the store's files, the warrenctl token) is 0600 / 0700.
  ::umask(077);

  if (std::string error = warren::service::SetUpLogging({.console = s.log_console,
                                                         .console_level = s.log_level,
                                                         .console_json = s.log_console_json,
                                                         .file = s.log_file,
                                                         .file_level = s.log_file_level,
                                                         .file_json = s.log_file_json,
                                                         .rotation_size = s.log_file_rotation_size,
                                                         .rotation_count = s.log_file_rotation_count});
      !error.empty()) {
    fmt::print(stderr, "warren-server: {}, refusing to start\n", error);
    return 1;
  }
  if (!resolved->config_path.empty()) spdlog::info("configuration file {}", resolved->config_path);
  for (const std::string& warning : resolved->warnings) spdlog::warn("{}", warning);

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

  // One shard for now: the broker thread (net/shards.h).
  warren::net::Shards shards(1);
  asio::io_context& io = shards.io(0);
  warren::service::Notifier notifier(io);
  notifier.Status(fmt::format("opening the data directory '{}'", s.data_dir));
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
  if (s.memory_high_watermark.relative && total_memory == 0) {
    spdlog::critical("cannot read the machine's memory size for --memory-high-watermark {}; give an amount instead",
                     s.memory_high_watermark_text);
    return 1;
  }
  broker.memory().set_limit(warren::broker::MemoryLimit(s.memory_high_watermark, total_memory));
  spdlog::info("memory high watermark: {} bytes ({} of {} bytes of memory)", broker.memory().limit(),
               s.memory_high_watermark_text, total_memory);
  warren::net::AsioTimerService timers(io.get_executor());
  broker.set_timers(&timers);  // before recovery: restored queues arm their TTL and x-expires timers
  warren::journal::StoreJournal journal(*store);
  warren::broker::Persister persister(&journal, [&io](std::function<void()> fn) { asio::post(io, std::move(fn)); });
  persister.set_memory_window(s.queue_memory_window);
  persister.set_memory_window_bytes(s.queue_memory_window_bytes);
  warren::broker::RecoveryStats recovered;
  notifier.Status("recovering");
  // Recovery runs on this thread before the event loop: it reports from its progress callback.
  auto progress = [&](std::string_view vhost, std::string_view queue, uint64_t messages, uint64_t total) {
    notifier.Progress([&] {
      return fmt::format("recovering: {} messages of queue '{}' in vhost '{}' ({} restored in all)", messages, queue,
                         vhost, total);
    });
  };
  if (auto status = warren::broker::RecoverBroker(*store, broker, persister, {s.default_user, s.default_pass},
                                                  &recovered, progress);
      !status.ok()) {
    spdlog::critical("cannot recover from the data directory '{}': {}", s.data_dir, status.ToString());
    return 1;
  }
  spdlog::info("recovered {} vhosts, {} users, {} exchanges, {} queues, {} bindings, {} messages, {} delayed messages "
               "in {:.3f} s ({} paged transient messages and {} transient queues' paged messages discarded, {} orphan "
               "bodies removed)",
               recovered.vhosts, recovered.users, recovered.exchanges, recovered.queues, recovered.bindings,
               recovered.messages, recovered.delayed, recovered.seconds, recovered.transient_discarded, recovered.transient_queues_discarded,
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
  // Signals are caught from here on, before the definitions go into the open batch and before
  // a client can connect: one that came before its handler would end the process with what is
  // not yet written (the SIGTERM handler waits for the store). Asio keeps a signal that arrives
  // before the first async_wait for it.
  asio::error_code signal_error;
  asio::signal_set signals(io);
  for (int signal : {SIGINT, SIGTERM}) {
    if (signals.add(signal, signal_error); signal_error) {
      spdlog::critical("cannot handle signal {}: {}", signal, signal_error.message());
      return 1;
    }
  }
  asio::signal_set reload(io);
  reload.add(SIGHUP, signal_error);
  if (signal_error) spdlog::warn("cannot handle SIGHUP: {}", signal_error.message());
  asio::signal_set reopen(io);
  reopen.add(SIGUSR1, signal_error);
  if (signal_error) spdlog::warn("cannot handle SIGUSR1: {}", signal_error.message());
  if (!s.load_definitions.empty() && !load_definitions()) return 1;

  warren::net::ServerOptions options;
  options.loopback_users = SplitNames(s.loopback_users);
  options.bind_address = s.bind;
  options.port = s.port;
  options.limits.heartbeat = s.heartbeat;
  options.limits.handshake_timeout = std::chrono::milliseconds(s.handshake_timeout);
  options.limits.consumer_timeout =
      s.consumer_timeout == 0 ? std::nullopt : std::optional<uint64_t>(s.consumer_timeout);  // 0: undefined
  options.limits.frame_max = s.frame_max;
  options.limits.channel_max = s.channel_max;
  options.limits.max_message_size = s.max_message_size;
  options.limits.max_assembly_bytes = 2 * s.max_message_size;
  options.max_connections = fds.max_connections;
  options.login_throttle.max_failures = s.max_login_failures;
  // Certificates and keys are read before the listeners open, and again on SIGHUP.
  bool tls_failed = false;
  const auto amqp_tls = MakeTls("AMQPS (listeners.ssl.default)", s.ssl_port, TlsOptionsFor(s, false), &tls_failed);
  const auto management_tls = MakeTls("management HTTPS (management.ssl.port)",
                                      s.management_port != 0 ? s.management_ssl_port : 0, TlsOptionsFor(s, true),
                                      &tls_failed);
  if (tls_failed) return 1;
  options.ssl_port = s.ssl_port;
  options.tls = amqp_tls.get();
  warren::net::Server server(io, broker, options);
  if (std::string error = server.Listen(); !error.empty()) {
    spdlog::critical("{}", error);
    return 1;
  }
  spdlog::info("Warren {} accepting AMQP 0-9-1 connections on {}:{} (data dir '{}')", WARREN_VERSION, s.bind,
               server.port(), s.data_dir);
  if (amqp_tls) spdlog::info("accepting AMQPS (AMQP over TLS) connections on {}:{}", s.bind, server.ssl_port());

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
    management_options.amqps_port = server.ssl_port();
    management_options.ssl_port = s.management_ssl_port;
    management_options.tls = management_tls.get();
    management_options.admin_token = WriteWarrenctlToken(s.data_dir);
    for (const std::string& host : SplitNames(s.management_allowed_hosts)) management_options.allowed_hosts.push_back(host);
    management_options.disk_monitor = &disk_monitor;
    management_options.store = store.get();
    management = std::make_unique<warren::http::ManagementServer>(io, broker, server, management_options);
    if (std::string error = management->Start(); !error.empty()) {
      spdlog::critical("{}", error);
      return 1;
    }
    spdlog::info("management HTTP API listening on {}:{}", management_options.bind_address, management->port());
    if (management_tls) {
      spdlog::info("management HTTPS API listening on {}:{}", management_options.bind_address, management->ssl_port());
    }
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
  notifier.Ready(fmt::format("serving AMQP on {}:{}; {} messages recovered", s.bind, server.port(), recovered.messages));
  notifier.StartWatchdog();
  notifier.StartStatusUpdates(std::chrono::seconds(10), [&] {
    return fmt::format("serving AMQP on {}:{}; {} connections{}", s.bind, server.port(), server.connections().size(),
                       server.alarm() ? fmt::format(", publishers blocked: {}", server.AlarmReason()) : "");
  });

  std::function<void()> wait_reload = [&] {
    reload.async_wait([&](const asio::error_code& error, int) {
      if (error) return;
      // Connections keep the certificate they were accepted with; new ones get the new one.
      if (amqp_tls) amqp_tls->Reload();
      if (management_tls) management_tls->Reload();
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
  std::function<void()> wait_reopen = [&] {
    reopen.async_wait([&](const asio::error_code& error, int) {
      if (error) return;
      warren::service::ReopenLogFile();
      wait_reopen();
    });
  };
  wait_reopen();
  // Shutdown: stop accepting and reading; let the store finish the batches in flight (their
  // publishers' confirms go out); close every connection with 320; stop the loop once all are
  // closed or at the deadline. A second signal ends the process at once.
  bool shutting_down = false;
  asio::steady_timer shutdown_timer(io);
  std::chrono::steady_clock::time_point shutdown_deadline;
  std::function<void()> drain_store = [&] {
    const bool late = std::chrono::steady_clock::now() >= shutdown_deadline;
    if (!persister.idle() && !persister.failing() && !late) {
      shutdown_timer.expires_after(std::chrono::milliseconds(5));
      shutdown_timer.async_wait([&](const asio::error_code& error) {
        if (!error) drain_store();
      });
      return;
    }
    if (late) spdlog::warn("the store's last writes did not finish within --shutdown-timeout; closing connections");
    notifier.Status(fmt::format("shutting down: closing {} client connections", server.connections().size()));
    server.CloseAll("broker forced connection closure with reason 'shutdown'", [&] { shards.Stop(); });
    shutdown_timer.expires_at(std::max(shutdown_deadline, std::chrono::steady_clock::now() + std::chrono::seconds(1)));
    shutdown_timer.async_wait([&](const asio::error_code& error) {
      if (error) return;
      spdlog::warn("{} client connections still open after --shutdown-timeout; dropping them",
                   server.connections().size());
      shards.Stop();
    });
  };
  auto shut_down = [&] {
    if (shutting_down) return;  // a signal and a store failure, or several failed batches
    shutting_down = true;
    notifier.Stopping("shutting down: waiting for the store's last writes");
    disk_monitor.Stop();
    memory_monitor.Stop();
    asio::error_code cancel_error;
    reload.cancel(cancel_error);
    reopen.cancel(cancel_error);
    if (management) management->Stop();
    if (prometheus) prometheus->Stop();
    server.StopAccepting();
    shutdown_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(s.shutdown_timeout);
    drain_store();
  };
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const asio::error_code& error, int signal) {
      if (error) return;
      if (shutting_down) {
        // What was confirmed is in the write-ahead log already; the next start replays it.
        spdlog::warn("received signal {} again, exiting at once", signal);
        spdlog::shutdown();
        std::signal(signal, SIG_DFL);
        std::raise(signal);
      }
      spdlog::info("received signal {}, shutting down (a second one exits at once)", signal);
      shut_down();
      wait_signal();
    });
  };
  wait_signal();
  // Nothing persistent can be confirmed any more; a restart replays the WAL and recovers every
  // confirmed message, so stop (non-zero: a supervisor restarts us) rather than serve half a broker.
  persister.set_on_fatal_failure([&](const std::string& error) {
    spdlog::critical("the store cannot write any more ({}); stopping", error);
    shut_down();
  });
  std::signal(SIGPIPE, SIG_IGN);
  shards.Run();  // a handler that throws is logged and the loop goes on (net/shards.h)
  server.Stop();  // those that outlived the shutdown deadline
  asio::error_code cancel_error;
  signals.cancel(cancel_error);
  // The stop left the closed connections' aborted reads and writes queued: run them, so every
  // connection and the messages its buffers pin are released here, while the broker (and its
  // MemoryAccount) lives, and not when the io_context is destroyed after it.
  shards.PollAll();
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
