// warren-perf's settings (flags as RabbitMQ PerfTest names them; tools/README.md) and the AMQP
// URI they start from.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "server/amqp/field_table.h"

namespace warren::perf {

struct AmqpUri {
  bool tls = false;
  std::string user = "guest", password = "guest";
  std::string host = "127.0.0.1";
  uint16_t port = 5672;
  std::string vhost = "/";
};

// amqp[s]://[user[:pass]@]host[:port][/vhost], user, password and vhost percent-decoded; an
// empty path is "/". Port defaults: 5672, 5671 for amqps.
std::expected<AmqpUri, std::string> ParseAmqpUri(std::string_view uri);

// "K=V[,K=V...]": V an integer when it is one (signed 64-bit), else a string.
std::expected<amqp::FieldTable, std::string> ParseQueueArgs(std::string_view text);

struct Options {
  AmqpUri uri;
  std::string cacert, cert, key;
  bool tls_verify_peer = false;
  int producers = 1, consumers = 1;
  std::string queue = "warren-perf";
  int queues = 1;
  std::string exchange, exchange_type = "direct", routing_key;
  bool durable = false, persistent = false, mandatory = false;
  amqp::FieldTable queue_args;
  size_t body_size = 16;
  int confirm = 0;
  int qos = 0;
  bool autoack = false;
  int multi_ack_every = 1;
  double rate = 0;
  double time = 0;
  uint64_t pmessages = 0;
  double warmup = 0;
  bool predeclared = false, purge = false, delete_after = false;
  int broker_pid = 0;
  int threads = 1;
  bool quiet = false;
  std::string label;

  // NAME-1..NAME-N when queues > 1, else NAME.
  std::vector<std::string> QueueNames() const;
  // The routing key a producer publishing to `queue` uses.
  const std::string& RoutingKeyFor(const std::string& queue) const;
  // How many queues one message published to `queue`'s key reaches.
  int QueuesReachedFrom(const std::string& queue) const;
};

// Parses argv. On bad flags returns the exit code (0 for --help) after printing the reason.
std::expected<Options, int> ParseOptions(int argc, char** argv);

}  // namespace warren::perf
