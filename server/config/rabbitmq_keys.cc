#include "server/config/rabbitmq_keys.h"

namespace warren::config {

namespace {

bool Matches(std::string_view key, std::string_view pattern) {
  if (pattern.ends_with(".*")) return key.starts_with(pattern.substr(0, pattern.size() - 1));
  return key == pattern;
}

// RabbitMQ keys Warren refuses: serving without them would not be what the operator asked for.
struct Refused {
  std::string_view pattern;  // "a.*": any key under a.
  std::string_view reason;
};
constexpr Refused kRefused[] = {
    {"listeners.ssl.*", "Warren has one AMQPS listener: set listeners.ssl.default (a port)"},
    {"ssl_options", kNoTls},
    {"ssl_options.*", kNoTls},
    {"management.ssl.*", kNoTls},
    {"management.listener.ssl", kNoTls},
    {"management.listener.ssl_opts.*", kNoTls},
    {"prometheus.ssl.*", kNoTls},
    {"definitions.tls.*", kNoTls},
    {"listeners.tcp", "Warren always has its AMQP listener (listeners.tcp.default)"},
    {"listeners.tcp.*", "Warren has one AMQP listener: set listeners.tcp.default (a port, or ip:port)"},
    {"disk_free_limit.relative", "not supported yet: give disk_free_limit.absolute"},
    {"default_permissions.*", "not supported yet: the default user gets full permissions on /"},
    {"default_user_tags.*", "not supported yet: the default user is an administrator"},
    {"management.listener.*", "use management.tcp.port and management.tcp.ip"},
    {"management.load_definitions", "use load_definitions"},
    {"definitions.*", "use load_definitions (a file)"},
    {"management.path_prefix", "not supported: the management API is served at /api"},
    {"management.disable_basic_auth", "not supported yet"},
    {"management.enable_uaa", "OAuth 2 is not supported"},
    {"management.uaa_client_id", "OAuth 2 is not supported"},
    {"management.uaa_location", "OAuth 2 is not supported"},
    {"prometheus.tcp.ip", "not supported: Prometheus metrics listen on management.tcp.ip"},
};

// RabbitMQ keys that change nothing Warren does (or tune what it lacks, such as clustering):
// accepted, so that a rabbitmq.conf can be reused, and each named in a warning.
constexpr std::string_view kIgnored[] = {
    "ssl_handshake_timeout",
    "ssl_allow_poodle_attack",
    "ssl_cert_login_from",
    "ssl_cert_login_san_type",
    "ssl_cert_login_san_index",
    "reverse_dns_lookups",
    "proxy_protocol",
    "num_acceptors.*",
    "socket_writer.*",
    "tcp_listen_options",
    "tcp_listen_options.*",
    "initial_frame_max",
    "erlang.K",
    "default_worker_pool_size",
    "password_hashing_module",
    "credential_validator.*",
    "auth_mechanisms.*",
    "auth_backends.*",
    "cluster_name",
    "cluster_formation.*",
    "cluster_partition_handling",
    "cluster_partition_handling.*",
    "cluster_keepalive_interval",
    "delegate_count",
    "mirroring_sync_batch_size",
    "mirroring_sync_max_throughput",
    "queue_master_locator",
    "queue_leader_locator",
    "classic_queue.*",
    "quorum_queue.*",
    "raft.*",
    "vm_memory_high_watermark_paging_ratio",
    "vm_memory_calculation_strategy",
    "total_memory_available_override_value",
    "memory_monitor_interval",
    "collect_statistics",
    "hipe_compile",
    "mnesia_table_loading_retry_timeout",
    "mnesia_table_loading_retry_limit",
    "message_store_shutdown_timeout",
    "queue_index_embed_msgs_below",
    "background_gc_enabled",
    "background_gc_target_interval",
    "vhost_restart_strategy",
    "product.*",
    "motd_file",
    "net_ticktime",
    "distribution.*",
    "sysmon_handler.*",
    "log.dir",
    "log.console.stdio",
    "log.console.formatter.*",
    "log.exchange",
    "log.exchange.*",
    "log.journald",
    "log.journald.*",
    "log.syslog",
    "log.syslog.*",
    "log.file.rotation.date",
    "log.file.rotation.compress",
    "log.file.formatter.*",
    "log.connection.*",
    "log.channel.*",
    "log.mirroring.*",
    "log.queue.*",
    "log.federation.*",
    "log.upgrade.*",
    "log.ra.*",
    "log.default.*",
    "management.http_log_dir",
    "management.http.*",
    "management.tcp.*",
    "management.login_session_timeout",
    "management.db_cache_multiplier",
    "management.cors.*",
    "management.csp.*",
    "management.hsts.*",
    "management.headers.*",
    "management.disable_stats",
    "management.enable_queue_totals",
    "management.rates_mode",
    "management.sample_retention_policies.*",
    "management_agent.*",
    "prometheus.return_per_object_metrics",
    "prometheus.path",
    "prometheus.tcp.*",
    "prometheus.filter_aggregated_queue_metrics_pattern",
    "mqtt.*",
    "stomp.*",
    "web_mqtt.*",
    "web_stomp.*",
    "stream.*",
};

}  // namespace

std::optional<std::string_view> RefusedReason(std::string_view key) {
  for (const Refused& refused : kRefused) {
    if (Matches(key, refused.pattern)) return refused.reason;
  }
  return std::nullopt;
}

bool IsIgnoredRabbitMqKey(std::string_view key) {
  for (std::string_view ignored : kIgnored) {
    if (Matches(key, ignored)) return true;
  }
  return false;
}

}  // namespace warren::config
