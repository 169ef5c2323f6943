#include "server/broker/broker.h"

#include <algorithm>

#include "server/broker/password.h"

namespace warren::broker {

Broker::Broker() { AddVhost("/"); }

void Broker::set_timers(TimerService* timers) {
  timers_ = timers;
  for (auto& [name, vhost] : vhosts_) vhost->set_timers(timers);
}

void Broker::set_persister(Persister* persister) {
  persister_ = persister;
  for (auto& [name, vhost] : vhosts_) vhost->set_persister(persister);
}

Vhost* Broker::FindVhost(std::string_view name) {
  auto it = vhosts_.find(name);
  return it == vhosts_.end() ? nullptr : it->second.get();
}

Vhost& Broker::AddVhost(std::string name) {
  auto& slot = vhosts_[name];
  if (!slot) {
    slot = std::make_unique<Vhost>(std::move(name));
    slot->set_persister(persister_);
    slot->set_timers(timers_);
  }
  return *slot;
}

std::vector<std::string> Broker::VhostNames() const {
  std::vector<std::string> names;
  for (const auto& [name, vhost] : vhosts_) names.push_back(name);
  return names;
}

void Broker::AddUser(User user) {
  std::string name = user.name;
  users_[std::move(name)] = std::move(user);
}

const User* Broker::Authenticate(std::string_view name, std::string_view password) const {
  auto it = users_.find(name);
  if (it == users_.end() || !CheckPassword(it->second.password_hash, password)) return nullptr;
  return &it->second;
}

bool Broker::CanAccessVhost(const User& user, std::string_view vhost) const {
  return std::find(user.vhosts.begin(), user.vhosts.end(), vhost) != user.vhosts.end();
}

}  // namespace warren::broker
