// The broker: every vhost, the users that may log in and their permissions. The root of the
// broker state.
//
// Users, vhosts and permissions (the public API below; the management HTTP API and the
// definitions loader call it, so the names are stable):
//
//   AddUser / DeleteUser / ChangePassword / SetUserTags / FindUser / ListUsers
//   AddVhost / DeleteVhost / FindVhost / ListVhosts
//   SetPermissions / ClearPermissions / FindPermission / ListPermissions
//   CheckAccess / HasVhostAccess            (enforcement primitives; operations are authorized by authorize.h)
//   set_on_user_deleted / set_on_vhost_deleted   (hooks the net layer sets to close connections)
//
// Every change is journaled to the store through the Persister's open batch (durable with the
// next commit) and restored by RecoverBroker. Errors are Result values with an AMQP reply code
// and a RabbitMQ-like text: 404 NOT_FOUND for a missing user/vhost/permission, 406
// PRECONDITION_FAILED for something that already exists or an invalid argument (empty name,
// invalid regex). Permission checks read the live state on every call, so a change applies to
// the next operation of every connection.
//
// Thread: owned by the broker thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/broker/access.h"
#include "server/broker/direct_reply.h"
#include "server/broker/error.h"
#include "server/broker/memory.h"
#include "server/broker/message_stats.h"
#include "server/broker/timers.h"
#include "server/broker/topic_permissions.h"
#include "server/broker/vhost.h"

namespace warren::broker {

struct User {
  std::string name;
  std::string password_hash;  // RabbitMQ's format, base64 (see password.h); empty: no password login
  std::vector<std::string> tags;  // e.g. "administrator", "management"
};

class Persister;

class Broker {
 public:
  Broker();

  // Durable state is journaled through `persister` (null: nothing is stored).
  void set_persister(Persister* persister);
  Persister* persister() const { return persister_; }
  // The event loop's clock and timers (TTLs, x-expires, dead-lettering); null: FallbackTimers.
  void set_timers(TimerService* timers);
  // Direct reply-to consumers, by reply-to name.
  DirectReplyRegistry& direct_replies() { return direct_replies_; }
  // The bytes clients make the broker hold, against the memory high watermark (memory.h).
  MemoryAccount& memory() { return memory_; }
  const MemoryAccount& memory() const { return memory_; }

  // ---- Vhosts ----
  Vhost* FindVhost(std::string_view name);
  // Creates a vhost. 406 when it exists or the name is empty.
  Result<> AddVhost(std::string_view name);
  // Deletes a vhost with everything in it (exchanges, queues, messages, bindings) and every
  // permission in it. The vhost-deleted hook runs first, so the net layer closes the vhost's
  // connections (RabbitMQ: 320 CONNECTION_FORCED "vhost 'v' is deleted"). 404 when missing.
  Result<> DeleteVhost(std::string_view name);
  // Names, sorted.
  std::vector<std::string> ListVhosts() const;
  std::vector<std::string> VhostNames() const { return ListVhosts(); }
  // A clean stop, after the last connection closed: every delivery has its delivery state in the
  // open batch, so the queues' delivery horizons are dropped with it (Queue::CloseDeliveryHorizon).
  void CloseDeliveryHorizons();
  // Recovery and tests: the vhost, created in memory if missing, not journaled.
  Vhost& RestoreVhost(std::string name);
  // Drops an in-memory vhost that recovery found not stored (no journaling, no hook).
  void ForgetVhost(std::string_view name);

  // ---- Users ----
  // Creates a user. `password_hash` is in RabbitMQ's format (HashPassword(password), or a
  // password_hash exported from RabbitMQ with rabbit_password_hashing_sha256); empty means the
  // user cannot log in with a password. 406 when the user exists or the name is empty.
  Result<> AddUser(std::string_view name, std::string password_hash, std::vector<std::string> tags = {});
  // Deletes a user and all their permissions. The user-deleted hook runs (the net layer closes
  // their connections: 320 CONNECTION_FORCED "user 'u' deleted"). 404 when missing.
  Result<> DeleteUser(std::string_view name);
  // Replaces the password hash (see AddUser). Open connections stay open, as in RabbitMQ.
  Result<> ChangePassword(std::string_view name, std::string password_hash);
  Result<> SetUserTags(std::string_view name, std::vector<std::string> tags);
  // nullptr when missing. The pointer is valid until the user is deleted.
  const User* FindUser(std::string_view name) const;
  // Sorted by name.
  std::vector<User> ListUsers() const;
  bool has_users() const { return !users_.empty(); }
  // Recovery and tests: adds or replaces a user without journaling.
  void RestoreUser(User user);

  // The user when the credentials match, nullptr otherwise.
  const User* Authenticate(std::string_view name, std::string_view password) const;

  // ---- Permissions ----
  // Sets (creates or replaces) the user's configure/write/read regexes in `vhost` (see access.h
  // for the matching rules). 404 when the user or vhost is missing, 406 for an invalid regex
  // (nothing changes then).
  Result<> SetPermissions(std::string_view user, std::string_view vhost, std::string_view configure,
                          std::string_view write, std::string_view read);
  // Removes the user's permissions in `vhost`: they can no longer open connections to it, and
  // their open connections there are refused at their next operation. 404 when there are none.
  Result<> ClearPermissions(std::string_view user, std::string_view vhost);
  // nullptr when the user has no permissions in `vhost`.
  const Permission* FindPermission(std::string_view user, std::string_view vhost) const;
  // Every permission, sorted by user then vhost; `user`/`vhost` non-empty filter.
  std::vector<Permission> ListPermissions(std::string_view user = {}, std::string_view vhost = {}) const;
  // Recovery and tests: sets a permission without journaling. Fails on an invalid regex.
  Result<> RestorePermission(Permission permission);

