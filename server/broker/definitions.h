// Loading users, vhosts and permissions from a RabbitMQ definitions file (the JSON that
// `rabbitmqctl export_definitions` and the management API's GET /api/definitions produce), as
// RabbitMQ's `load_definitions` setting does at startup. Existing users/permissions with the same
// names are updated, so loading the same file at every start is idempotent.
//
// Imported: "vhosts" [{name}], "users" [{name, password_hash + hashing_algorithm (only
// rabbit_password_hashing_sha256), or password (plain text, hashed here), tags: "a,b" or
// ["a","b"]}], "permissions" [{user, vhost, configure, write, read}]. Other sections (queues,
// exchanges, bindings, policies, parameters...) are not imported; they are reported in
// `ignored`.
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
  std::vector<std::string> ignored;  // top-level sections not imported
};

// Parses `json` and applies it to `broker` (journaled). The whole document is validated before
// anything changes; an error names the offending entry. Error codes are 406.
Result<DefinitionsSummary> LoadDefinitions(Broker& broker, std::string_view json);

}  // namespace warren::broker
