#include "server/config/settings.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "server/config/rabbitmq_keys.h"

namespace warren::config {

namespace {

using Setter = std::function<std::string(Settings&, std::string_view)>;
using Shower = std::function<std::string(const Settings&)>;

std::expected<uint64_t, std::string> ParseUint(std::string_view text, uint64_t min, uint64_t max) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size()) {
    return std::unexpected(Quote(text) + " is not an integer");
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    return std::unexpected(fmt::format("{} is out of range ({} to {})", Quote(text), min, max));
  }
  return value;
}

std::expected<bool, std::string> ParseBool(std::string_view text) {
  // RabbitMQ's true and false, and the spellings the flags accepted before.
  for (std::string_view yes : {"true", "1", "yes", "on"}) {
    if (text == yes) return true;
  }
  for (std::string_view no : {"false", "0", "no", "off"}) {
    if (text == no) return false;
  }
  return std::unexpected(Quote(text) + " is not true or false");
}

bool IsIpAddress(std::string_view text) {
  const std::string address(text);
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, address.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, address.c_str(), buffer) == 1;
}

template <typename T>
std::pair<Setter, Shower> UintField(T Settings::*field, uint64_t min, uint64_t max) {
  return {[=](Settings& s, std::string_view text) -> std::string {
            auto value = ParseUint(text, min, max);
            if (!value) return value.error();
            s.*field = static_cast<T>(*value);
            return {};
          },
          [=](const Settings& s) { return std::to_string(s.*field); }};
}

std::pair<Setter, Shower> BytesField(uint64_t Settings::*field) {
  return {[=](Settings& s, std::string_view text) -> std::string {
            auto value = broker::ParseByteAmount(text);
            if (!value) return fmt::format("{} is not an amount of bytes such as 50000000, 512MiB or 1GB: {}",
                                           Quote(text), value.error());
            s.*field = *value;
            return {};
          },
          [=](const Settings& s) { return std::to_string(s.*field); }};
}

std::pair<Setter, Shower> BoolField(bool Settings::*field) {
  return {[=](Settings& s, std::string_view text) -> std::string {
            auto value = ParseBool(text);
            if (!value) return value.error();
            s.*field = *value;
            return {};
          },
          [=](const Settings& s) -> std::string { return s.*field ? "true" : "false"; }};
}

std::pair<Setter, Shower> StringField(std::string Settings::*field, bool allow_empty) {
  return {[=](Settings& s, std::string_view text) -> std::string {
            if (text.empty() && !allow_empty) return "must not be empty";
            s.*field = std::string(text);
            return {};
          },
          [=](const Settings& s) { return s.*field; }};
}

std::pair<Setter, Shower> IpField(std::string Settings::*field, bool allow_empty) {
  return {[=](Settings& s, std::string_view text) -> std::string {
            if (!(text.empty() && allow_empty) && !IsIpAddress(text)) {
              return Quote(text) + " is not an IPv4 or IPv6 address";
            }
            s.*field = std::string(text);
            return {};
          },
          [=](const Settings& s) { return s.*field; }};
}

std::pair<Setter, Shower> LogLevelField(std::string Settings::*field) {
  // spdlog's levels under their own and under RabbitMQ's names (log.console.level).
  static constexpr std::pair<std::string_view, std::string_view> kLevels[] = {
      {"trace", "trace"},       {"debug", "debug"}, {"info", "info"},         {"notice", "info"},
      {"warn", "warn"},         {"warning", "warn"}, {"error", "error"},      {"critical", "critical"},
      {"alert", "critical"},    {"emergency", "critical"}, {"off", "off"},    {"none", "off"},
  };
  return {[=](Settings& s, std::string_view text) -> std::string {
            for (auto [name, level] : kLevels) {
              if (text == name) {
                s.*field = std::string(level);
                return {};
              }
            }
            return Quote(text) + " is not a log level (debug, info, warning, error, critical, none)";
          },
          [=](const Settings& s) { return s.*field; }};
}

// RabbitMQ's log.*.formatter.
std::pair<Setter, Shower> FormatterField(bool Settings::*json) {
  return {[=](Settings& s, std::string_view text) -> std::string {
            if (text != "plaintext" && text != "json") return Quote(text) + " is not plaintext or json";
            s.*json = text == "json";
            return {};
          },
          [=](const Settings& s) -> std::string { return s.*json ? "json" : "plaintext"; }};
}

