#include <fmt/format.h>

#include "server/http/internal/api.h"
#include "server/http/internal/codec.h"

// Vhosts (reading), exchanges, queues and bindings.

namespace warren::http::internal {

Reply Api::ListPerVhost(Ctx& ctx, const std::function<void(const broker::Vhost&, json&)>& append) {
  json out = json::array();
  for (broker::Vhost* v : VhostsFor(ctx, ctx.args.empty() ? nullptr : &ctx.args[0])) append(*v, out);
  return JsonReply(out);
}

void Api::AddObjectRoutes() {
  On("GET", "vhosts", [this](Ctx& ctx) {
    json out = json::array();
    for (broker::Vhost* v : VhostsFor(ctx, nullptr)) out.push_back(VhostJson(*v));
    return JsonReply(out);
  });
  On("GET", "vhosts/*", [this](Ctx& ctx) { return JsonReply(VhostJson(VhostFor(ctx, ctx.args[0]))); });

  // Exchanges
  auto list_exchanges = [this](Ctx& ctx) {
    return ListPerVhost(ctx, [this](const broker::Vhost& v, json& out) {
      for (const auto& [name, e] : v.exchanges()) out.push_back(ExchangeJson(v, *e));
    });
  };
  On("GET", "exchanges", list_exchanges);
  On("GET", "exchanges/*", list_exchanges);
  On("GET", "exchanges/*/*", [this](Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    auto it = v.exchanges().find(ExchangeName(ctx.args[1]));
    if (it == v.exchanges().end()) NotFound();
    return JsonReply(ExchangeJson(v, *it->second));
  });
  On("PUT", "exchanges/*/*", [this](Ctx& ctx) { return PutExchange(ctx); });
  On("DELETE", "exchanges/*/*", [this](Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string name = ExchangeName(ctx.args[1]);
    if (!v.exchanges().contains(name)) NotFound();
    Permit(ctx, v, {.op = broker::Operation::kDeleteExchange, .name = name});
    if (auto ok = v.DeleteExchange(name, QueryFlag(ctx.req, "if-unused")); !ok) BrokerError(ok.error());
    return NoContent();
  });
  On("GET", "exchanges/*/*/bindings/source", [this](Ctx& ctx) { return ExchangeBindings(ctx, true); });
  On("GET", "exchanges/*/*/bindings/destination", [this](Ctx& ctx) { return ExchangeBindings(ctx, false); });

  // Queues
  auto list_queues = [this](Ctx& ctx) {
    return ListPerVhost(ctx, [this](const broker::Vhost& v, json& out) {
      for (const auto& [name, q] : v.queues()) out.push_back(QueueJson(v, *q));
    });
  };
  On("GET", "queues", list_queues);
  On("GET", "queues/*", list_queues);
  On("GET", "queues/*/*", [this](Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    return JsonReply(QueueJson(v, ExistingQueue(v, ctx.args[1])));
  });
  On("PUT", "queues/*/*", [this](Ctx& ctx) { return PutQueue(ctx); });
  On("DELETE", "queues/*/*", [this](Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string& name = ctx.args[1];
    ExistingQueue(v, name);
    Permit(ctx, v, {.op = broker::Operation::kDeleteQueue, .name = name});
    auto deleted = v.DeleteQueue(name, QueryFlag(ctx.req, "if-unused"), QueryFlag(ctx.req, "if-empty"), 0);
    if (!deleted) BrokerError(deleted.error());
    return NoContent();
  });
  On("DELETE", "queues/*/*/contents", [this](Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    const std::string& name = ctx.args[1];
    ExistingQueue(v, name);
    Permit(ctx, v, {.op = broker::Operation::kPurge, .name = name});
    if (auto purged = v.PurgeQueue(name, 0); !purged) BrokerError(purged.error());
    return NoContent();
  });
  On("GET", "queues/*/*/bindings", [this](Ctx& ctx) {
    broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
    ExistingQueue(v, ctx.args[1]);
    json all = json::array();
    AppendBindings(v, all);
    json out = json::array();
    for (auto& b : all) {
      if (b["destination_type"] == "queue" && b["destination"] == ctx.args[1]) out.push_back(std::move(b));
    }
    return JsonReply(out);
  });

  // Bindings
  auto list_bindings = [this](Ctx& ctx) {
    return ListPerVhost(ctx, [this](const broker::Vhost& v, json& out) { AppendBindings(v, out); });
  };
  On("GET", "bindings", list_bindings);
  On("GET", "bindings/*", list_bindings);
  for (const char* kind : {"q", "e"}) {
    const bool to_queue = kind[0] == 'q';
    On("GET", fmt::format("bindings/*/e/*/{}/*", kind),
       [this, to_queue](Ctx& ctx) { return JsonReply(BindingsBetween(ctx, to_queue)); });
    On("POST", fmt::format("bindings/*/e/*/{}/*", kind),
       [this, to_queue](Ctx& ctx) { return PostBinding(ctx, to_queue); });
    On("GET", fmt::format("bindings/*/e/*/{}/*/*", kind), [this, to_queue](Ctx& ctx) {
      for (auto& b : BindingsBetween(ctx, to_queue)) {
        if (b["properties_key"] == ctx.args[3]) return JsonReply(b);
      }
      NotFound();
    });
    On("DELETE", fmt::format("bindings/*/e/*/{}/*/*", kind),
       [this, to_queue](Ctx& ctx) { return DeleteBinding(ctx, to_queue); });
  }
}

Reply Api::PutExchange(Ctx& ctx) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string name = ExchangeName(ctx.args[1]);
  Permit(ctx, v, {.op = broker::Operation::kDeclareExchange, .name = name});
  const json body = ParseBody(ctx.req);
  const std::string type = StringField(body, "type", std::nullopt);
  broker::ExchangeOptions options;
  options.durable = BoolField(body, "durable", false);
  options.auto_delete = BoolField(body, "auto_delete", false);
  options.internal = BoolField(body, "internal", false);
  if (auto it = body.find("arguments"); it != body.end()) options.arguments = JsonToTable(*it, "arguments");
  Permit(ctx, v, {.op = broker::Operation::kDeclareExchange, .name = name, .arguments = &options.arguments});
  const bool existed = v.exchanges().contains(name);
  if (auto ok = v.DeclareExchange(name, type, false, std::move(options)); !ok) BrokerError(ok.error());
  return existed ? NoContent() : Created();
}

