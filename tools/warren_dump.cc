// warren-dump: inspects a Warren data directory without modifying it, also while the server
// runs (the store is opened as a RocksDB secondary instance; it takes no lock).
//
// Exit status: 0 success, 1 `verify` found problems, 2 the store could not be read (or bad
// arguments: CLI11's own codes for parse errors).
#include <filesystem>
#include <iostream>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "storage/store.h"
#include "tools/dump_inspect.h"
#include "tools/dump_json.h"

namespace {

using nlohmann::json;
using warren::storage::Status;
using warren::storage::Store;
namespace tools = warren::tools;
namespace proto = warren::proto;

struct Args {
  std::string data_dir = "./data";
  bool json = false;
  std::string vhost, queue;
  uint64_t limit = 100;
  bool hex = false;
};

// --data-dir is the server's data directory (the store is DIR/store), but the store directory
// itself is accepted too.
std::string ResolveStoreDir(const std::string& data_dir) {
  if (std::filesystem::exists(std::filesystem::path(data_dir) / "CURRENT")) return data_dir;
  return warren::storage::StoreDirFor(data_dir);
}

int Fail(const Status& s) {
  std::cerr << "warren-dump: " << s.ToString() << "\n";
  return 2;
}

json ArgsJson(const std::string& encoded) {
  bool ok = true;
  return tools::EncodedTableToJson(encoded, &ok);
}

std::string Compact(const json& j) { return tools::Dump(j); }

void Print(const Args& a, const json& j, const std::function<void()>& text) {
  if (a.json) {
    std::cout << tools::Dump(j, 2) << "\n";
  } else {
    text();
  }
}

int Overview(Store* store, const Args& a) {
  tools::Definitions d;
  tools::MessageStats ms;
  if (Status s = tools::LoadDefinitions(store, &d); !s.ok()) return Fail(s);
  if (Status s = tools::CollectMessageStats(store, &ms); !s.ok()) return Fail(s);
  uint64_t ready = 0, unacked = 0;
  for (const auto& [id, q] : ms.queues) ready += q.ready, unacked += q.unacked;
  json rocks = json::object();
  for (int f = 0; f < warren::storage::kNumFamilies; ++f) {
    auto family = static_cast<warren::storage::Family>(f);
    uint64_t sst = 0, mem = 0, keys = 0;
    for (const auto& [property, value] : {std::pair{"rocksdb.total-sst-files-size", &sst},
                                          std::pair{"rocksdb.cur-size-all-mem-tables", &mem},
                                          std::pair{"rocksdb.estimate-num-keys", &keys}}) {
      if (Status s = store->GetIntProperty(family, property, value); !s.ok()) return Fail(s);
    }
    rocks[warren::storage::FamilyName(family)] = {{"sst_bytes", sst}, {"memtable_bytes", mem}, {"estimated_keys", keys}};
  }
  json j = {{"store", store->dir()},
            {"format_version", store->format_version()},
            {"vhosts", d.vhosts.size()},
            {"users", d.users.size()},
            {"permissions", d.permissions.size()},
            {"exchanges", d.exchanges.size()},
            {"queues", d.queues.size()},
            {"bindings", d.bindings.size()},
            {"messages", ms.messages},
            {"ready", ready},
            {"unacked", unacked},
            {"message_bytes", ms.bytes},
            {"shared_bodies", ms.shared_bodies},
            {"shared_body_bytes", ms.shared_body_bytes},
            {"delivery_states", ms.delivery_states},
            {"column_families", rocks}};
  Print(a, j, [&] {
    std::cout << fmt::format("store           {}\nformat version  {}\n", store->dir(), store->format_version());
    std::cout << fmt::format("vhosts {}  users {}  permissions {}  exchanges {}  queues {}  bindings {}\n",
                             d.vhosts.size(), d.users.size(), d.permissions.size(),
                             d.exchanges.size(), d.queues.size(), d.bindings.size());
    std::cout << fmt::format("messages {} (ready {}, unacked {}), {} body bytes; {} shared bodies ({} bytes); {} delivery states\n",
                             ms.messages, ready, unacked, ms.bytes, ms.shared_bodies,
                             ms.shared_body_bytes, ms.delivery_states);
    std::cout << fmt::format("{:<16} {:>14} {:>14} {:>14}\n", "column family", "sst bytes", "memtable bytes", "~keys");
    for (const auto& [name, v] : rocks.items()) {
      std::cout << fmt::format("{:<16} {:>14} {:>14} {:>14}\n", name, v["sst_bytes"].get<uint64_t>(),
                               v["memtable_bytes"].get<uint64_t>(), v["estimated_keys"].get<uint64_t>());
    }
  });
  return 0;
}

int Vhosts(Store* store, const Args& a) {
  std::vector<proto::VhostRecord> vs;
  if (Status s = store->ListVhosts(&vs); !s.ok()) return Fail(s);
  json j = json::array();
  for (const auto& v : vs) {
    j.push_back({{"name", v.name()}, {"tags", v.tags()}, {"description", v.description()}});
  }
  Print(a, j, [&] {
    for (const auto& v : vs) {
      std::string tags;
      for (const auto& t : v.tags()) tags += (tags.empty() ? "" : ",") + t;
      std::cout << fmt::format("{}\t{}\n", v.name(), tags);
    }
  });
  return 0;
}

int Users(Store* store, const Args& a) {
  std::vector<proto::UserRecord> us;
  std::vector<proto::PermissionRecord> ps;
  std::vector<proto::TopicPermissionRecord> tps;
  if (Status s = store->ListUsers(&us); !s.ok()) return Fail(s);
  if (Status s = store->ListPermissions(&ps); !s.ok()) return Fail(s);
  if (Status s = store->ListTopicPermissions(&tps); !s.ok()) return Fail(s);
  json j = json::array();
  for (const auto& u : us) {
    json perms = json::array();
    for (const auto& p : ps) {
      if (p.user() == u.name()) {
        perms.push_back({{"vhost", p.vhost()}, {"configure", p.configure()}, {"write", p.write()}, {"read", p.read()}});
      }
    }
    json topic_perms = json::array();
    for (const auto& p : tps) {
      if (p.user() == u.name()) {
        topic_perms.push_back(
            {{"vhost", p.vhost()}, {"exchange", p.exchange()}, {"write", p.write()}, {"read", p.read()}});
      }
    }
    // Base64, as RabbitMQ's definitions export writes password hashes.
    j.push_back({{"name", u.name()},
                 {"tags", u.tags()},
                 {"hashing_algorithm", u.hashing_algorithm()},
                 {"password_hash", tools::Base64(u.password_hash())},
                 {"permissions", perms},
                 {"topic_permissions", topic_perms}});
  }
  Print(a, j, [&] {
    for (const auto& u : j) {
      std::string tags;
      for (const auto& t : u["tags"]) tags += (tags.empty() ? "" : ",") + t.get<std::string>();
      std::cout << fmt::format("{}\ttags={}\t{}\n", u["name"].get<std::string>(), tags,
                               u["hashing_algorithm"].get<std::string>());
      for (const auto& p : u["permissions"]) {
        std::cout << fmt::format("  vhost {}: configure '{}' write '{}' read '{}'\n",
                                 p["vhost"].get<std::string>(), p["configure"].get<std::string>(),
                                 p["write"].get<std::string>(), p["read"].get<std::string>());
      }
      for (const auto& p : u["topic_permissions"]) {
        std::cout << fmt::format("  vhost {}: topic exchange '{}' write '{}' read '{}'\n",
                                 p["vhost"].get<std::string>(), p["exchange"].get<std::string>(),
                                 p["write"].get<std::string>(), p["read"].get<std::string>());
      }
    }
  });
  return 0;
}

int Exchanges(Store* store, const Args& a) {
  std::vector<proto::ExchangeRecord> es;
  if (Status s = store->ListExchanges(&es); !s.ok()) return Fail(s);
  json j = json::array();
  for (const auto& e : es) {
    j.push_back({{"vhost", e.vhost()}, {"name", e.name()}, {"type", e.type()}, {"durable", e.durable()},
                 {"auto_delete", e.auto_delete()}, {"internal", e.internal()}, {"arguments", ArgsJson(e.arguments())}});
  }
  Print(a, j, [&] {
    std::cout << fmt::format("{:<12} {:<32} {:<8} {:<7} {:<11} {:<8} {}\n", "vhost", "name", "type",
                             "durable", "auto_delete", "internal", "arguments");
    for (const auto& e : j) {
      std::cout << fmt::format("{:<12} {:<32} {:<8} {:<7} {:<11} {:<8} {}\n", e["vhost"].get<std::string>(),
                               e["name"].get<std::string>(), e["type"].get<std::string>(),
                               e["durable"].get<bool>(), e["auto_delete"].get<bool>(),
                               e["internal"].get<bool>(), Compact(e["arguments"]));
    }
  });
  return 0;
}

int Queues(Store* store, const Args& a) {
  std::vector<proto::QueueRecord> qs;
  tools::MessageStats ms;
  if (Status s = store->ListQueues(&qs); !s.ok()) return Fail(s);
  if (Status s = tools::CollectMessageStats(store, &ms); !s.ok()) return Fail(s);
  json j = json::array();
  for (const auto& q : qs) {
    tools::QueueStats st;
    if (auto it = ms.queues.find(q.id()); it != ms.queues.end()) st = it->second;
    j.push_back({{"vhost", q.vhost()}, {"name", q.name()}, {"id", q.id()}, {"durable", q.durable()},
                 {"auto_delete", q.auto_delete()}, {"exclusive", q.exclusive()},
                 {"arguments", ArgsJson(q.arguments())}, {"messages", st.messages}, {"ready", st.ready},
                 {"unacked", st.unacked}, {"bytes", st.bytes}});
  }
  Print(a, j, [&] {
    std::cout << fmt::format("{:<12} {:<32} {:>8} {:>10} {:>10} {:>12} {}\n", "vhost", "name", "id",
                             "ready", "unacked", "bytes", "arguments");
    for (const auto& q : j) {
      std::cout << fmt::format("{:<12} {:<32} {:>8} {:>10} {:>10} {:>12} {}\n", q["vhost"].get<std::string>(),
                               q["name"].get<std::string>(), q["id"].get<uint64_t>(),
                               q["ready"].get<uint64_t>(), q["unacked"].get<uint64_t>(),
                               q["bytes"].get<uint64_t>(), Compact(q["arguments"]));
    }
  });
  return 0;
}

int Bindings(Store* store, const Args& a) {
  std::vector<proto::BindingRecord> bs;
  if (Status s = store->ListBindings(&bs); !s.ok()) return Fail(s);
  json j = json::array();
  for (const auto& b : bs) {
    j.push_back({{"vhost", b.vhost()}, {"source", b.source()}, {"destination", b.destination()},
                 {"destination_type", b.destination_is_exchange() ? "exchange" : "queue"},
                 {"routing_key", b.routing_key()}, {"arguments", ArgsJson(b.arguments())}});
  }
  Print(a, j, [&] {
    for (const auto& b : j) {
      std::cout << fmt::format("{}\t{} -> {} {}\t'{}'\t{}\n", b["vhost"].get<std::string>(),
                               b["source"].get<std::string>(), b["destination_type"].get<std::string>(),
                               b["destination"].get<std::string>(), b["routing_key"].get<std::string>(),
                               Compact(b["arguments"]));
    }
  });
  return 0;
}

int Messages(Store* store, const Args& a) {
  std::vector<proto::QueueRecord> qs;
  if (Status s = store->ListQueues(&qs); !s.ok()) return Fail(s);
  auto q = std::find_if(qs.begin(), qs.end(), [&](const proto::QueueRecord& r) {
    return r.vhost() == a.vhost && r.name() == a.queue;
  });
  if (q == qs.end()) {
    std::cerr << "warren-dump: no queue '" << a.queue << "' in vhost '" << a.vhost << "'\n";
    return 2;
  }
  json j = json::array();
  uint64_t shown = 0;
  Status s = store->ScanQueue(q->id(), 0, [&](const warren::storage::StoredMessage& m) {
    bool ok = true;
    json props = tools::PropertiesToJson(m.properties, &ok);
    json entry = {{"seq", m.seq}, {"body_id", m.body_id}, {"exchange", m.exchange},
                  {"routing_key", m.routing_key}, {"redelivered", m.redelivered},
                  {"delivery_count", m.delivery_count}, {"properties", props},
                  {"body_size", m.body.size()}, {"body", tools::BodyToJson(m.body, a.hex)}};
    if (m.expires != 0) entry["expires"] = m.expires;  // unix milliseconds
    j.push_back(std::move(entry));
    return a.limit == 0 || ++shown < a.limit;
  });
  if (!s.ok()) return Fail(s);
  Print(a, j, [&] {
    for (const auto& m : j) {
      std::cout << fmt::format("seq {}  exchange '{}'  routing key '{}'  redelivered {}  delivery count {}{}\n",
                               m["seq"].get<uint64_t>(), m["exchange"].get<std::string>(),
                               m["routing_key"].get<std::string>(), m["redelivered"].get<bool>(),
                               m["delivery_count"].get<uint32_t>(),
                               m["body_id"].get<uint64_t>() ? fmt::format("  shared body {}", m["body_id"].get<uint64_t>()) : "");
      if (m.contains("expires")) std::cout << "  expires at unix ms " << m["expires"].get<int64_t>() << "\n";
      std::cout << "  properties " << Compact(m["properties"]) << "\n";
      const json& body = m["body"];
      std::cout << fmt::format("  body ({} bytes, {}): ", m["body_size"].get<uint64_t>(),
                               body.contains("text") ? "text" : "hex");
      std::cout << (body.contains("text") ? body["text"].get<std::string>() : body["hex"].get<std::string>()) << "\n";
    }
  });
  return 0;
}

int Quarantined(Store* store, const Args& a) {
  std::vector<warren::storage::QuarantinedRecord> records;
  if (Status s = store->ListQuarantined(&records); !s.ok()) return Fail(s);
  json j = json::array();
  for (const auto& r : records) {
    j.push_back({{"family", warren::storage::FamilyName(r.family)},
                 {"key", warren::storage::PrintableKey(r.key)},
                 {"reason", r.reason},
                 {"value_bytes", r.value.size()},
                 {"value_hex", tools::Hex(r.value)}});
  }
  Print(a, j, [&] {
    for (const auto& r : records) {
      std::cout << fmt::format("{}\t{}\t{} bytes\t{}\n", warren::storage::FamilyName(r.family),
                               warren::storage::PrintableKey(r.key), r.value.size(), r.reason);
    }
    std::cout << fmt::format("quarantine: {} record(s)\n", records.size());
  });
  return 0;
}

int VerifyCommand(Store* store, const Args& a) {
  tools::VerifyReport r;
  if (Status s = tools::Verify(store, &r); !s.ok()) return Fail(s);
  json j = {{"ok", r.problem_count == 0},
            {"problem_count", r.problem_count},
            {"problems", r.problems},
            {"warnings", r.warnings},
            {"checked", {{"definitions", r.definitions}, {"messages", r.messages},
                         {"shared_bodies", r.bodies}, {"delivery_states", r.delivery_states}}}};
  Print(a, j, [&] {
    for (const auto& p : r.problems) std::cout << "PROBLEM: " << p << "\n";
    if (r.problem_count > r.problems.size()) {
      std::cout << "PROBLEM: ... and " << r.problem_count - r.problems.size() << " more\n";
    }
    for (const auto& w : r.warnings) std::cout << "warning: " << w << "\n";
    std::cout << fmt::format("verify: checked {} definitions, {} messages, {} shared bodies, {} delivery states: {}\n",
                             r.definitions, r.messages, r.bodies, r.delivery_states,
                             r.problem_count == 0 ? "OK" : fmt::format("{} problem(s)", r.problem_count));
  });
  return r.problem_count == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"warren-dump: inspect a Warren data directory (read-only; safe while the server runs)"};
  app.require_subcommand(1);
  app.footer(
      "The store is opened as a RocksDB secondary instance: no lock is taken and nothing is\n"
      "written, so it is safe while warren-server runs; it shows the server's writes up to the\n"
      "moment warren-dump starts.\n"
      "Exit status: 0 success, 1 verify found problems, 2 the store could not be read.");
  app.fallthrough();  // global options may follow the command too
  app.add_option("--data-dir", a.data_dir,
                 "the server's data directory (the store is DIR/store; the store directory itself "
                 "is accepted too)")
      ->capture_default_str();
  app.add_flag("--json", a.json, "print JSON instead of text");

