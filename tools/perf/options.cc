#include "tools/perf/options.h"

#include <CLI/CLI.hpp>

#include <charconv>

#include "tools/perf/frames.h"

namespace warren::perf {

namespace {

std::expected<std::string, std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= s.size()) return std::unexpected("truncated %-escape in URI");
    auto [end, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || end != s.data() + i + 3) return std::unexpected("bad %-escape in URI");
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

}  // namespace

std::expected<AmqpUri, std::string> ParseAmqpUri(std::string_view uri) {
  AmqpUri out;
  if (uri.starts_with("amqps://")) {
    out.tls = true;
    out.port = 5671;
    uri.remove_prefix(8);
  } else if (uri.starts_with("amqp://")) {
    uri.remove_prefix(7);
  } else {
    return std::unexpected("the URI must start with amqp:// or amqps://");
  }
  std::string_view authority = uri.substr(0, uri.find('/'));
  std::string_view path = authority.size() < uri.size() ? uri.substr(authority.size() + 1) : "";
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    auto colon = userinfo.find(':');
    auto user = PercentDecode(userinfo.substr(0, colon));
    if (!user) return std::unexpected(user.error());
    out.user = *user;
    if (colon != std::string_view::npos) {
      auto password = PercentDecode(userinfo.substr(colon + 1));
      if (!password) return std::unexpected(password.error());
      out.password = *password;
    }
  }
  std::string_view host = authority, port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::unexpected("unterminated [ in the URI's host");
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (rest.starts_with(':')) port = rest.substr(1);
    else if (!rest.empty()) return std::unexpected("junk after the URI's host");
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!host.empty()) out.host = host;
  if (!port.empty()) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || end != port.data() + port.size() || v == 0 || v > 65535)
      return std::unexpected("bad port in the URI: " + std::string(port));
    out.port = static_cast<uint16_t>(v);
  }
  if (!path.empty()) {
    auto vhost = PercentDecode(path);
    if (!vhost) return std::unexpected(vhost.error());
    out.vhost = *vhost;
  }
  return out;
}

std::expected<amqp::FieldTable, std::string> ParseQueueArgs(std::string_view text) {
  amqp::FieldTable table;
  while (!text.empty()) {
    std::string_view item = text.substr(0, text.find(','));
    text.remove_prefix(std::min(text.size(), item.size() + 1));
    auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::unexpected("queue argument without K=V: " + std::string(item));
    std::string_view value = item.substr(eq + 1);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (!value.empty() && ec == std::errc() && end == value.data() + value.size())
      table.entries.emplace_back(std::string(item.substr(0, eq)), amqp::FieldValue(v));
    else
      table.entries.emplace_back(std::string(item.substr(0, eq)), amqp::FieldValue(std::string(value)));
  }
  return table;
}

std::vector<std::string> Options::QueueNames() const {
  if (queues == 1) return {queue};
  std::vector<std::string> names;
  for (int i = 1; i <= queues; ++i) names.push_back(queue + "-" + std::to_string(i));
  return names;
}

const std::string& Options::RoutingKeyFor(const std::string& name) const {
  return exchange.empty() || routing_key.empty() ? name : routing_key;
}

int Options::QueuesReachedFrom(const std::string& name) const {
  if (exchange.empty()) return 1;
  // Fanout and headers (bound with no arguments) ignore the key; otherwise every queue shares
  // the key given with -k, or each has its own name.
  if (exchange_type == "fanout" || exchange_type == "headers" || !routing_key.empty()) return queues;
  return 1;
}

