// warren-dump end to end: stores built through the library, the real binary run against them
// (while this process holds the store open, as the server would), then corrupted.
#include <stdio.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/amqp/byte_buffer.h"
#include "server/amqp/field_table.h"
#include "server/amqp/properties.h"
#include "storage/store.h"
#include "storage/test_util.h"

namespace warren::tools {
namespace {

using nlohmann::json;
using storage::MessageData;
using storage::Store;
using storage::WriteBatch;
using storage::testing::OpenOrDie;
using storage::testing::TempDir;

struct Result {
  int exit_code = -1;
  std::string out;
};

// Runs warren-dump with `args` (shell words); stderr is merged into out when merge_stderr.
Result RunDump(const std::string& args, bool merge_stderr = false) {
  std::string cmd = std::string(WARREN_DUMP_BIN) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // WARREN_DUMP_TEST_SHOW=1 prints every run, to see what an operator would.
  if (getenv("WARREN_DUMP_TEST_SHOW") != nullptr) {
    printf("$ warren-dump %s  (exit %d)\n%s\n", args.c_str(), r.exit_code, r.out.c_str());
  }
  return r;
}

json RunJson(const std::string& args) {
  Result r = RunDump(args);
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

std::string Table(const amqp::FieldTable& t) {
  std::string out;
  amqp::ByteWriter w(out);
  amqp::EncodeFieldTable(t, w);
  return out;
}

std::string Properties() {
  amqp::BasicProperties p;
  p.content_type = "text/plain";
  p.delivery_mode = 2;
  amqp::FieldTable headers;
  headers.entries.push_back({"trace", amqp::FieldValue(std::string("abc"))});
  headers.entries.push_back({"n", amqp::FieldValue(int32_t{7})});
  p.headers = headers;
  std::string out;
  amqp::ByteWriter w(out);
  amqp::EncodeProperties(p, w);
  return out;
}

class WarrenDumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(storage::StoreDirFor(dir_.path()));
    ASSERT_NE(store_, nullptr);
    WriteBatch b;
    proto::VhostRecord v;
    v.set_name("/");
    b.PutVhost(v);
    proto::UserRecord u;
    u.set_name("guest");
    u.set_password_hash("\x01\x02\x03");
    u.set_hashing_algorithm("rabbit_password_hashing_sha256");
    u.add_tags("administrator");
    b.PutUser(u);
    proto::PermissionRecord perm;
    perm.set_user("guest");
    perm.set_vhost("/");
    perm.set_configure(".*");
    perm.set_write(".*");
    perm.set_read(".*");
    b.PutPermission(perm);
    proto::TopicPermissionRecord topic;
    topic.set_user("guest");
    topic.set_vhost("/");
    topic.set_exchange("events");
    topic.set_write("^orders\\.");
    topic.set_read(".*");
    b.PutTopicPermission(topic);
    proto::ExchangeRecord e;
    e.set_vhost("/");
    e.set_name("events");
    e.set_type("topic");
    e.set_durable(true);
    amqp::FieldTable alt;
    alt.entries.push_back({"alternate-exchange", amqp::FieldValue(std::string("ae"))});
    e.set_arguments(Table(alt));
    b.PutExchange(e);
    for (uint64_t id : {1, 2}) {
      proto::QueueRecord q;
      q.set_vhost("/");
      q.set_name(id == 1 ? "orders" : "audit");
      q.set_id(id);
      q.set_durable(true);
      if (id == 1) {
        amqp::FieldTable args;
        args.entries.push_back({"x-max-length", amqp::FieldValue(int64_t{1000})});
        q.set_arguments(Table(args));
      }
      b.PutQueue(q);
      proto::BindingRecord bind;
      bind.set_vhost("/");
      bind.set_source("events");
      bind.set_destination(q.name());
      bind.set_routing_key("order.*");
      b.PutBinding(bind);
    }
    props_ = Properties();
    b.PutMessage(1, 1, MessageData{"events", "order.new", props_, "first order"});
    b.PutMessage(1, 2, MessageData{"events", "order.new", props_, std::string("\x00\xff\x10", 3)});
    b.PutBody(50, MessageData{"events", "order.paid", props_, "shared body"});
    b.PutMessageRef(1, 3, 50);
    b.PutMessageRef(2, 1, 50);
    b.PutDeliveryState(1, 1, 1, false);  // delivered, not acked
    b.PutDeliveryState(1, 2, 0, true);   // requeued: ready again
    ASSERT_TRUE(store_->Write(std::move(b)).ok());
  }