// RabbitMQ's log.file: a path, or false for none.
std::pair<Setter, Shower> LogFileField() {
  return {[](Settings& s, std::string_view text) -> std::string {
            s.log_file = text == "false" ? std::string() : std::string(text);
            return {};
          },
          [](const Settings& s) { return s.log_file; }};
}

std::pair<Setter, Shower> WatermarkField() {
  return {[](Settings& s, std::string_view text) -> std::string {
            auto watermark = broker::ParseMemoryWatermark(text);
            if (!watermark) return watermark.error();
            s.memory_high_watermark = *watermark;
            s.memory_high_watermark_text = std::string(text);
            return {};
          },
          [](const Settings& s) { return s.memory_high_watermark_text; }};
}

std::pair<Setter, Shower> ConnectionsField() {
  return {[](Settings& s, std::string_view text) -> std::string {
            if (text == "infinity") {
              s.max_connections = 0;
              return {};
            }
            auto value = ParseUint(text, 0, UINT32_MAX);
            if (!value) return value.error() + " or infinity";
            s.max_connections = *value;
            return {};
          },
          [](const Settings& s) { return s.max_connections == 0 ? std::string("infinity") : std::to_string(s.max_connections); }};
}

std::pair<Setter, Shower> VerifyField() {
  return {[](Settings& s, std::string_view text) -> std::string {
            if (text != "verify_none" && text != "verify_peer") return Quote(text) + " is not verify_none or verify_peer";
            s.ssl_verify_peer = text == "verify_peer";
            return {};
          },
          [](const Settings& s) -> std::string { return s.ssl_verify_peer ? "verify_peer" : "verify_none"; }};
}

std::pair<Setter, Shower> TlsVersionsField() {
  return {[](Settings& s, std::string_view text) -> std::string {
            size_t start = 0;
            do {
              const size_t comma = std::min(text.find(',', start), text.size());
              const std::string_view version = text.substr(start, comma - start);
              if (version != "tlsv1.2" && version != "tlsv1.3") {
                return Quote(version) + " is not tlsv1.2 or tlsv1.3 (the TLS versions Warren serves)";
              }
              start = comma + 1;
            } while (start <= text.size());
            s.ssl_versions = std::string(text);
            return {};
          },
          [](const Settings& s) { return s.ssl_versions; }};
}

// RabbitMQ's consumer_timeout: a positive integer (its schema refuses 0), or `undefined`, the value
// that turns it off (advanced.config's in RabbitMQ, which Warren does not read).
std::pair<Setter, Shower> ConsumerTimeoutField() {
  return {[](Settings& s, std::string_view text) -> std::string {
            if (text == "undefined") {
              s.consumer_timeout = 0;
              return {};
            }
            auto value = ParseUint(text, 1, INT64_MAX);
            if (!value) return value.error() + " or undefined";
            s.consumer_timeout = *value;
            return {};
          },
          [](const Settings& s) {
            return s.consumer_timeout == 0 ? std::string("undefined") : std::to_string(s.consumer_timeout);
          }};
}

SettingSpec Spec(std::string_view flag, std::string_view env, std::string_view file_key, std::string_view type,
                 std::string_view help, std::pair<Setter, Shower> access) {
  return SettingSpec{flag, env, file_key, type, help, std::move(access.first), std::move(access.second)};
}