std::expected<Options, int> ParseOptions(int argc, char** argv) {
  Options o;
  CLI::App app("warren-perf: an AMQP 0-9-1 load generator (flags as RabbitMQ PerfTest)");
  std::string uri = "amqp://guest:guest@127.0.0.1:5672/%2F", tls_verify, queue_args;
  std::vector<std::string> flags;
  app.add_option("--uri", uri, "amqp[s]://user:pass@host:port/vhost");
  app.add_option("--cacert", o.cacert, "CA certificates to verify the server against")->check(CLI::ExistingFile);
  app.add_option("--tls-verify", tls_verify, "none|peer (default: peer with --cacert)")
      ->check(CLI::IsMember({"none", "peer"}));
  app.add_option("--cert", o.cert, "client certificate (PEM)")->check(CLI::ExistingFile);
  app.add_option("--key", o.key, "client certificate's key (PEM)")->check(CLI::ExistingFile);
  app.add_option("-x,--producers", o.producers)->check(CLI::Range(0, 10000));
  app.add_option("-y,--consumers", o.consumers)->check(CLI::Range(0, 10000));
  app.add_option("-u,--queue", o.queue);
  app.add_option("--queues", o.queues)->check(CLI::Range(1, 10000));
  app.add_option("-e,--exchange", o.exchange);
  app.add_option("-t,--type", o.exchange_type)->check(CLI::IsMember({"direct", "fanout", "topic", "headers"}));
  app.add_option("-k,--routing-key", o.routing_key);
  app.add_flag("--durable", o.durable, "durable queues and exchange");
  app.add_option("-f,--flag", flags, "persistent | mandatory (repeatable)")
      ->check(CLI::IsMember({"persistent", "mandatory"}));
  app.add_flag("--persistent", o.persistent, "= -f persistent");
  app.add_option("--queue-args", queue_args, "K=V[,K=V...]");
  app.add_option("-s,--size", o.body_size, "body bytes (8 to 128 MiB, RabbitMQ's largest message)")
      ->check(CLI::Range(size_t{PublishTemplate::kMinBodySize}, size_t{128} << 20));
  app.add_option("-c,--confirm", o.confirm, "at most N unconfirmed per producer (0 = no confirms)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("-q,--qos", o.qos, "prefetch per consumer (0 = none)")->check(CLI::Range(0, 65535));
  app.add_flag("-a,--autoack", o.autoack);
  app.add_option("-A,--multi-ack-every", o.multi_ack_every)->check(CLI::Range(1, 1 << 20));
  app.add_option("-r,--rate", o.rate, "msgs/s per producer (0 = unlimited)")->check(CLI::Range(0.0, 1e9));
  app.add_option("-z,--time", o.time, "run time in seconds, --warmup included")->check(CLI::Range(0.0, 1e7));
  app.add_option("-C,--pmessages", o.pmessages, "messages per producer");
  app.add_option("--warmup", o.warmup, "seconds excluded from rates and percentiles")->check(CLI::Range(0.0, 1e6));
  app.add_flag("--predeclared", o.predeclared, "declare nothing");
  app.add_flag("--purge", o.purge, "purge the queues before the run");
  app.add_flag("--delete", o.delete_after, "delete the queues and exchange after the run");
  app.add_option("--broker-pid", o.broker_pid, "report this process's CPU too")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "I/O threads")->check(CLI::Range(1, 64));
  app.add_flag("--quiet", o.quiet, "no per-second lines on stderr");
  app.add_option("--label", o.label, "copied into the JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return std::unexpected(code == 0 ? 0 : 2);
  }
  auto bad = [](const std::string& why) {
    fprintf(stderr, "warren-perf: %s\n", why.c_str());
    return std::unexpected(2);
  };
  auto parsed = ParseAmqpUri(uri);
  if (!parsed) return bad(parsed.error());
  o.uri = *parsed;
  auto args = ParseQueueArgs(queue_args);
  if (!args) return bad(args.error());
  o.queue_args = std::move(*args);
  for (const auto& f : flags) (f == "persistent" ? o.persistent : o.mandatory) = true;
  o.tls_verify_peer = tls_verify.empty() ? !o.cacert.empty() : tls_verify == "peer";
  if (o.time > 0 && o.warmup >= o.time) return bad("--warmup must be shorter than --time");
  if (o.cert.empty() != o.key.empty()) return bad("--cert and --key go together");
  if (o.queue.empty() || o.queue.size() > 200) return bad("--queue must be 1 to 200 bytes");
  if (o.exchange.size() > 255 || o.routing_key.size() > 255) return bad("names are at most 255 bytes");
  return o;
}

}  // namespace warren::perf
