#include "server/broker/access.h"

#include <fmt/format.h>
#include <re2/re2.h>

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
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);
  options.set_log_errors(false);
  auto regex = std::make_shared<const RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!regex->ok()) {
    const RE2::ErrorCode code = regex->error_code();
    const bool unsupported = code == RE2::ErrorBadPerlOp || code == RE2::ErrorBadEscape || code == RE2::ErrorRepeatOp;
    return Fail(r::kPreconditionFailed,
                fmt::format("invalid regular expression '{}': {}{}", pattern, regex->error(),
                            unsupported ? " (RE2 syntax: backreferences, lookaround, atomic groups and possessive "
                                          "quantifiers are not supported)"
                                        : ""));
  }
  p.regex_ = std::move(regex);
  return p;
}

bool PermissionPattern::Matches(std::string_view name) const {
  switch (shortcut_) {
    case Shortcut::kAll: return true;
    case Shortcut::kNothingButEmpty: return name.empty();
    case Shortcut::kNone: break;
  }
  return RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *regex_);
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
