// Loading users, vhosts and permissions from a RabbitMQ definitions file (the JSON that
// `rabbitmqctl export_definitions` and the management API's GET /api/definitions produce), as
// RabbitMQ's `load_definitions` setting does at startup. Existing users/permissions with the same
// names are updated, so loading the same file at every start is idempotent.
//
// Imported: "vhosts" [{name}], "users" [{name, password_hash + hashing_algorithm (only
// rabbit_password_hashing_sha256), or password (plain text, hashed here), tags: "a,b" or
// ["a","b"]}], "permissions" [{user, vhost, configure, write, read}], "topic_permissions" [{user,
// vhost, exchange, write, read}], "exchanges" [{name, vhost,
// type, durable, auto_delete, internal, arguments}], "queues" [{name, vhost, durable,
// auto_delete, arguments}], "bindings" [{source, vhost, destination, destination_type
// (queue|exchange), routing_key, arguments}], "policies" [{vhost, name, pattern, apply-to,
// definition, priority}] (operator policies are neither exported nor imported, as in RabbitMQ
// 3.10). Exchanges and queues that already exist are kept
// (they must be equivalent); bindings are added (idempotent). Metadata (rabbit_version...) and
// empty sections are accepted silently; other non-empty sections (parameters...) are
// not imported and are reported in `ignored`.
//
// All or nothing: the whole document is validated (every reference resolved against the broker
// and the document itself, exchange types, regexes, queue arguments) before anything changes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/broker/broker.h"
#include "server/broker/error.h"

namespace warren::broker {

struct DefinitionsSummary {
  size_t vhosts = 0;
  size_t users = 0;
  size_t permissions = 0;
  size_t topic_permissions = 0;
  size_t exchanges = 0;
  size_t queues = 0;
  size_t bindings = 0;
  size_t policies = 0;
  std::vector<std::string> ignored;  // top-level sections not imported
};

// Parses `json` and applies it to `broker` (journaled). The whole document is validated before
// anything changes; an error names the offending entry. Error codes are 406.
Result<DefinitionsSummary> LoadDefinitions(Broker& broker, std::string_view json);

// The broker's definitions in RabbitMQ's export format (GET /api/definitions): metadata, users
// (password_hash, hashing_algorithm, tags), vhosts, permissions, topic_permissions, empty
// parameters / global_parameters, policies, durable non-exclusive queues, durable exchanges
// other than the default and amq.*, and bindings between durable ends from non-default
// exchanges. LoadDefinitions accepts the result.
std::string ExportDefinitions(Broker& broker);

}  // namespace warren::broker