std::vector<SettingSpec> MakeSpecs() {
  std::vector<SettingSpec> specs;
  auto add = [&](SettingSpec spec) { specs.push_back(std::move(spec)); };
  add(Spec("port", "WARREN_PORT", "listeners.tcp.default", "PORT", "AMQP port",
           UintField(&Settings::port, 0, 65535)));
  add(Spec("bind", "WARREN_BIND", "listeners.tcp.default", "IP", "address to listen on (all interfaces by default)",
           IpField(&Settings::bind, false)));
  add(Spec("data-dir", "WARREN_DATA_DIR", "warren.data_dir", "DIR", "data directory",
           StringField(&Settings::data_dir, false)));
  add(Spec("default-user", "WARREN_DEFAULT_USER", "default_user", "NAME", "user created at first start",
           StringField(&Settings::default_user, false)));
  add(Spec("default-pass", "WARREN_DEFAULT_PASS", "default_pass", "PASSWORD", "password of the default user",
           StringField(&Settings::default_pass, true)));
  specs.back().secret = true;
  add(Spec("log-level", "WARREN_LOG_LEVEL", "log.console.level", "LEVEL",
           "level of the stderr log: trace, debug, info, warn (warning), error, critical, off (none)",
           LogLevelField(&Settings::log_level)));
  add(Spec("log-console", "WARREN_LOG_CONSOLE", "log.console", "BOOL", "log to stderr (the journal under systemd)",
           BoolField(&Settings::log_console)));
  add(Spec("log-formatter", "WARREN_LOG_FORMATTER", "log.console.formatter", "plaintext|json",
           "format of the stderr log: plaintext, or json (one object per line: time, level, msg)",
           FormatterField(&Settings::log_console_json)));
  add(Spec("log-file", "WARREN_LOG_FILE", "log.file", "PATH",
           "also log to this file (appended; reopened on SIGUSR1, for logrotate; false or empty: none)",
           LogFileField()));
  add(Spec("log-file-level", "WARREN_LOG_FILE_LEVEL", "log.file.level", "LEVEL", "level of the log file",
           LogLevelField(&Settings::log_file_level)));
  add(Spec("log-file-formatter", "WARREN_LOG_FILE_FORMATTER", "log.file.formatter", "plaintext|json",
           "format of the log file", FormatterField(&Settings::log_file_json)));
  add(Spec("log-file-rotation-size", "WARREN_LOG_FILE_ROTATION_SIZE", "log.file.rotation.size", "BYTES",
           "rotate the log file (FILE.1, FILE.2, ...) before it grows past this size (0 = never)",
           BytesField(&Settings::log_file_rotation_size)));
  add(Spec("log-file-rotation-count", "WARREN_LOG_FILE_ROTATION_COUNT", "log.file.rotation.count", "N",
           "rotated log files kept", UintField(&Settings::log_file_rotation_count, 0, 1000)));
  add(Spec("sync-writes", "WARREN_SYNC_WRITES", "warren.sync_writes", "BOOL",
           "fsync the store before confirming persistent messages (false: OS-buffered writes, faster, may lose the "
           "last confirmed messages on power loss)",
           BoolField(&Settings::sync_writes)));
  add(Spec("queue-memory-window", "WARREN_QUEUE_MEMORY_WINDOW", "warren.queue_memory_window", "N",
           "ready messages a durable queue keeps in memory; the rest of a backlog stays on disk",
           UintField(&Settings::queue_memory_window, 2, 100'000'000)));
  add(Spec("queue-memory-window-bytes", "WARREN_QUEUE_MEMORY_WINDOW_BYTES", "warren.queue_memory_window_bytes",
           "BYTES", "body bytes of ready messages a queue keeps in memory (e.g. 64MiB); the rest of a backlog stays "
           "on disk",
           BytesField(&Settings::queue_memory_window_bytes)));
  add(Spec("memory-high-watermark", "WARREN_MEMORY_HIGH_WATERMARK", "vm_memory_high_watermark.relative",
           "FRACTION|BYTES",
           "block publishers while the broker holds this much: a fraction of RAM (or of the cgroup's limit), e.g. "
           "0.4, or an amount, e.g. 512MiB or 1GB (RabbitMQ's vm_memory_high_watermark; in the file .relative or "
           ".absolute)",
           WatermarkField()));
  add(Spec("disk-free-limit", "WARREN_DISK_FREE_LIMIT", "disk_free_limit.absolute", "BYTES",
           "block publishers while the data directory's file system has less free space (e.g. 50MB, 1GiB)",
           BytesField(&Settings::disk_free_limit)));
  add(Spec("heartbeat", "WARREN_HEARTBEAT", "heartbeat", "SECONDS",
           "heartbeat interval proposed to clients, seconds (0 = off)", UintField(&Settings::heartbeat, 0, 65535)));
  add(Spec("handshake-timeout", "WARREN_HANDSHAKE_TIMEOUT", "handshake_timeout", "MS",
           "milliseconds a new connection has to finish the AMQP handshake (and TLS's) before it is dropped",
           UintField(&Settings::handshake_timeout, 100, 3'600'000)));
  add(Spec("consumer-timeout", "WARREN_CONSUMER_TIMEOUT", "consumer_timeout", "MS|undefined",
           "milliseconds a delivery to a consumer (or basic.get) with manual acknowledgement may stay unacknowledged "
           "before its channel is closed with 406 and its deliveries requeued (RabbitMQ's consumer_timeout; the "
           "x-consumer-timeout queue argument overrides it; undefined = no timeout)",
           ConsumerTimeoutField()));
  add(Spec("frame-max", "WARREN_FRAME_MAX", "frame_max", "BYTES", "largest frame accepted, bytes",
           UintField(&Settings::frame_max, 4096, 1u << 24)));
  add(Spec("channel-max", "WARREN_CHANNEL_MAX", "channel_max", "N", "most channels per connection",
           UintField(&Settings::channel_max, 1, 65535)));
  add(Spec("max-message-size", "WARREN_MAX_MESSAGE_SIZE", "max_message_size", "BYTES",
           "largest message body accepted, bytes (RabbitMQ's max_message_size); a connection may hold twice this in "
           "publishes being assembled",
           UintField(&Settings::max_message_size, 1, uint64_t{512} << 20)));
  add(Spec("loopback-users", "WARREN_LOOPBACK_USERS", "loopback_users", "NAMES",
           "comma-separated users that may only connect from localhost (RabbitMQ's loopback_users; empty: none)",
           StringField(&Settings::loopback_users, true)));
  add(Spec("load-definitions", "WARREN_LOAD_DEFINITIONS", "load_definitions", "FILE",
           "RabbitMQ definitions JSON file whose vhosts, users, permissions, exchanges, queues and bindings are "
           "created or updated at startup (RabbitMQ's load_definitions) and again on SIGHUP",
           StringField(&Settings::load_definitions, true)));
  add(Spec("management-port", "WARREN_MANAGEMENT_PORT", "management.tcp.port", "PORT",
           "management HTTP API port (RabbitMQ's /api; 0 = disabled)", UintField(&Settings::management_port, 0, 65535)));
  add(Spec("management-bind", "WARREN_MANAGEMENT_BIND", "management.tcp.ip", "IP",
           "address the management API listens on (default: --bind)", IpField(&Settings::management_bind, true)));
  add(Spec("management-allowed-hosts", "WARREN_MANAGEMENT_ALLOWED_HOSTS", "warren.management_allowed_hosts", "NAMES",
           "comma-separated host names the management API answers to besides IP addresses, localhost and this "
           "machine's hostname (a request with another Host header is 403: DNS rebinding)",
           StringField(&Settings::management_allowed_hosts, true)));
  add(Spec("prometheus-port", "WARREN_PROMETHEUS_PORT", "prometheus.tcp.port", "PORT",
           "Prometheus metrics port (GET /metrics, no authentication, listens on --management-bind; 0 = disabled)",
           UintField(&Settings::prometheus_port, 0, 65535)));
  add(Spec("collect-statistics-interval", "WARREN_COLLECT_STATISTICS_INTERVAL", "collect_statistics_interval", "MS",
           "milliseconds between samples of the message rates shown by the management API and UI",
           UintField(&Settings::collect_statistics_interval, 100, 3'600'000)));
  add(Spec("max-connections", "WARREN_MAX_CONNECTIONS", "connection_max", "N|infinity",
           "most AMQP connections at once; more wait in the listen backlog (RabbitMQ's connection_max; 0 or "
           "infinity = no limit but the file-descriptor budget)",
           ConnectionsField()));
  add(Spec("max-login-failures", "WARREN_MAX_LOGIN_FAILURES", "warren.max_login_failures", "N",
           "failed AMQP logins from one address within 60 s after which its logins are refused for 60 s (0 = no "
           "throttle)",
           UintField(&Settings::max_login_failures, 0, 1'000'000'000)));
  add(Spec("shutdown-timeout", "WARREN_SHUTDOWN_TIMEOUT", "warren.shutdown_timeout", "SECONDS",
           "at SIGTERM, how long to wait for the store's last writes and for clients to acknowledge the close "
           "before exiting anyway (a second signal exits at once)",
           UintField(&Settings::shutdown_timeout, 1, 3600)));
  // A one-off repair, not a standing setting: no environment variable or file key that would
  // keep dropping records at every later start.
  add(Spec("truncate-corrupt-wal", "", "", "",
           "start on a store whose write-ahead log is damaged before its end, keeping only the records before the "
           "damage (the rest is lost: keep a copy of the data directory first)",
           BoolField(&Settings::truncate_corrupt_wal)));
  specs.back().is_switch = true;
  add(Spec("ssl-port", "WARREN_SSL_PORT", "listeners.ssl.default", "PORT",
           "AMQPS (AMQP over TLS) port, on --bind (RabbitMQ's is 5671; 0 = off); needs --ssl-certfile and "
           "--ssl-keyfile",
           UintField(&Settings::ssl_port, 0, 65535)));
  add(Spec("ssl-cacertfile", "WARREN_SSL_CACERTFILE", "ssl_options.cacertfile", "FILE",
           "PEM file of the CA certificates that client certificates are verified against",
           StringField(&Settings::ssl_cacertfile, true)));
  add(Spec("ssl-certfile", "WARREN_SSL_CERTFILE", "ssl_options.certfile", "FILE",
           "PEM file of the server's certificate (and its chain); reloaded on SIGHUP",
           StringField(&Settings::ssl_certfile, true)));
  add(Spec("ssl-keyfile", "WARREN_SSL_KEYFILE", "ssl_options.keyfile", "FILE",
           "PEM file of the server certificate's private key; reloaded on SIGHUP",
           StringField(&Settings::ssl_keyfile, true)));
  add(Spec("ssl-verify", "WARREN_SSL_VERIFY", "ssl_options.verify", "MODE",
           "verify_peer: ask for a client certificate and refuse one the CA did not sign (enables EXTERNAL "
           "login); verify_none: do not ask",
           VerifyField()));
  add(Spec("ssl-fail-if-no-peer-cert", "WARREN_SSL_FAIL_IF_NO_PEER_CERT", "ssl_options.fail_if_no_peer_cert", "BOOL",
           "with verify_peer, refuse a client that sends no certificate", BoolField(&Settings::ssl_fail_if_no_peer_cert)));
  add(Spec("ssl-versions", "WARREN_SSL_VERSIONS", "ssl_options.versions.N", "LIST",
           "comma-separated TLS versions served: tlsv1.2, tlsv1.3", TlsVersionsField()));
  add(Spec("ssl-ciphers", "WARREN_SSL_CIPHERS", "ssl_options.ciphers.N", "LIST",
           "colon-separated OpenSSL cipher (TLS 1.2) and ciphersuite (TLS 1.3) names allowed; empty: OpenSSL's "
           "defaults",
           StringField(&Settings::ssl_ciphers, true)));
  add(Spec("management-ssl-port", "WARREN_MANAGEMENT_SSL_PORT", "management.ssl.port", "PORT",
           "management HTTPS API port, beside the HTTP one, on --management-bind (RabbitMQ's is 15671; 0 = off); "
           "clients are not asked for certificates; versions and ciphers as --ssl-*",
           UintField(&Settings::management_ssl_port, 0, 65535)));
  add(Spec("management-ssl-cacertfile", "WARREN_MANAGEMENT_SSL_CACERTFILE", "management.ssl.cacertfile", "FILE",
           "CA certificates for management client certificates (PEM)",
           StringField(&Settings::management_ssl_cacertfile, true)));
  add(Spec("management-ssl-certfile", "WARREN_MANAGEMENT_SSL_CERTFILE", "management.ssl.certfile", "FILE",
           "management HTTPS certificate (PEM); reloaded on SIGHUP", StringField(&Settings::management_ssl_certfile, true)));
  add(Spec("management-ssl-keyfile", "WARREN_MANAGEMENT_SSL_KEYFILE", "management.ssl.keyfile", "FILE",
           "management HTTPS private key (PEM); reloaded on SIGHUP", StringField(&Settings::management_ssl_keyfile, true)));
  return specs;
}

size_t IndexOf(std::string_view flag) {
  const auto& specs = Specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].flag == flag) return i;
  }
  std::abort();  // a name in this file that the table lacks
}