Reply Api::PutQueue(Ctx& ctx) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string& name = ctx.args[1];
  Permit(ctx, v, {.op = broker::Operation::kDeclareQueue, .name = name});
  const json body = ParseBody(ctx.req);
  broker::QueueOptions options;
  options.durable = BoolField(body, "durable", false);
  options.auto_delete = BoolField(body, "auto_delete", false);
  if (auto it = body.find("arguments"); it != body.end()) options.arguments = JsonToTable(*it, "arguments");
  Permit(ctx, v, {.op = broker::Operation::kDeclareQueue, .name = name, .arguments = &options.arguments});
  const bool existed = v.queues().contains(name);
  if (auto ok = v.DeclareQueue(name, false, std::move(options), 0); !ok) BrokerError(ok.error());
  return existed ? NoContent() : Created();
}

Reply Api::ExchangeBindings(Ctx& ctx, bool as_source) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string name = ExchangeName(ctx.args[1]);
  if (!v.exchanges().contains(name)) NotFound();
  json all = json::array();
  AppendBindings(v, all);
  json out = json::array();
  for (auto& b : all) {
    if (as_source ? b["source"] == name : (b["destination_type"] == "exchange" && b["destination"] == name)) {
      out.push_back(std::move(b));
    }
  }
  return JsonReply(out);
}

// GET bindings/{vhost}/e/{source}/{q|e}/{destination}
json Api::BindingsBetween(Ctx& ctx, bool to_queue) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string source = ExchangeName(ctx.args[1]);
  const std::string& dest = ctx.args[2];
  if (!v.exchanges().contains(source)) NotFound();
  if (to_queue ? !v.queues().contains(dest) : !v.exchanges().contains(dest)) NotFound();
  json all = json::array();
  AppendBindings(v, all);
  json out = json::array();
  for (auto& b : all) {
    if (b["source"] == source && b["destination"] == dest &&
        b["destination_type"] == (to_queue ? "queue" : "exchange")) {
      out.push_back(std::move(b));
    }
  }
  return out;
}

Reply Api::PostBinding(Ctx& ctx, bool to_queue) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string source = ExchangeName(ctx.args[1]);
  const std::string& dest = ctx.args[2];
  if (!v.exchanges().contains(source)) NotFound();
  if (to_queue ? !v.queues().contains(dest) : !v.exchanges().contains(dest)) NotFound();
  const broker::Operation op = to_queue ? broker::Operation::kBindQueue : broker::Operation::kBindExchange;
  Permit(ctx, v, {.op = op, .name = dest, .source = source, .routing_key = std::nullopt});
  const json body = ParseBody(ctx.req);
  const std::string key = StringField(body, "routing_key", "");
  amqp::FieldTable args;
  if (auto it = body.find("arguments"); it != body.end()) args = JsonToTable(*it, "arguments");
  Permit(ctx, v, {.op = op, .name = dest, .source = source, .routing_key = key});
  auto ok = to_queue ? v.BindQueue(dest, source, key, args, 0) : v.BindExchange(dest, source, key, args);
  if (!ok) BrokerError(ok.error());
  Reply r{201, {}, false, {}, {}};
  r.location = fmt::format("/api/bindings/{}/e/{}/{}/{}/{}", EncodeSegment(v.name()),
                           EncodeSegment(source.empty() ? "amq.default" : source), to_queue ? "q" : "e",
                           EncodeSegment(dest), EncodeSegment(PropertiesKey(key, args)));
  return r;
}

Reply Api::DeleteBinding(Ctx& ctx, bool to_queue) {
  broker::Vhost& v = VhostFor(ctx, ctx.args[0]);
  const std::string source = ExchangeName(ctx.args[1]);
  const std::string& dest = ctx.args[2];
  if (!v.exchanges().contains(source)) NotFound();
  if (to_queue ? !v.queues().contains(dest) : !v.exchanges().contains(dest)) NotFound();
  const broker::Exchange& ex = *v.exchanges().find(source)->second;
  const broker::Binding* match = nullptr;
  for (const broker::Binding& b : ex.bindings()) {
    const bool same_dest = to_queue ? (b.destination.queue != nullptr && b.destination.queue->name() == dest)
                                    : (b.destination.exchange != nullptr && b.destination.exchange->name() == dest);
    if (same_dest && PropertiesKey(b.key, b.arguments) == ctx.args[3]) {
      match = &b;
      break;
    }
  }
  if (match == nullptr) NotFound();
  const std::string key = match->key;
  const amqp::FieldTable args = match->arguments;
  Permit(ctx, v, {.op = to_queue ? broker::Operation::kUnbindQueue : broker::Operation::kUnbindExchange,
                  .name = dest, .source = source, .routing_key = key});
  auto ok = to_queue ? v.UnbindQueue(dest, source, key, args, 0) : v.UnbindExchange(dest, source, key, args);
  if (!ok) BrokerError(ok.error());
  return NoContent();
}

}  // namespace warren::http::internal