  // ---- Topic permissions (topic_permissions.h) ----
  // Sets (creates or replaces) the user's topic permission for one exchange of a vhost. 404 when
  // the user or vhost is missing, 406 for an invalid regex (nothing changes then). The exchange
  // need not exist (RabbitMQ does not ask either).
  Result<> SetTopicPermission(TopicPermission permission);
  // Removes the user's topic permissions in `vhost` for `exchange`, or for all exchanges when it
  // is empty. 404 when there are none.
  Result<> ClearTopicPermissions(std::string_view user, std::string_view vhost, std::string_view exchange = {});
  // Sorted by user, vhost, exchange; `user`/`vhost` non-empty filter.
  std::vector<TopicPermission> ListTopicPermissions(std::string_view user = {}, std::string_view vhost = {}) const;
  // Recovery and tests: sets a topic permission without journaling. Fails on an invalid regex.
  Result<> RestoreTopicPermission(TopicPermission permission);
  // Whether any topic permission exists (publishing skips the lookup otherwise).
  bool has_topic_permissions() const { return !topic_permissions_.empty(); }

  // ---- Enforcement ----
  // Whether `user` may open a connection to `vhost` (has a permission there).
  bool HasVhostAccess(std::string_view user, std::string_view vhost) const;
  // OK when `user` has `access` to the exchange/queue `name` of `vhost`; otherwise 403
  // ACCESS_REFUSED "access to queue 'q' in vhost '/' refused for user 'u'" (the default exchange
  // is named "amq.default", as in RabbitMQ).
  Result<> CheckAccess(std::string_view user, std::string_view vhost, AccessKind access, ResourceKind resource,
                       std::string_view name) const;
  // Topic permissions: OK unless `exchange` is a topic exchange of `vhost` on which `user`'s topic
  // permission refuses publishing with (kWrite) or binding with (kRead) `routing_key`; then 403
  // "access to topic 'k' in exchange 'x' in vhost 'v' refused for user 'u'". Costs nothing
  // while no topic permission exists. REQUIRES: access is kWrite or kRead.
  Result<> CheckTopicAccess(std::string_view user, std::string_view vhost, std::string_view exchange,
                            AccessKind access, std::string_view routing_key) const;
  // Changes whenever a user, vhost or permission changes: a cache of CheckAccess answers is
  // valid while this stays the same.
  uint64_t access_generation() const { return access_generation_; }

  // ---- Hooks (set by the net layer; run synchronously, before the state is removed) ----
  void set_on_user_deleted(std::function<void(std::string_view user)> hook) { on_user_deleted_ = std::move(hook); }
  void set_on_vhost_deleted(std::function<void(std::string_view vhost)> hook) {
    on_vhost_deleted_ = std::move(hook);
  }

  uint64_t NextConnectionId() { return next_connection_id_++; }

  // All client traffic (counted by the channels and the management API): the overview's
  // message_stats and Prometheus' warren_*_total counters.
  MessageStats& stats() { return stats_; }
  const MessageStats& stats() const { return stats_; }
  // Samples the broker's and every queue's stats (their rates) now, then every `interval`
  // milliseconds on the broker's timers (RabbitMQ's collect_statistics_interval, 5000 ms).
  // REQUIRES: set_timers was called. interval > 0.
  void StartStatsSampling(MonoMillis interval);

 private:
  // The journal batch, or nullptr when nothing is stored.
  storage::WriteBatch* Journal() const;
  void JournalUser(const User& user) const;
  void JournalPermission(const Permission& p) const;
  void JournalTopicPermission(const TopicPermission& p) const;
  // Removes matching topic permissions (see TopicPermissionTable::Remove) and journals it.
  size_t RemoveTopicPermissions(std::string_view user, std::string_view vhost, std::string_view exchange);
  // Samples every MessageStats and re-arms stats_timer_.
  void SampleStats();

  MemoryAccount memory_;  // first: outlives every message the members below hold
  std::map<std::string, std::unique_ptr<Vhost>, std::less<>> vhosts_;
  // Deleted vhosts, emptied but kept alive: timers and deferred dead-lettering may still point at
  // them. Destroyed with the broker.
  std::vector<std::unique_ptr<Vhost>> retired_vhosts_;
  std::map<std::string, User, std::less<>> users_;
  // user -> vhost -> permission (regexes compiled when set).
  std::map<std::string, std::map<std::string, CompiledPermission, std::less<>>, std::less<>> permissions_;
  TopicPermissionTable topic_permissions_;
  uint64_t access_generation_ = 1;
  std::function<void(std::string_view)> on_user_deleted_;
  std::function<void(std::string_view)> on_vhost_deleted_;
  uint64_t next_connection_id_ = 1;
  MessageStats stats_;
  std::unique_ptr<Timer> stats_timer_;
  MonoMillis stats_interval_ = 0;
  Persister* persister_ = nullptr;
  TimerService* timers_ = nullptr;
  DirectReplyRegistry direct_replies_;
};

}  // namespace warren::broker
