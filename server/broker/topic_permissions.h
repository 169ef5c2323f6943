// RabbitMQ's topic permissions (rabbitmqctl set_topic_permissions): per user, vhost and topic
// exchange, a write and a read regular expression that routing keys must match. A publish to a
// topic exchange checks its routing key against `write`; binding to or unbinding from a topic
// exchange (queue.bind, exchange.bind and their unbinds) checks the binding key against `read`.
// Where a user has no topic permission for an exchange, every routing key is allowed; exchanges
// of other types are never checked. "{username}" and "{vhost}" in a pattern stand for the
// permission's user and vhost, as in RabbitMQ, escaped so that they match only themselves (a user
// called "a.*" gets "a\.\*", not a wildcard). Matching is PermissionPattern's (access.h).
//
// Thread: owned by the broker thread (Broker holds the table and journals its changes).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "server/broker/access.h"
#include "server/broker/error.h"

namespace warren::broker {

struct TopicPermission {
  std::string user;
  std::string vhost;
  std::string exchange;
  std::string write;
  std::string read;
};

class TopicPermissionTable {
 public:
  // Adds or replaces the permission for (user, vhost, exchange). 406 naming the pattern when a
  // regex is invalid; nothing changes then.
  Result<> Set(TopicPermission permission);
  // Removes what matches: the user's permissions in `vhost` for `exchange`, or for every
  // exchange when `exchange` is empty. An empty `user` or `vhost` matches any. Returns what
  // was removed (for journaling).
  std::vector<TopicPermission> Remove(std::string_view user, std::string_view vhost, std::string_view exchange);
  // Sorted by user, vhost, exchange; empty filters match everything.
  std::vector<TopicPermission> List(std::string_view user = {}, std::string_view vhost = {}) const;
  bool empty() const { return entries_.empty(); }

  // Whether `user` may use `routing_key` on the topic exchange `exchange` of `vhost`: `write`
  // for publishing, `read` for binding. REQUIRES: access is kWrite or kRead.
  bool Allows(std::string_view user, std::string_view vhost, std::string_view exchange, AccessKind access,
              std::string_view routing_key) const;

 private:
  struct Compiled {
    TopicPermission permission;
    PermissionPattern write;
    PermissionPattern read;
  };
  using Key = std::tuple<std::string, std::string, std::string>;  // user, vhost, exchange
  std::map<Key, Compiled, std::less<>> entries_;
};

// "{username}" and "{vhost}" replaced in `pattern` by the regex-escaped user and vhost names.
std::string ExpandTopicPattern(std::string_view pattern, std::string_view user, std::string_view vhost);

}  // namespace warren::broker