class FileApplier {
 public:
  FileApplier(Resolved& resolved, std::string_view file_name) : r_(resolved), file_(file_name) {}

  // Empty when `entry` is applied (or ignored with a warning), else what is wrong.
  std::string Apply(const ConfigEntry& entry) {
    const std::string_view key = entry.key, value = entry.value;
    line_ = entry.line;
    key_ = key;
    if (key == "listeners.tcp.default") return ApplyListener(value);
    if (key == "listeners.ssl") return value == "none" ? "" : "use listeners.ssl.default (one AMQPS listener)";
    if (key == "listeners.ssl.default" && value.find(':') != std::string_view::npos) {
      return Quote(value) + ": give a port (the AMQPS listener binds where listeners.tcp.default does)";
    }
    if (key.starts_with("ssl_options.versions.")) return AppendToList("ssl-versions", ",", value);
    if (key.starts_with("ssl_options.ciphers.")) return AppendToList("ssl-ciphers", ":", value);
    if (key == "vm_memory_high_watermark.relative" || key == "vm_memory_high_watermark.absolute") {
      return ApplyWatermark(key.ends_with("absolute"), value);
    }
    if (key == "loopback_users") {
      if (value != "none") return Quote(value) + " is not none (loopback_users.NAME = false lets NAME in from anywhere)";
      return Set("loopback-users", "");
    }
    if (key.starts_with("loopback_users.")) return ApplyLoopbackUser(key.substr(key.find('.') + 1), value);
    if (key == "default_vhost") {
      return value == "/" ? "" : "not supported yet: Warren's default virtual host is /";
    }
    const auto& specs = Specs();
    for (size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].file_key == key) return Set(specs[i].flag, value);
    }
    if (auto reason = RefusedReason(key)) return std::string(*reason);
    if (IsIgnoredRabbitMqKey(key)) {
      r_.warnings.push_back(
          FormatProblem(file_, {line_, std::string(key), "ignored: a RabbitMQ setting Warren does not have"}));
      return {};
    }
    return "unknown key";
  }

 private:
  std::string Set(std::string_view flag, std::string_view value) {
    const size_t i = IndexOf(flag);
    std::string error = Specs()[i].set(r_.settings, value);
    if (error.empty()) MarkFromFile(flag);
    return error;
  }

  void MarkFromFile(std::string_view flag) { r_.origins[IndexOf(flag)] = fmt::format("file {}:{} ({})", file_, line_, key_); }

  // RabbitMQ's forms: a port ("5672"), or an address and a port ("127.0.0.1:5672", "::1:5672",
  // "[::1]:5672"), the port after the last colon.
  std::string ApplyListener(std::string_view value) {
    const size_t colon = value.rfind(':');
    if (colon != std::string_view::npos) {
      std::string_view address = value.substr(0, colon);
      if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
        address = address.substr(1, address.size() - 2);
      }
      if (std::string error = Set("bind", address); !error.empty()) return error;
    }
    return Set("port", colon == std::string_view::npos ? value : value.substr(colon + 1));
  }

  // RabbitMQ takes .relative when both are set; one setting given twice is a mistake to point at.
  std::string ApplyWatermark(bool absolute, std::string_view value) {
    if (r_.origins[IndexOf("memory-high-watermark")].starts_with("file ")) {
      return "set either vm_memory_high_watermark.relative or vm_memory_high_watermark.absolute, not both";
    }
    if (!absolute) {
      if (auto fraction = broker::ParseMemoryWatermark(value); !fraction || !fraction->relative) {
        return Quote(value) + " is not a fraction of memory between 0 and 1";
      }
      return Set("memory-high-watermark", value);
    }
    // Not through the setting's parser, which reads "1" as the fraction 1.
    auto bytes = broker::ParseByteAmount(value);
    if (!bytes) {
      return fmt::format("{} is not an amount of bytes such as 1073741824, 1024MiB or 1GB: {}", Quote(value),
                         bytes.error());
    }
    r_.settings.memory_high_watermark = {.relative = false, .fraction = 0, .bytes = *bytes};
    r_.settings.memory_high_watermark_text = std::string(value);
    MarkFromFile("memory-high-watermark");
    return {};
  }

  // RabbitMQ's `key.N = item` lists: the file's first item replaces the default list.
  std::string AppendToList(std::string_view flag, std::string_view separator, std::string_view item) {
    if (item.empty() || item.find(separator) != std::string_view::npos) return Quote(item) + " is not one item";
    std::string list = Specs()[IndexOf(flag)].show(r_.settings);
    if (!r_.origins[IndexOf(flag)].starts_with("file ")) list.clear();
    return Set(flag, list.empty() ? std::string(item) : list + std::string(separator) + std::string(item));
  }

  // RabbitMQ's translation: the list is the users set to true (so guest = false empties it).
  std::string ApplyLoopbackUser(std::string_view user, std::string_view value) {
    auto loopback = ParseBool(value);
    if (!loopback) return loopback.error();
    Settings& s = r_.settings;
    if (!r_.origins[IndexOf("loopback-users")].starts_with("file ")) s.loopback_users.clear();
    std::string users = s.loopback_users;
    if (*loopback) users += (users.empty() ? "" : ",") + std::string(user);
    return Set("loopback-users", users);
  }

  Resolved& r_;
  std::string_view file_;
  int line_ = 0;
  std::string_view key_;
};

}  // namespace

