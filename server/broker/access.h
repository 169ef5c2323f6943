// Access control as RabbitMQ's internal auth backend: per user and vhost, three regular
// expressions (configure, write, read) that a resource name must match for an operation.
//
// Matching follows RabbitMQ (rabbit_auth_backend_internal:check_resource_access): the regex is
// *searched* in the name, unanchored (re:run), so "q" grants "q", "aq" and "q1"; use "^q$" for
// exactly one name. An empty regex grants nothing (RabbitMQ turns it into "^$"); ".*" grants
// everything. The default exchange "" is checked under the name "amq.default"
// (rabbit_access_control does the same), so "^amq\.default$" grants publishing to it.
//
// Regexes are compiled once, when the permission is set, with RE2: matching takes time linear in
// the name and no recursion, whatever the pattern, so no pattern can stall or crash the broker
// thread. RE2's syntax is PCRE's for the usual patterns (anchors, classes, alternation,
// quantifiers, \d \w \s \b); what it cannot run in linear time — backreferences, lookahead and
// lookbehind, possessive quantifiers, atomic groups — is refused when the pattern is set (406),
// never silently matched differently. Names are matched as bytes (Latin-1), as RabbitMQ's re:run
// without the unicode option: "." is one byte.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "server/broker/error.h"

namespace re2 {
class RE2;
}

namespace warren::broker {

enum class AccessKind { kConfigure, kWrite, kRead };
enum class ResourceKind { kExchange, kQueue };

std::string_view AccessKindName(AccessKind kind);  // "configure", "write", "read"
std::string_view ResourceKindName(ResourceKind kind);  // "exchange", "queue"

// One of the three regexes of a permission, compiled.
class PermissionPattern {
 public:
  // Compiles `pattern`; a 406 PRECONDITION_FAILED error names the pattern when it is invalid.
  static Result<PermissionPattern> Compile(std::string_view pattern);

  const std::string& source() const { return source_; }
  // Whether the pattern occurs in `name` (an unanchored search, as RabbitMQ's re:run).
  bool Matches(std::string_view name) const;

 private:
  enum class Shortcut { kNone, kAll, kNothingButEmpty };
  std::string source_;
  Shortcut shortcut_ = Shortcut::kNone;
  std::shared_ptr<const re2::RE2> regex_;  // immutable, shared by copies
};

// The permission a user has in one vhost, as set by SetPermissions.
struct Permission {
  std::string user;
  std::string vhost;
  std::string configure;
  std::string write;
  std::string read;
};

// A Permission with its three regexes compiled (immutable once built).
class CompiledPermission {
 public:
  // Fails (406) when one of the regexes is invalid, naming it.
  static Result<CompiledPermission> Compile(Permission permission);

  const Permission& permission() const { return permission_; }
  // Whether `kind` access to the resource called `name` is granted. The default exchange is
  // looked at as "amq.default".
  bool Allows(AccessKind access, ResourceKind resource, std::string_view name) const;

 private:
  CompiledPermission(Permission p, PermissionPattern c, PermissionPattern w, PermissionPattern r)
      : permission_(std::move(p)), configure_(std::move(c)), write_(std::move(w)), read_(std::move(r)) {}
  Permission permission_;
  PermissionPattern configure_;
  PermissionPattern write_;
  PermissionPattern read_;
};

}  // namespace warren::broker
