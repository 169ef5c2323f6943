// The broker: every vhost and the users that may log in. The root of the broker state.
//
// Thread: owned by the broker thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/broker/direct_reply.h"
#include "server/broker/timers.h"
#include "server/broker/vhost.h"

namespace warren::broker {

struct User {
  std::string name;
  std::string password_hash;  // see password.h
  std::vector<std::string> tags;
  std::vector<std::string> vhosts;  // vhosts the user has permissions in
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

  Vhost* FindVhost(std::string_view name);
  Vhost& AddVhost(std::string name);
  std::vector<std::string> VhostNames() const;

  void AddUser(User user);
  bool has_users() const { return !users_.empty(); }
  // The user when the credentials match, nullptr otherwise.
  const User* Authenticate(std::string_view name, std::string_view password) const;
  bool CanAccessVhost(const User& user, std::string_view vhost) const;

  uint64_t NextConnectionId() { return next_connection_id_++; }

 private:
  std::map<std::string, std::unique_ptr<Vhost>, std::less<>> vhosts_;
  std::map<std::string, User, std::less<>> users_;
  uint64_t next_connection_id_ = 1;
  Persister* persister_ = nullptr;
  TimerService* timers_ = nullptr;
  DirectReplyRegistry direct_replies_;
};

}  // namespace warren::broker