const std::vector<SettingSpec>& Specs() {
  static const std::vector<SettingSpec> specs = MakeSpecs();
  return specs;
}

std::expected<Resolved, std::string> Resolve(const Sources& sources) {
  const auto& specs = Specs();
  Resolved r;
  r.origins.assign(specs.size(), "default");
  if (sources.file != nullptr) {
    for (const ConfigProblem& warning : sources.file->warnings) r.warnings.push_back(FormatProblem(sources.file_name, warning));
    FileApplier applier(r, sources.file_name);
    for (const ConfigEntry& entry : sources.file->entries) {
      if (std::string error = applier.Apply(entry); !error.empty()) {
        return std::unexpected(FormatProblem(sources.file_name, {entry.line, entry.key, error}));
      }
    }
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].env.empty() || !sources.env) continue;
    // An empty variable counts as unset, as it did for the flags' environment names.
    const std::optional<std::string> value = sources.env(specs[i].env);
    if (!value || value->empty()) continue;
    if (std::string error = specs[i].set(r.settings, *value); !error.empty()) {
      return std::unexpected(fmt::format("environment variable {}: {}", specs[i].env, error));
    }
    r.origins[i] = fmt::format("env {}", specs[i].env);
  }
  for (const auto& [flag, value] : sources.flags) {
    const size_t i = IndexOf(flag);
    if (std::string error = specs[i].set(r.settings, value); !error.empty()) {
      return std::unexpected(fmt::format("--{}: {}", flag, error));
    }
    r.origins[i] = fmt::format("flag --{}", flag);
  }
  return r;
}