  std::string DataDir() const { return "--data-dir " + dir_.path(); }

  TempDir dir_;
  std::unique_ptr<Store> store_;  // held open, as by a running server
  std::string props_;
};

TEST_F(WarrenDumpTest, QueuesWhileTheStoreIsOpen) {
  json j = RunJson(DataDir() + " --json queues");
  ASSERT_EQ(j.size(), 2u);
  // Sorted by name: audit, orders.
  EXPECT_EQ(j[0]["name"], "audit");
  EXPECT_EQ(j[0]["messages"], 1);
  EXPECT_EQ(j[0]["bytes"], 11);
  EXPECT_EQ(j[1]["name"], "orders");
  EXPECT_EQ(j[1]["id"], 1);
  EXPECT_EQ(j[1]["ready"], 2);
  EXPECT_EQ(j[1]["unacked"], 1);
  EXPECT_EQ(j[1]["bytes"], 11 + 3 + 11);
  EXPECT_EQ(j[1]["arguments"]["x-max-length"], 1000);

  Result text = RunDump(DataDir() + " queues");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("orders"), std::string::npos) << text.out;

  // A write made after the first dump is seen by the next one.
  WriteBatch more;
  more.PutMessage(2, 2, MessageData{"", "audit", "", "late"});
  ASSERT_TRUE(store_->Write(std::move(more)).ok());
  j = RunJson("queues --json " + DataDir());  // global options after the command work too
  EXPECT_EQ(j[0]["messages"], 2);
}

TEST_F(WarrenDumpTest, DefinitionCommands) {
  json o = RunJson(DataDir() + " --json overview");
  EXPECT_EQ(o["format_version"], storage::kFormatVersion);
  EXPECT_EQ(o["queues"], 2);
  EXPECT_EQ(o["messages"], 4);
  EXPECT_EQ(o["unacked"], 1);
  EXPECT_EQ(o["shared_bodies"], 1);
  EXPECT_TRUE(o["column_families"].contains("message_index"));

  json v = RunJson(DataDir() + " --json vhosts");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0]["name"], "/");

  json u = RunJson(DataDir() + " --json users");
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0]["password_hash"], "AQID");
  EXPECT_EQ(u[0]["hashing_algorithm"], "rabbit_password_hashing_sha256");
  EXPECT_EQ(u[0]["permissions"][0]["configure"], ".*");
  EXPECT_EQ(u[0]["topic_permissions"][0]["exchange"], "events");
  EXPECT_EQ(u[0]["topic_permissions"][0]["write"], "^orders\\.");

  json e = RunJson(DataDir() + " --json exchanges");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0]["type"], "topic");
  EXPECT_EQ(e[0]["arguments"]["alternate-exchange"], "ae");

  json b = RunJson(DataDir() + " --json bindings");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0]["routing_key"], "order.*");
  EXPECT_EQ(b[0]["destination_type"], "queue");

  for (const char* cmd : {"overview", "vhosts", "users", "exchanges", "bindings"}) {
    Result r = RunDump(DataDir() + " " + cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_FALSE(r.out.empty()) << cmd;
  }
}

TEST_F(WarrenDumpTest, Messages) {
  json m = RunJson(DataDir() + " --json messages / orders");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0]["seq"], 1);
  EXPECT_EQ(m[0]["body"]["text"], "first order");
  EXPECT_EQ(m[0]["delivery_count"], 1);
  EXPECT_EQ(m[0]["properties"]["content_type"], "text/plain");
  EXPECT_EQ(m[0]["properties"]["delivery_mode"], 2);
  EXPECT_EQ(m[0]["properties"]["headers"]["trace"], "abc");
  EXPECT_EQ(m[0]["properties"]["headers"]["n"], 7);
  EXPECT_EQ(m[1]["body"]["hex"], "00ff10");  // not text
  EXPECT_EQ(m[1]["redelivered"], true);
  EXPECT_EQ(m[2]["body_id"], 50);
  EXPECT_EQ(m[2]["routing_key"], "order.paid");

  json limited = RunJson(DataDir() + " --json messages / orders --limit 1 --hex");
  ASSERT_EQ(limited.size(), 1u);
  EXPECT_EQ(limited[0]["body"]["hex"], "6669727374206f72646572");

  Result text = RunDump(DataDir() + " messages / orders");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("first order"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\"trace\":\"abc\""), std::string::npos) << text.out;

  Result missing = RunDump(DataDir() + " messages / nosuch", true);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.out.find("no queue 'nosuch'"), std::string::npos) << missing.out;
}

