#include "server/broker/access.h"

#include <fmt/format.h>

#include "server/amqp/constants.h"

namespace warren::broker {

namespace r = amqp::reply;

std::string_view AccessKindName(AccessKind kind) {
  switch (kind) {
    case AccessKind::kConfigure: return "configure";
    case AccessKind::kWrite: return "write";
    case AccessKind::kRead: return "read";
  }
  return "?";
}

std::string_view ResourceKindName(ResourceKind kind) {
  return kind == ResourceKind::kExchange ? "exchange" : "queue";
}

Result<PermissionPattern> PermissionPattern::Compile(std::string_view pattern) {
  PermissionPattern p;
  p.source_.assign(pattern);
  // RabbitMQ: an empty permission means "^$" (nothing but the empty name, which no resource has
  // once the default exchange is renamed amq.default).
  if (pattern.empty() || pattern == "^$") {
    p.shortcut_ = Shortcut::kNothingButEmpty;
    return p;
  }
  if (pattern == ".*" || pattern == "^.*" || pattern == ".*$" || pattern == "^.*$") {
    p.shortcut_ = Shortcut::kAll;  // the common case costs no regex search on the hot path
    return p;
  }
  try {
    p.regex_ = std::regex(p.source_, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return Fail(r::kPreconditionFailed, fmt::format("invalid regular expression '{}': {}", pattern, e.what()));
  }
  return p;
}

bool PermissionPattern::Matches(std::string_view name) const {
  switch (shortcut_) {
    case Shortcut::kAll: return true;
    case Shortcut::kNothingButEmpty: return name.empty();
    case Shortcut::kNone: break;
  }
  return std::regex_search(name.begin(), name.end(), regex_);
}

Result<CompiledPermission> CompiledPermission::Compile(Permission permission) {
  auto c = PermissionPattern::Compile(permission.configure);
  if (!c) return std::unexpected(c.error());
  auto w = PermissionPattern::Compile(permission.write);
  if (!w) return std::unexpected(w.error());
  auto rd = PermissionPattern::Compile(permission.read);
  if (!rd) return std::unexpected(rd.error());
  return CompiledPermission(std::move(permission), std::move(*c), std::move(*w), std::move(*rd));
}

bool CompiledPermission::Allows(AccessKind access, ResourceKind resource, std::string_view name) const {
  if (resource == ResourceKind::kExchange && name.empty()) name = "amq.default";
  switch (access) {
    case AccessKind::kConfigure: return configure_.Matches(name);
    case AccessKind::kWrite: return write_.Matches(name);
    case AccessKind::kRead: return read_.Matches(name);
  }
  return false;
}

}  // namespace warren::broker
