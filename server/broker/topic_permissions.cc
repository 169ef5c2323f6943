#include "server/broker/topic_permissions.h"

#include <re2/re2.h>

#include "common/dcheck.h"

namespace warren::broker {

namespace {

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

}  // namespace

std::string ExpandTopicPattern(std::string_view pattern, std::string_view user, std::string_view vhost) {
  std::string out(pattern);
  ReplaceAll(out, "{username}", RE2::QuoteMeta(re2::StringPiece(user.data(), user.size())));
  ReplaceAll(out, "{vhost}", RE2::QuoteMeta(re2::StringPiece(vhost.data(), vhost.size())));
  return out;
}

Result<> TopicPermissionTable::Set(TopicPermission permission) {
  auto write = PermissionPattern::Compile(ExpandTopicPattern(permission.write, permission.user, permission.vhost));
  if (!write) return std::unexpected(write.error());
  auto read = PermissionPattern::Compile(ExpandTopicPattern(permission.read, permission.user, permission.vhost));
  if (!read) return std::unexpected(read.error());
  Key key{permission.user, permission.vhost, permission.exchange};
  entries_.insert_or_assign(std::move(key), Compiled{std::move(permission), std::move(*write), std::move(*read)});
  return {};
}

std::vector<TopicPermission> TopicPermissionTable::Remove(std::string_view user, std::string_view vhost,
                                                           std::string_view exchange) {
  std::vector<TopicPermission> removed;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const TopicPermission& p = it->second.permission;
    if ((user.empty() || p.user == user) && (vhost.empty() || p.vhost == vhost) &&
        (exchange.empty() || p.exchange == exchange)) {
      removed.push_back(p);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return removed;
}

std::vector<TopicPermission> TopicPermissionTable::List(std::string_view user, std::string_view vhost) const {
  std::vector<TopicPermission> out;
  for (const auto& [key, entry] : entries_) {
    if ((user.empty() || entry.permission.user == user) && (vhost.empty() || entry.permission.vhost == vhost)) {
      out.push_back(entry.permission);
    }
  }
  return out;
}

bool TopicPermissionTable::Allows(std::string_view user, std::string_view vhost, std::string_view exchange,
                                  AccessKind access, std::string_view routing_key) const {
  WARREN_DCHECK(access == AccessKind::kWrite || access == AccessKind::kRead);
  auto it = entries_.find(std::tuple{user, vhost, exchange});
  if (it == entries_.end()) return true;
  return (access == AccessKind::kWrite ? it->second.write : it->second.read).Matches(routing_key);
}

}  // namespace warren::broker