  std::vector<std::pair<CLI::App*, int (*)(Store*, const Args&)>> commands;
  auto add = [&](const char* name, const char* help, int (*fn)(Store*, const Args&)) {
    CLI::App* c = app.add_subcommand(name, help);
    commands.push_back({c, fn});
    return c;
  };
  add("overview", "format version, record counts, message totals and RocksDB sizes", Overview);
  add("vhosts", "virtual hosts and their tags", Vhosts);
  add("users", "users, tags, password hashing algorithm, permissions and topic permissions (hashes only in --json, base64)",
      Users);
  add("exchanges", "durable exchanges: type, flags, arguments", Exchanges);
  add("queues", "durable queues: id, arguments, ready and delivered-unacked message counts, body bytes", Queues);
  add("bindings", "bindings: source -> destination, routing key, arguments", Bindings);
  CLI::App* messages = add("messages",
                           "a queue's messages in order: decoded properties and headers, "
                           "redelivered flag, delivery count, body as text (or hex)",
                           Messages);
  messages->add_option("vhost", a.vhost, "virtual host")->required();
  messages->add_option("queue", a.queue, "queue name")->required();
  messages->add_option("--limit", a.limit, "show at most N messages (0 = all)")->capture_default_str();
  messages->add_flag("--hex", a.hex, "always show bodies in hex");
  add("quarantine",
      "records recovery could not use and moved aside (family, key, size, reason); --json adds "
      "their bytes in hex",
      Quarantined);
  add("verify",
      "check the store: every record parses, every message has its body and queue, no orphan "
      "bodies or delivery states, counts agree; exits 1 and names each problem",
      VerifyCommand);

  CLI11_PARSE(app, argc, argv);

  warren::storage::StoreOptions options;
  options.dir = ResolveStoreDir(a.data_dir);
  options.read_only = true;
  std::unique_ptr<Store> store;
  if (Status s = Store::Open(options, &store); !s.ok()) return Fail(s);
  for (const auto& [cmd, fn] : commands) {
    if (cmd->parsed()) return fn(store.get(), a);
  }
  return 2;
}
