#include "server/config/settings.h"

#include <map>

#include <gtest/gtest.h>

namespace warren::config {
namespace {

using Env = std::map<std::string, std::string, std::less<>>;
using Flags = std::vector<std::pair<std::string, std::string>>;

std::expected<Resolved, std::string> ResolveFrom(const std::string& file, const Env& env = {}, const Flags& flags = {}) {
  auto parsed = ParseConfig(file);
  if (!parsed) return std::unexpected(FormatProblem("w.conf", parsed.error()));
  Sources sources;
  sources.file_name = "w.conf";
  sources.file = &*parsed;
  sources.env = [&](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  sources.flags = flags;
  return Resolve(sources);
}

Settings SettingsFrom(const std::string& file) {
  auto resolved = ResolveFrom(file);
  EXPECT_TRUE(resolved) << file << ": " << resolved.error();
  return resolved ? resolved->settings : Settings{};
}

std::string ErrorFrom(const std::string& file, const Env& env = {}, const Flags& flags = {}) {
  auto resolved = ResolveFrom(file, env, flags);
  EXPECT_FALSE(resolved) << file;
  return resolved ? "" : resolved.error();
}

std::string OriginOf(const Resolved& resolved, std::string_view flag) {
  for (size_t i = 0; i < Specs().size(); ++i) {
    if (Specs()[i].flag == flag) return resolved.origins[i];
  }
  ADD_FAILURE() << flag;
  return {};
}

TEST(SettingsTest, DefaultsWithoutAnySource) {
  auto resolved = Resolve(Sources{});
  ASSERT_TRUE(resolved);
  EXPECT_EQ(resolved->settings.port, 5672);
  EXPECT_EQ(resolved->settings.heartbeat, 60);
  EXPECT_TRUE(resolved->settings.memory_high_watermark.relative);
  for (const std::string& origin : resolved->origins) EXPECT_EQ(origin, "default");
  EXPECT_TRUE(resolved->warnings.empty());
}

TEST(SettingsTest, RabbitMqKeysAndWarrensOwn) {
  const Settings s = SettingsFrom(
      "heartbeat = 30\nframe_max = 8192\nchannel_max = 16\nmax_message_size = 1048576\nconnection_max = 100\n"
      "default_user = admin\ndefault_pass = secret\nlog.console.level = warning\nload_definitions = /etc/d.json\n"
      "management.tcp.port = 15673\nmanagement.tcp.ip = 127.0.0.1\nprometheus.tcp.port = 0\n"
      "collect_statistics_interval = 1000\ndisk_free_limit.absolute = 2GB\nwarren.data_dir = /var/lib/warren\n"
      "warren.sync_writes = false\nwarren.queue_memory_window = 500\nwarren.queue_memory_window_bytes = 1MiB\n"
      "warren.management_allowed_hosts = a.example, b.example\nwarren.max_login_failures = 0\n");
  EXPECT_EQ(s.heartbeat, 30);
  EXPECT_EQ(s.frame_max, 8192u);
  EXPECT_EQ(s.channel_max, 16);
  EXPECT_EQ(s.max_message_size, 1048576u);
  EXPECT_EQ(s.max_connections, 100u);
  EXPECT_EQ(s.default_user, "admin");
  EXPECT_EQ(s.default_pass, "secret");
  EXPECT_EQ(s.log_level, "warn");
  EXPECT_EQ(s.load_definitions, "/etc/d.json");
  EXPECT_EQ(s.management_port, 15673);
  EXPECT_EQ(s.management_bind, "127.0.0.1");
  EXPECT_EQ(s.prometheus_port, 0);
  EXPECT_EQ(s.collect_statistics_interval, 1000u);
  EXPECT_EQ(s.disk_free_limit, 2'000'000'000u);
  EXPECT_EQ(s.data_dir, "/var/lib/warren");
  EXPECT_FALSE(s.sync_writes);
  EXPECT_EQ(s.queue_memory_window, 500u);
  EXPECT_EQ(s.queue_memory_window_bytes, 1u << 20);
  EXPECT_EQ(s.management_allowed_hosts, "a.example, b.example");
  EXPECT_EQ(s.max_login_failures, 0u);
  EXPECT_EQ(SettingsFrom("connection_max = infinity\n").max_connections, 0u);
  EXPECT_EQ(SettingsFrom("log.console.level = none\n").log_level, "off");
}

TEST(SettingsTest, LogKeysAreRabbitMqs) {
  const Settings s = SettingsFrom(
      "log.console = false\nlog.console.formatter = json\nlog.file = /var/log/warren/warren.log\n"
      "log.file.level = debug\nlog.file.formatter = json\nlog.file.rotation.size = 10485760\n"
      "log.file.rotation.count = 3\nwarren.shutdown_timeout = 30\n");
  EXPECT_FALSE(s.log_console);
  EXPECT_TRUE(s.log_console_json);
  EXPECT_EQ(s.log_file, "/var/log/warren/warren.log");
  EXPECT_EQ(s.log_file_level, "debug");
  EXPECT_TRUE(s.log_file_json);
  EXPECT_EQ(s.log_file_rotation_size, 10485760u);
  EXPECT_EQ(s.log_file_rotation_count, 3u);
  EXPECT_EQ(s.shutdown_timeout, 30u);
  EXPECT_EQ(SettingsFrom("log.file = false\n").log_file, "");
  EXPECT_NE(ErrorFrom("log.console.formatter = xml\n").find("is not plaintext or json"), std::string::npos);
  EXPECT_NE(ErrorFrom("log.file.level = loud\n").find("is not a log level"), std::string::npos);
}

TEST(SettingsTest, ListenerIsAPortOrAnAddressAndAPort) {
  Settings s = SettingsFrom("listeners.tcp.default = 5673\n");
  EXPECT_EQ(s.port, 5673);
  EXPECT_EQ(s.bind, "0.0.0.0");
  s = SettingsFrom("listeners.tcp.default = 127.0.0.1:5674\n");
  EXPECT_EQ(s.port, 5674);
  EXPECT_EQ(s.bind, "127.0.0.1");
  s = SettingsFrom("listeners.tcp.default = ::1:5675\n");
  EXPECT_EQ(s.bind, "::1");
  EXPECT_EQ(s.port, 5675);
  s = SettingsFrom("listeners.tcp.default = [::]:5676\n");
  EXPECT_EQ(s.bind, "::");
  EXPECT_EQ(s.port, 5676);
  EXPECT_EQ(ErrorFrom("listeners.tcp.default = abc\n"),
            "w.conf:1: listeners.tcp.default: \"abc\" is not an integer");
  EXPECT_EQ(ErrorFrom("listeners.tcp.default = 70000\n"),
            "w.conf:1: listeners.tcp.default: \"70000\" is out of range (0 to 65535)");
  EXPECT_EQ(ErrorFrom("listeners.tcp.default = localhost:5672\n"),
            "w.conf:1: listeners.tcp.default: \"localhost\" is not an IPv4 or IPv6 address");
  EXPECT_NE(ErrorFrom("listeners.tcp.other = 5673\n").find("one AMQP listener"), std::string::npos);
  EXPECT_NE(ErrorFrom("listeners.tcp = none\n").find("always has its AMQP listener"), std::string::npos);
}

TEST(SettingsTest, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
  const std::string file = "\n\nheartbeat = 10\n";
  auto resolved = ResolveFrom(file, {{"WARREN_HEARTBEAT", "20"}}, {{"heartbeat", "30"}});
  ASSERT_TRUE(resolved) << resolved.error();
  EXPECT_EQ(resolved->settings.heartbeat, 30);
  EXPECT_EQ(OriginOf(*resolved, "heartbeat"), "flag --heartbeat");
  resolved = ResolveFrom(file, {{"WARREN_HEARTBEAT", "20"}}, {});
  EXPECT_EQ(resolved->settings.heartbeat, 20);
  EXPECT_EQ(OriginOf(*resolved, "heartbeat"), "env WARREN_HEARTBEAT");
  resolved = ResolveFrom(file, {{"WARREN_HEARTBEAT", ""}}, {});  // empty: unset
  EXPECT_EQ(resolved->settings.heartbeat, 10);
  EXPECT_EQ(OriginOf(*resolved, "heartbeat"), "file w.conf:3 (heartbeat)");
  EXPECT_EQ(OriginOf(*resolved, "frame-max"), "default");
}

TEST(SettingsTest, OneValidationForFileEnvironmentAndFlag) {
  EXPECT_EQ(ErrorFrom("\nframe_max = 100\n"), "w.conf:2: frame_max: \"100\" is out of range (4096 to 16777216)");
  EXPECT_EQ(ErrorFrom("", {{"WARREN_FRAME_MAX", "100"}}),
            "environment variable WARREN_FRAME_MAX: \"100\" is out of range (4096 to 16777216)");
  EXPECT_EQ(ErrorFrom("", {}, {{"frame-max", "100"}}), "--frame-max: \"100\" is out of range (4096 to 16777216)");
  EXPECT_EQ(ErrorFrom("heartbeat = abc\n"), "w.conf:1: heartbeat: \"abc\" is not an integer");
  EXPECT_EQ(ErrorFrom("heartbeat = -1\n"), "w.conf:1: heartbeat: \"-1\" is not an integer");
  EXPECT_EQ(ErrorFrom("heartbeat = 99999999999999999999999\n"),
            "w.conf:1: heartbeat: \"99999999999999999999999\" is out of range (0 to 65535)");
  EXPECT_EQ(ErrorFrom("warren.sync_writes = maybe\n"), "w.conf:1: warren.sync_writes: \"maybe\" is not true or false");
  EXPECT_NE(ErrorFrom("disk_free_limit.absolute = 1TB\n").find("unknown unit 'TB'"), std::string::npos);
  EXPECT_NE(ErrorFrom("log.console.level = verbose\n").find("is not a log level"), std::string::npos);
  EXPECT_NE(ErrorFrom("", {}, {{"bind", "example.org"}}).find("--bind: \"example.org\" is not an IPv4"),
            std::string::npos);
  EXPECT_EQ(ErrorFrom("", {}, {{"data-dir", ""}}), "--data-dir: must not be empty");
}

TEST(SettingsTest, UnknownKeysStopTheStart) {
  EXPECT_EQ(ErrorFrom("heartbeat = 1\nheartbeats = 1\n"), "w.conf:2: heartbeats: unknown key");
  EXPECT_EQ(ErrorFrom("warren.no_such = 1\n"), "w.conf:1: warren.no_such: unknown key");
}

TEST(SettingsTest, TlsKeys) {
  auto resolved = ResolveFrom(
      "listeners.ssl.default = 5671\nssl_options.certfile = /c.pem\nssl_options.keyfile = /k.pem\n"
      "ssl_options.cacertfile = /ca.pem\nssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n"
      "ssl_options.versions.1 = tlsv1.3\nssl_options.ciphers.1 = TLS_AES_256_GCM_SHA384\n"
      "ssl_options.ciphers.2 = ECDHE-RSA-AES256-GCM-SHA384\nmanagement.ssl.port = 15671\n"
      "management.ssl.certfile = /m.pem\n");
  ASSERT_TRUE(resolved) << resolved.error();
  const Settings& s = resolved->settings;
  EXPECT_EQ(s.ssl_port, 5671);
  EXPECT_EQ(s.ssl_certfile, "/c.pem");
  EXPECT_EQ(s.ssl_keyfile, "/k.pem");
  EXPECT_EQ(s.ssl_cacertfile, "/ca.pem");
  EXPECT_TRUE(s.ssl_verify_peer);
  EXPECT_TRUE(s.ssl_fail_if_no_peer_cert);
  EXPECT_EQ(s.ssl_versions, "tlsv1.3");  // the file's list replaces the default one
  EXPECT_EQ(s.ssl_ciphers, "TLS_AES_256_GCM_SHA384:ECDHE-RSA-AES256-GCM-SHA384");
  EXPECT_EQ(s.management_ssl_port, 15671);
  EXPECT_EQ(s.management_ssl_certfile, "/m.pem");
  EXPECT_EQ(Settings().ssl_versions, "tlsv1.2,tlsv1.3");
  EXPECT_FALSE(Settings().ssl_verify_peer);
}

TEST(SettingsTest, BadTlsValuesAndUnsupportedTlsKeysStopTheStart) {
  EXPECT_NE(ErrorFrom("ssl_options.versions.1 = tlsv1.1\n").find("\"tlsv1.1\" is not tlsv1.2 or tlsv1.3"),
            std::string::npos);
  EXPECT_NE(ErrorFrom("", {}, {{"ssl-versions", "tlsv1.2,sslv3"}}).find("\"sslv3\" is not"), std::string::npos);
  EXPECT_NE(ErrorFrom("ssl_options.verify = verify_maybe\n").find("not verify_none or verify_peer"), std::string::npos);
  for (const char* line : {"ssl_options.password = x", "ssl_options.depth = 3", "management.ssl.verify = verify_peer",
                           "prometheus.ssl.port = 15691"}) {
    const std::string error = ErrorFrom(std::string(line) + "\n");
    EXPECT_NE(error.find("w.conf:1: "), std::string::npos) << line;
    EXPECT_NE(error.find("TLS setting is not supported yet"), std::string::npos) << line << ": " << error;
  }
  EXPECT_NE(ErrorFrom("listeners.ssl = 5671\n").find("listeners.ssl.default"), std::string::npos);
  EXPECT_NE(ErrorFrom("listeners.ssl.other = 5673\n").find("one AMQPS listener"), std::string::npos);
  EXPECT_NE(ErrorFrom("listeners.ssl.default = 127.0.0.1:5671\n").find("give a port"), std::string::npos);
  EXPECT_TRUE(ResolveFrom("listeners.ssl = none\n"));
}

TEST(SettingsTest, IgnoredRabbitMqKeysAreNamedInWarnings) {
  auto resolved = ResolveFrom("delegate_count = 32\ncluster_formation.peer_discovery_backend = classic_config\n"
                               "log.syslog.ssl_options.verify = verify_peer\nheartbeat = 5\nheartbeat = 6\n");
  ASSERT_TRUE(resolved) << resolved.error();
  ASSERT_EQ(resolved->warnings.size(), 4u);
  EXPECT_EQ(resolved->warnings[0], "w.conf:4: heartbeat: set again on line 5, which wins");
  EXPECT_EQ(resolved->warnings[1], "w.conf:1: delegate_count: ignored: a RabbitMQ setting Warren does not have");
  EXPECT_NE(resolved->warnings[2].find("w.conf:2: cluster_formation.peer_discovery_backend: ignored"),
            std::string::npos);
  EXPECT_NE(resolved->warnings[3].find("w.conf:3: log.syslog.ssl_options.verify: ignored"), std::string::npos);
  EXPECT_EQ(resolved->settings.heartbeat, 6);
}

TEST(SettingsTest, ConsumerTimeoutIsRabbitMqsPositiveIntegerOrUndefined) {
  EXPECT_EQ(Resolve(Sources{})->settings.consumer_timeout, 1'800'000u);
  EXPECT_EQ(SettingsFrom("consumer_timeout = 900000\n").consumer_timeout, 900'000u);
  EXPECT_EQ(SettingsFrom("consumer_timeout = 31536000000\n").consumer_timeout, 31'536'000'000u);  // a year
  EXPECT_EQ(SettingsFrom("consumer_timeout = undefined\n").consumer_timeout, 0u);
  // As RabbitMQ's schema (non_zero_positive_integer): 0 does not turn it off, undefined does.
  EXPECT_EQ(ErrorFrom("consumer_timeout = 0\n"),
            "w.conf:1: consumer_timeout: \"0\" is out of range (1 to 9223372036854775807) or undefined");
  EXPECT_EQ(ErrorFrom("consumer_timeout = 30m\n"), "w.conf:1: consumer_timeout: \"30m\" is not an integer or undefined");
  auto flag = ResolveFrom("consumer_timeout = 5000\n", {{"WARREN_CONSUMER_TIMEOUT", "undefined"}},
                          {{"consumer-timeout", "1000"}});
  ASSERT_TRUE(flag) << flag.error();
  EXPECT_EQ(flag->settings.consumer_timeout, 1000u);
  EXPECT_EQ(OriginOf(*flag, "consumer-timeout"), "flag --consumer-timeout");
  auto env = ResolveFrom("consumer_timeout = 5000\n", {{"WARREN_CONSUMER_TIMEOUT", "undefined"}});
  ASSERT_TRUE(env) << env.error();
  EXPECT_EQ(env->settings.consumer_timeout, 0u);
  EXPECT_NE(FormatEffective(*env).find("consumer-timeout" + std::string(12, ' ') + " = undefined"), std::string::npos) << FormatEffective(*env);
}

TEST(SettingsTest, UnsupportedRabbitMqKeysStopTheStartWithAReason) {
  EXPECT_NE(ErrorFrom("disk_free_limit.relative = 1.0\n").find("give disk_free_limit.absolute"), std::string::npos);
  EXPECT_NE(ErrorFrom("default_vhost = prod\n").find("default virtual host is /"), std::string::npos);
  EXPECT_TRUE(ResolveFrom("default_vhost = /\n"));
  EXPECT_NE(ErrorFrom("default_permissions.configure = ^$\n").find("not supported yet"), std::string::npos);
}

TEST(SettingsTest, LoopbackUsersInRabbitMqsForms) {
  EXPECT_EQ(SettingsFrom("").loopback_users, "guest");
  EXPECT_EQ(SettingsFrom("loopback_users = none\n").loopback_users, "");
  EXPECT_EQ(SettingsFrom("loopback_users.guest = false\n").loopback_users, "");
  // As RabbitMQ's translation: the users set to true, and only them.
  EXPECT_EQ(SettingsFrom("loopback_users.alice = true\nloopback_users.bob = false\nloopback_users.guest = true\n")
                .loopback_users,
            "alice,guest");
  EXPECT_NE(ErrorFrom("loopback_users = guest\n").find("is not none"), std::string::npos);
  EXPECT_NE(ErrorFrom("loopback_users.guest = nope\n").find("is not true or false"), std::string::npos);
}

TEST(SettingsTest, MemoryWatermarkRelativeOrAbsolute) {
  Settings s = SettingsFrom("vm_memory_high_watermark.relative = 0.6\n");
  EXPECT_TRUE(s.memory_high_watermark.relative);
  EXPECT_DOUBLE_EQ(s.memory_high_watermark.fraction, 0.6);
  s = SettingsFrom("vm_memory_high_watermark.absolute = 1GB\n");
  EXPECT_FALSE(s.memory_high_watermark.relative);
  EXPECT_EQ(s.memory_high_watermark.bytes, 1'000'000'000u);
  s = SettingsFrom("vm_memory_high_watermark.absolute = 1024MiB\n");
  EXPECT_EQ(s.memory_high_watermark.bytes, 1ull << 30);
  s = SettingsFrom("vm_memory_high_watermark.absolute = 1\n");  // one byte, not all the memory
  EXPECT_FALSE(s.memory_high_watermark.relative);
  EXPECT_EQ(s.memory_high_watermark.bytes, 1u);
  EXPECT_NE(ErrorFrom("vm_memory_high_watermark.relative = 2\n").find("not a fraction"), std::string::npos);
  EXPECT_NE(ErrorFrom("vm_memory_high_watermark.absolute = 0.5\n").find("not an amount of bytes"), std::string::npos);
  EXPECT_NE(ErrorFrom("vm_memory_high_watermark.relative = 0.5\nvm_memory_high_watermark.absolute = 1GB\n")
                .find("w.conf:2: vm_memory_high_watermark.absolute: set either"),
            std::string::npos);
}

TEST(SettingsTest, EffectiveValuesWithOrigins) {
  auto resolved = ResolveFrom("default_pass = secret\nheartbeat = 7\n", {{"WARREN_PORT", "1234"}}, {{"frame-max", "8192"}});
  ASSERT_TRUE(resolved);
  const std::string text = FormatEffective(*resolved);
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
  EXPECT_NE(text.find("default-pass"), std::string::npos);
  EXPECT_NE(text.find("# file w.conf:1 (default_pass)"), std::string::npos) << text;
  EXPECT_NE(text.find("heartbeat                    = 7                        # file w.conf:2 (heartbeat)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("= 1234                     # env WARREN_PORT"), std::string::npos) << text;
  EXPECT_NE(text.find("= 8192                     # flag --frame-max"), std::string::npos) << text;
  EXPECT_NE(text.find("channel-max                  = 2047                     # default"), std::string::npos) << text;
}

TEST(SettingsTest, EverySettingHasAFlagAndEveryFileKeyWorks) {
  for (const SettingSpec& spec : Specs()) {
    EXPECT_FALSE(spec.flag.empty());
    EXPECT_TRUE(spec.set && spec.show) << spec.flag;
    if (spec.file_key.empty()) continue;
    // The default's own text is valid in the file (a round trip through the shown value).
    std::string value = spec.show(Settings{});
    if (value.empty() || spec.file_key == "listeners.tcp.default" || spec.file_key == "loopback_users") continue;
    std::string key(spec.file_key);
    // A list's items one per `key.N` line.
    if (key.ends_with(".N")) {
      key.replace(key.size() - 1, 1, "1");
      value = value.substr(0, value.find(','));
    }
    auto resolved = ResolveFrom(key + " = " + value + "\n");
    EXPECT_TRUE(resolved) << spec.file_key << " = " << value << ": " << (resolved ? "" : resolved.error());
  }
}

}  // namespace
}  // namespace warren::config
