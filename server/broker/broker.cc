#include "server/broker/broker.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/dcheck.h"
#include "proto/warren.pb.h"
#include "server/amqp/constants.h"
#include "server/broker/limits.h"
#include "server/broker/password.h"
#include "server/broker/persister.h"
#include "server/broker/publish.h"

namespace warren::broker {

namespace r = amqp::reply;

Broker::Broker() { RestoreVhost("/"); }

void Broker::set_timers(TimerService* timers) {
  timers_ = timers;
  for (auto& [name, vhost] : vhosts_) vhost->set_timers(timers);
}

void Broker::set_persister(Persister* persister) {
  persister_ = persister;
  for (auto& [name, vhost] : vhosts_) vhost->set_persister(persister);
}

void Broker::StartStatsSampling(MonoMillis interval) {
  WARREN_DCHECK(timers_ != nullptr && interval > 0);
  stats_interval_ = interval;
  stats_timer_ = timers_->NewTimer([this] { SampleStats(); });
  SampleStats();
}

void Broker::SampleStats() {
  const MonoMillis now = timers_->Now();
  stats_.Sample(now, stats_interval_);
  for (auto& [name, vhost] : vhosts_) {
    for (const auto& [queue_name, queue] : vhost->queues()) {
      queue->stats().Sample(now, stats_interval_, QueueDepth{queue->ready_count(), queue->unacked_count()});
    }
  }
  stats_timer_->ArmAt(now + stats_interval_);
}

storage::WriteBatch* Broker::Journal() const {
  if (persister_ == nullptr || !persister_->enabled()) return nullptr;
  return &persister_->batch();
}

void Broker::JournalUser(const User& user) const {
  storage::WriteBatch* batch = Journal();
  if (batch == nullptr) return;
  proto::UserRecord record;
  record.set_name(user.name);
  record.set_password_hash(user.password_hash);
  record.set_hashing_algorithm(std::string(kSha256Hashing));
  for (const auto& tag : user.tags) record.add_tags(tag);
  batch->PutUser(record);
}

void Broker::JournalPermission(const Permission& p) const {
  storage::WriteBatch* batch = Journal();
  if (batch == nullptr) return;
  proto::PermissionRecord record;
  record.set_user(p.user);
  record.set_vhost(p.vhost);
  record.set_configure(p.configure);
  record.set_write(p.write);
  record.set_read(p.read);
  batch->PutPermission(record);
}

// ---- vhosts ----

Vhost* Broker::FindVhost(std::string_view name) {
  auto it = vhosts_.find(name);
  return it == vhosts_.end() ? nullptr : it->second.get();
}

Vhost& Broker::RestoreVhost(std::string name) {
  auto& slot = vhosts_[name];
  if (!slot) {
    slot = std::make_unique<Vhost>(std::move(name));
    slot->set_persister(persister_);
    slot->set_timers(timers_);
    slot->set_memory(&memory_);
    slot->set_due_publisher([this, scratch = std::vector<Queue*>()](Vhost& vhost, const Exchange& exchange,
                                                                    const MessageRef& message) mutable {
      PublishDue(*this, vhost, exchange, message, scratch);
    });
  }
  return *slot;
}

void Broker::ForgetVhost(std::string_view name) {
  auto it = vhosts_.find(name);
  if (it != vhosts_.end()) vhosts_.erase(it);
}

Result<> Broker::AddVhost(std::string_view name) {
  if (name.empty()) return Fail(r::kPreconditionFailed, "vhost name must not be empty");
  if (auto ok = CheckNameLength("vhost", name); !ok) return ok;
  if (vhosts_.contains(name)) return Fail(r::kPreconditionFailed, fmt::format("vhost '{}' already exists", name));
  RestoreVhost(std::string(name));
  if (storage::WriteBatch* batch = Journal()) {
    proto::VhostRecord record;
    record.set_name(std::string(name));
    batch->PutVhost(record);
  }
  ++access_generation_;
  return {};
}

Result<> Broker::DeleteVhost(std::string_view name) {
  auto it = vhosts_.find(name);
  if (it == vhosts_.end()) return Fail(r::kNotFound, fmt::format("vhost '{}' not found", name));
  const std::string vhost_name(name);  // `name` may point into what is deleted below
  if (on_vhost_deleted_) on_vhost_deleted_(vhost_name);  // closes its connections first
  it = vhosts_.find(vhost_name);
  if (it == vhosts_.end()) return {};
  std::unique_ptr<Vhost> vhost = std::move(it->second);
  vhosts_.erase(it);
  vhost->DeleteAll();
  storage::WriteBatch* batch = Journal();
  for (auto& [user, by_vhost] : permissions_) {
    if (by_vhost.erase(vhost_name) > 0 && batch != nullptr) batch->DeletePermission(user, vhost_name);
  }
  std::erase_if(permissions_, [](const auto& entry) { return entry.second.empty(); });
  RemoveTopicPermissions({}, vhost_name, {});
  if (batch != nullptr) batch->DeleteVhost(vhost_name);
  retired_vhosts_.push_back(std::move(vhost));
  ++access_generation_;
  return {};
}

void Broker::CloseDeliveryHorizons() {
  for (const std::string& name : ListVhosts()) {
    for (const auto& [queue_name, queue] : FindVhost(name)->queues()) queue->CloseDeliveryHorizon();
  }
}

std::vector<std::string> Broker::ListVhosts() const {
  std::vector<std::string> names;
  for (const auto& [name, vhost] : vhosts_) names.push_back(name);
  return names;
}

// ---- users ----

void Broker::RestoreUser(User user) {
  std::string name = user.name;
  users_[std::move(name)] = std::move(user);
  ++access_generation_;
}

Result<> Broker::AddUser(std::string_view name, std::string password_hash, std::vector<std::string> tags) {
  if (name.empty()) return Fail(r::kPreconditionFailed, "user name must not be empty");
  if (auto ok = CheckNameLength("user", name); !ok) return ok;
  if (users_.contains(name)) return Fail(r::kPreconditionFailed, fmt::format("user '{}' already exists", name));
  User user{std::string(name), std::move(password_hash), std::move(tags)};
  JournalUser(user);
  RestoreUser(std::move(user));
  return {};
}

Result<> Broker::DeleteUser(std::string_view name) {
  auto it = users_.find(name);
  if (it == users_.end()) return Fail(r::kNotFound, fmt::format("user '{}' not found", name));
  const std::string user_name(name);
  users_.erase(it);
  storage::WriteBatch* batch = Journal();
  if (auto p = permissions_.find(user_name); p != permissions_.end()) {
    if (batch != nullptr) {
      for (const auto& [vhost, permission] : p->second) batch->DeletePermission(user_name, vhost);
    }
    permissions_.erase(p);
  }
  RemoveTopicPermissions(user_name, {}, {});
  if (batch != nullptr) batch->DeleteUser(user_name);
  ++access_generation_;
  if (on_user_deleted_) on_user_deleted_(user_name);
  return {};
}

Result<> Broker::ChangePassword(std::string_view name, std::string password_hash) {
  auto it = users_.find(name);
  if (it == users_.end()) return Fail(r::kNotFound, fmt::format("user '{}' not found", name));
  it->second.password_hash = std::move(password_hash);
  JournalUser(it->second);
  return {};
}

Result<> Broker::SetUserTags(std::string_view name, std::vector<std::string> tags) {
  auto it = users_.find(name);
  if (it == users_.end()) return Fail(r::kNotFound, fmt::format("user '{}' not found", name));
  it->second.tags = std::move(tags);
  JournalUser(it->second);
  return {};
}

const User* Broker::FindUser(std::string_view name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : &it->second;
}

std::vector<User> Broker::ListUsers() const {
  std::vector<User> out;
  for (const auto& [name, user] : users_) out.push_back(user);
  return out;
}

const User* Broker::Authenticate(std::string_view name, std::string_view password) const {
  auto it = users_.find(name);
  if (it == users_.end()) {
    // Hash anyway, so that the reply time does not tell whether the user exists.
    static const std::string kDummyHash = HashPassword("");
    [[maybe_unused]] const bool ignored = CheckPassword(kDummyHash, password);
    return nullptr;
  }
  if (!CheckPassword(it->second.password_hash, password)) return nullptr;
  return &it->second;
}

// ---- permissions ----

Result<> Broker::RestorePermission(Permission permission) {
  auto compiled = CompiledPermission::Compile(std::move(permission));
  if (!compiled) return std::unexpected(compiled.error());
  const Permission& p = compiled->permission();
  auto& by_vhost = permissions_[p.user];
  std::string vhost = p.vhost;
  by_vhost.insert_or_assign(std::move(vhost), std::move(*compiled));
  ++access_generation_;
  return {};
}

Result<> Broker::SetPermissions(std::string_view user, std::string_view vhost, std::string_view configure,
                                std::string_view write, std::string_view read) {
  if (!users_.contains(user)) return Fail(r::kNotFound, fmt::format("user '{}' not found", user));
  if (!vhosts_.contains(vhost)) return Fail(r::kNotFound, fmt::format("vhost '{}' not found", vhost));
  Permission p{std::string(user), std::string(vhost), std::string(configure), std::string(write), std::string(read)};
  if (auto set = RestorePermission(p); !set) return set;
  JournalPermission(p);
  return {};
}

Result<> Broker::ClearPermissions(std::string_view user, std::string_view vhost) {
  auto it = permissions_.find(user);
  if (it == permissions_.end() || !it->second.contains(vhost)) {
    return Fail(r::kNotFound, fmt::format("user '{}' has no permissions in vhost '{}'", user, vhost));
  }
  it->second.erase(it->second.find(vhost));
  if (storage::WriteBatch* batch = Journal()) batch->DeletePermission(user, vhost);
  if (it->second.empty()) permissions_.erase(it);
  ++access_generation_;
  return {};
}

const Permission* Broker::FindPermission(std::string_view user, std::string_view vhost) const {
  auto it = permissions_.find(user);
  if (it == permissions_.end()) return nullptr;
  auto p = it->second.find(vhost);
  return p == it->second.end() ? nullptr : &p->second.permission();
}

std::vector<Permission> Broker::ListPermissions(std::string_view user, std::string_view vhost) const {
  std::vector<Permission> out;
  for (const auto& [u, by_vhost] : permissions_) {
    if (!user.empty() && u != user) continue;
    for (const auto& [v, p] : by_vhost) {
      if (!vhost.empty() && v != vhost) continue;
      out.push_back(p.permission());
    }
  }
  return out;
}

bool Broker::HasVhostAccess(std::string_view user, std::string_view vhost) const {
  return users_.contains(user) && vhosts_.contains(vhost) && FindPermission(user, vhost) != nullptr;
}

Result<> Broker::CheckAccess(std::string_view user, std::string_view vhost, AccessKind access,
                             ResourceKind resource, std::string_view name) const {
  if (auto it = permissions_.find(user); it != permissions_.end()) {
    if (auto p = it->second.find(vhost); p != it->second.end() && p->second.Allows(access, resource, name)) return {};
  }
  if (resource == ResourceKind::kExchange && name.empty()) name = "amq.default";
  return Fail(r::kAccessRefused, fmt::format("access to {} '{}' in vhost '{}' refused for user '{}'",
                                             ResourceKindName(resource), name, vhost, user));
}

// ---- topic permissions ----

void Broker::JournalTopicPermission(const TopicPermission& p) const {
  storage::WriteBatch* batch = Journal();
  if (batch == nullptr) return;
  proto::TopicPermissionRecord record;
  record.set_user(p.user);
  record.set_vhost(p.vhost);
  record.set_exchange(p.exchange);
  record.set_write(p.write);
  record.set_read(p.read);
  batch->PutTopicPermission(record);
}

size_t Broker::RemoveTopicPermissions(std::string_view user, std::string_view vhost, std::string_view exchange) {
  const std::vector<TopicPermission> removed = topic_permissions_.Remove(user, vhost, exchange);
  if (storage::WriteBatch* batch = Journal()) {
    for (const TopicPermission& p : removed) batch->DeleteTopicPermission(p.user, p.vhost, p.exchange);
  }
  return removed.size();
}

Result<> Broker::RestoreTopicPermission(TopicPermission permission) {
  if (auto set = topic_permissions_.Set(std::move(permission)); !set) return set;
  ++access_generation_;
  return {};
}

Result<> Broker::SetTopicPermission(TopicPermission permission) {
  if (auto ok = CheckNameLength("exchange", permission.exchange); !ok) return ok;
  if (!users_.contains(permission.user)) {
    return Fail(r::kNotFound, fmt::format("user '{}' not found", permission.user));
  }
  if (!vhosts_.contains(permission.vhost)) {
    return Fail(r::kNotFound, fmt::format("vhost '{}' not found", permission.vhost));
  }
  const TopicPermission journaled = permission;
  if (auto set = RestoreTopicPermission(std::move(permission)); !set) return set;
  JournalTopicPermission(journaled);
  return {};
}

Result<> Broker::ClearTopicPermissions(std::string_view user, std::string_view vhost, std::string_view exchange) {
  if (user.empty() || vhost.empty() || RemoveTopicPermissions(user, vhost, exchange) == 0) {
    return Fail(r::kNotFound, fmt::format("user '{}' has no topic permissions in vhost '{}'", user, vhost));
  }
  ++access_generation_;
  return {};
}

std::vector<TopicPermission> Broker::ListTopicPermissions(std::string_view user, std::string_view vhost) const {
  return topic_permissions_.List(user, vhost);
}

Result<> Broker::CheckTopicAccess(std::string_view user, std::string_view vhost, std::string_view exchange,
                                  AccessKind access, std::string_view routing_key) const {
  WARREN_DCHECK(access == AccessKind::kWrite || access == AccessKind::kRead);
  if (topic_permissions_.empty() || topic_permissions_.Allows(user, vhost, exchange, access, routing_key)) return {};
  auto v = vhosts_.find(vhost);
  if (v == vhosts_.end()) return {};
  auto e = v->second->exchanges().find(exchange);
  if (e == v->second->exchanges().end() || e->second->type() != ExchangeType::kTopic) return {};
  return Fail(r::kAccessRefused, fmt::format("access to topic '{}' in exchange '{}' in vhost '{}' refused for user '{}'",
                                             routing_key, exchange, vhost, user));
}

}  // namespace warren::broker
