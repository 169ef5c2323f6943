#include <fmt/format.h>

#include "server/broker/policy.h"
#include "server/http/internal/api.h"

// RabbitMQ's /api/policies and /api/operator-policies. Lists show the vhosts the user may see;
// one policy, and every change, is authorized by broker::Authorize (policymaker or administrator;
// operator policies: administrator).

namespace warren::http::internal {

namespace {

// RabbitMQ 3.10 HTML-escapes the reasons of /api/policies (not those of /api/operator-policies).
std::string HtmlEscaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace

void Api::AddPolicyRoutes() {
  for (const broker::PolicyKind kind : {broker::PolicyKind::kPolicy, broker::PolicyKind::kOperatorPolicy}) {
    const bool is_policy = kind == broker::PolicyKind::kPolicy;
    const std::string base = is_policy ? "policies" : "operator-policies";
    const broker::Operation read = is_policy ? broker::Operation::kReadPolicy : broker::Operation::kReadOperatorPolicy;
    const broker::Operation change =
        is_policy ? broker::Operation::kChangePolicy : broker::Operation::kChangeOperatorPolicy;
    auto list = [this, kind](Ctx& ctx) {
      return ListPerVhost(ctx, [kind](const broker::Vhost& v, json& out) {
        for (const broker::Policy& p : v.policies(kind).List()) out.push_back(broker::PolicyToJson(p));
      });
    };
    On("GET", base, list);
    On("GET", base + "/*", list);
    On("GET", base + "/*/*", [this, kind, read](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      Permit(ctx, v, {.op = read, .name = ctx.args[1]});
      const broker::Policy* p = v.policies(kind).Find(ctx.args[1]);
      if (p == nullptr) NotFound();
      return JsonReply(broker::PolicyToJson(*p));
    });
    On("PUT", base + "/*/*", [this, kind, change, is_policy](Ctx& ctx) {
      broker::Vhost* v = broker_.FindVhost(ctx.args[0]);
      if (v == nullptr) throw HttpError{404, "not_found", "vhost_not_found"};
      Permit(ctx, *v, {.op = change, .name = ctx.args[1]});
      const json body = ParseBody(ctx.req);
      auto refuse = [is_policy](const broker::Error& e) {
        if (e.code == amqp::reply::kSyntaxError) BadRequest(e.text);
        const std::string reason = fmt::format("Validation failed\n\n{}\n", e.text);
        BadRequest(is_policy ? HtmlEscaped(reason) : reason);
      };
      auto policy = broker::PolicyFromJson(v->name(), ctx.args[1], body);
      if (!policy) refuse(policy.error());
      const bool existed = v->policies(kind).Find(ctx.args[1]) != nullptr;
      if (auto ok = v->SetPolicy(kind, std::move(*policy)); !ok) refuse(ok.error());
      return existed ? NoContent() : Created();
    });
    On("DELETE", base + "/*/*", [this, kind, change](Ctx& ctx) {
      broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
      Permit(ctx, v, {.op = change, .name = ctx.args[1]});
      if (v.policies(kind).Find(ctx.args[1]) == nullptr) NotFound();
      if (auto ok = v.ClearPolicy(kind, ctx.args[1]); !ok) BrokerError(ok.error());
      return NoContent();
    });
  }
}

}  // namespace warren::http::internal