TEST_F(WarrenDumpTest, VerifyPassesOnAConsistentStore) {
  Result r = RunDump(DataDir() + " verify");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;
  json j = RunJson(DataDir() + " --json verify");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["checked"]["messages"], 4);
}

TEST_F(WarrenDumpTest, QuarantineListsWhatRecoveryMovedAside) {
  Result r = RunDump(DataDir() + " quarantine");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("quarantine: 0 record(s)"), std::string::npos) << r.out;
  ASSERT_TRUE(store_->Quarantine(storage::Family::kDefinitions, storage::QueueKey("/", "audit"),
                                 "queue record 'audit' in vhost '/' is invalid")
                  .ok());
  r = RunDump(DataDir() + " quarantine");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("definitions"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("queue record 'audit' in vhost '/' is invalid"), std::string::npos) << r.out;
  json j = RunJson(DataDir() + " --json quarantine");
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["family"], "definitions");
  EXPECT_GT(j[0]["value_bytes"].get<int>(), 0);
  EXPECT_EQ(RunJson(DataDir() + " --json queues").size(), 1u) << "moved out of the definitions";
}

TEST_F(WarrenDumpTest, VerifyFindsEachProblem) {
  WriteBatch bad;
  bad.DeleteBody(50);                                                   // two dangling refs
  bad.PutRaw(storage::Family::kDefinitions, storage::QueueKey("/", "junk"), "\xff\xff garbage");
  bad.PutMessage(9, 1, MessageData{"", "", "", "queue 9 has no record"});
  bad.PutDeliveryState(1, 99, 1, false);                                // no such message
  bad.PutBody(77, MessageData{"", "", "", "nobody points here"});        // orphan
  ASSERT_TRUE(store_->Write(std::move(bad)).ok());

  Result r = RunDump(DataDir() + " verify");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  for (const char* expected :
       {"queue id 1 seq 3 references missing body 50", "queue id 2 seq 1 references missing body 50",
        "does not parse", "queue id 9, which has no queue record",
        "queue id 1 seq 99 has a delivery state but no message", "body 77 is referenced by no message"}) {
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected << "\n" << r.out;
  }
  Result j = RunDump(DataDir() + " --json verify");
  EXPECT_EQ(j.exit_code, 1);
  json report = json::parse(j.out);
  EXPECT_EQ(report["ok"], false);
  EXPECT_GE(report["problem_count"].get<int>(), 6);
}

TEST(WarrenDumpCliTest, HelpAndErrors) {
  Result help = RunDump("--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* cmd : {"overview", "vhosts", "users", "exchanges", "queues", "bindings", "messages",
                          "verify", "--data-dir", "--json"}) {
    EXPECT_NE(help.out.find(cmd), std::string::npos) << cmd;
  }
  Result mhelp = RunDump("messages --help");
  EXPECT_NE(mhelp.out.find("--limit"), std::string::npos) << mhelp.out;

  TempDir empty;
  Result none = RunDump("--data-dir " + empty.path() + " overview", true);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.out.find("no Warren store"), std::string::npos) << none.out;
  EXPECT_FALSE(std::filesystem::exists(empty.path() + "/store"));  // created nothing

  Result no_command = RunDump("--data-dir " + empty.path(), true);
  EXPECT_NE(no_command.exit_code, 0);
}

TEST(WarrenDumpCliTest, AcceptsTheStoreDirectoryItself) {
  TempDir dir;
  OpenOrDie(dir.path()).reset();
  Result r = RunDump("--data-dir " + dir.path() + " --json overview");
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace warren::tools
