#include "server/broker/broker.h"

#include <algorithm>

namespace warren::broker {

Broker::Broker() { AddVhost("/"); }

Vhost* Broker::FindVhost(std::string_view name) {
  auto it = vhosts_.find(name);
  return it == vhosts_.end() ? nullptr : it->second.get();
}

Vhost& Broker::AddVhost(std::string name) {
  auto& slot = vhosts_[name];
  if (!slot) slot = std::make_unique<Vhost>(std::move(name));
  return *slot;
}

void Broker::AddUser(User user) {
  std::string name = user.name;
  users_[std::move(name)] = std::move(user);
}

const User* Broker::Authenticate(std::string_view name, std::string_view password) const {
  auto it = users_.find(name);
  if (it == users_.end() || it->second.password != password) return nullptr;
  return &it->second;
}

bool Broker::CanAccessVhost(const User& user, std::string_view vhost) const {
  return std::find(user.vhosts.begin(), user.vhosts.end(), vhost) != user.vhosts.end();
}

}  // namespace warren::broker