std::expected<Resolved, std::string> LoadSettings(const std::string& config_path,
                                                  std::vector<std::pair<std::string, std::string>> flags) {
  Sources sources;
  sources.file_name = config_path;
  sources.flags = std::move(flags);
  sources.env = [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return value;
  };
  ParsedConfig parsed;
  if (!config_path.empty()) {
    std::ifstream in(config_path, std::ios::binary);
    std::string text;
    if (in) {
      // One byte past the limit is enough for the parser to refuse the size.
      text.resize(kMaxConfigBytes + 1);
      in.read(text.data(), static_cast<std::streamsize>(text.size()));
      text.resize(static_cast<size_t>(in.gcount()));
    }
    if (!in && !in.eof()) {
      return std::unexpected(fmt::format("cannot read the configuration file {}: {}", config_path, std::strerror(errno)));
    }
    auto result = ParseConfig(text);
    if (!result) return std::unexpected(FormatProblem(config_path, result.error()));
    parsed = std::move(*result);
    sources.file = &parsed;
  }
  auto resolved = Resolve(sources);
  if (resolved) resolved->config_path = config_path;
  return resolved;
}

std::string FormatEffective(const Resolved& resolved) {
  const auto& specs = Specs();
  std::string out = resolved.config_path.empty() ? std::string("# no configuration file\n")
                                                 : fmt::format("# configuration file {}\n", resolved.config_path);
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string value = specs[i].secret ? std::string("********") : specs[i].show(resolved.settings);
    out += fmt::format("{:<28} = {:<24} # {}\n", specs[i].flag, value, resolved.origins[i]);
  }
  return out;
}

}  // namespace warren::config
