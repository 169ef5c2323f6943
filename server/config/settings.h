// Warren's settings and where each comes from. Precedence: a command-line flag, then its WARREN_*
// environment variable, then the configuration file (rabbitmq.conf's keys where RabbitMQ has
// one, `warren.*` for Warren's own), then the default. One table (settings.cc) holds each
// setting's names, help and validation, used for flags, environment and file alike.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/broker/memory.h"
#include "server/config/config_parser.h"

namespace warren::config {

inline constexpr std::string_view kDefaultConfigPath = "/etc/warren/warren.conf";

struct Settings {
  uint16_t port = 5672;
  std::string bind = "0.0.0.0";
  std::string data_dir = "./data";
  std::string default_user = "guest";
  std::string default_pass = "guest";
  std::string log_level = "info";  // spdlog's name
  bool log_console = true;
  bool log_console_json = false;
  std::string log_file;  // empty: none
  std::string log_file_level = "info";
  bool log_file_json = false;
  uint64_t log_file_rotation_size = 0;  // bytes; 0: never by size
  uint32_t log_file_rotation_count = 5;
  uint32_t shutdown_timeout = 10;  // seconds
  bool sync_writes = true;
  uint64_t queue_memory_window = 20000;
  uint64_t queue_memory_window_bytes = 64ull << 20;
  broker::MemoryWatermark memory_high_watermark;  // RabbitMQ's default, 0.4
  std::string memory_high_watermark_text = "0.4";  // as given, for messages
  uint64_t disk_free_limit = 50'000'000;  // RabbitMQ's default
  uint16_t heartbeat = 60;
  uint32_t handshake_timeout = 10000;  // ms, RabbitMQ's default
  uint64_t consumer_timeout = 1'800'000;  // ms, RabbitMQ's default; 0: undefined (no timeout)
  uint32_t frame_max = 131072;
  uint16_t channel_max = 2047;
  uint64_t max_message_size = 128ull << 20;  // RabbitMQ's max_message_size
  std::string loopback_users = "guest";      // comma-separated
  std::string load_definitions;
  uint16_t management_port = 15672;
  std::string management_bind;  // empty: same as bind
  std::string management_allowed_hosts;
  uint16_t prometheus_port = 15692;  // 0: off
  uint32_t collect_statistics_interval = 5000;  // ms, RabbitMQ's default
  uint64_t max_connections = 0;  // 0: only the file-descriptor budget bounds them
  uint64_t max_login_failures = 10;
  bool truncate_corrupt_wal = false;
  // TLS (RabbitMQ's listeners.ssl.default and ssl_options.*): the AMQPS listener is off while
  // ssl_port is 0; it binds where the plain listener does.
  uint16_t ssl_port = 0;
  std::string ssl_cacertfile, ssl_certfile, ssl_keyfile;
  bool ssl_verify_peer = false;  // verify_none, Erlang's server default
  bool ssl_fail_if_no_peer_cert = false;
  std::string ssl_versions = "tlsv1.2,tlsv1.3";  // comma-separated, each tlsv1.2 or tlsv1.3
  std::string ssl_ciphers;  // OpenSSL names, colon-separated; empty: OpenSSL's defaults
  // HTTPS for the management API (management.ssl.*; off while 0), beside its HTTP port: no
  // client certificates; versions and ciphers are those of ssl_options.
  uint16_t management_ssl_port = 0;
  std::string management_ssl_cacertfile, management_ssl_certfile, management_ssl_keyfile;
};

struct SettingSpec {
  std::string_view flag;      // without "--"
  std::string_view env;       // empty: none
  std::string_view file_key;  // empty: flag only
  std::string_view type;      // for --help
  std::string_view help;
  // Empty when `value` is valid (and stored), else what is wrong with it.
  std::function<std::string(Settings&, std::string_view value)> set;
  std::function<std::string(const Settings&)> show;
  bool secret = false;     // shown masked
  bool is_switch = false;  // a flag without a value
};
const std::vector<SettingSpec>& Specs();

struct Resolved {
  std::string config_path;  // the file read; empty: none
  Settings settings;
  std::vector<std::string> origins;   // per Specs() entry: "default", "file F:L", "env NAME", "flag --NAME"
  std::vector<std::string> warnings;  // to log: ignored keys, keys set twice
};

struct Sources {
  std::string file_name;  // as named in messages
  const ParsedConfig* file = nullptr;
  std::function<std::optional<std::string>(std::string_view name)> env;
  std::vector<std::pair<std::string, std::string>> flags;  // flag name without "--", value
};

// The error names the source, and for the file its line and key.
std::expected<Resolved, std::string> Resolve(const Sources& sources);

// Reads and parses `config_path` (none when empty), then resolves with the process's environment.
std::expected<Resolved, std::string> LoadSettings(const std::string& config_path,
                                                  std::vector<std::pair<std::string, std::string>> flags);

// --print-config: `name = value  # origin` per setting, secrets masked.
std::string FormatEffective(const Resolved& resolved);

}  // namespace warren::config
