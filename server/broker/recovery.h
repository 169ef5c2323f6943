// Startup: rebuilds the broker's durable state (vhosts, users, exchanges, queues, bindings and
// queued messages) from the store, then attaches the persister so later changes are journaled.
//
// Thread: the broker thread, before it starts accepting connections.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "server/broker/broker.h"
#include "server/broker/persister.h"
#include "storage/status.h"

namespace warren::storage {
class Store;
}  // namespace warren::storage

namespace warren::broker {

struct RecoveryStats {
  size_t vhosts = 0;
  size_t users = 0;
  size_t exchanges = 0;
  size_t queues = 0;
  size_t bindings = 0;
  uint64_t messages = 0;
  uint64_t transient_discarded = 0;  // non-persistent messages that had been paged to disk
  uint64_t orphan_bodies_removed = 0;
  uint64_t quarantined = 0;  // records moved aside (logged), definitions and messages
  uint64_t transient_queues_discarded = 0;
  uint64_t delayed = 0;  // pending messages of x-delayed-message exchanges  // queues without a record (not durable) that had paged messages
  double seconds = 0;
};

struct DefaultUser {
  std::string name;
  std::string password;
};

// Told, while messages are restored, which queue is being read and how many of its messages (and
// of all queues') are restored so far: when a queue starts and every kRecoveryProgressEvery
// messages. A long recovery reports through it (systemd's STATUS).
using RecoveryProgress = std::function<void(std::string_view vhost, std::string_view queue, uint64_t queue_messages,
                                            uint64_t total_messages)>;
inline constexpr uint64_t kRecoveryProgressEvery = 1024;

// Loads everything from `store` into `broker` (which must be fresh). A store with no users gets
// `default_user` (administrator, full access to "/"), as RabbitMQ does at first start. A record
// that does not parse or makes no sense (undecodable arguments, a binding to a missing queue, a
// message whose body is gone...) is logged as an error and moved to the store's quarantine
// (Store::Quarantine; warren-dump quarantine shows it), and the rest is restored. Returns a
// non-OK status only when the store cannot be read or written; the server must not start then.
storage::Status RecoverBroker(storage::Store& store, Broker& broker, Persister& persister,
                              const DefaultUser& default_user, RecoveryStats* stats,
                              const RecoveryProgress& progress = {});

}  // namespace warren::broker
