// Store: every kind of record survives close and reopen; deletes; Open's refusals.
#include "storage/store.h"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "storage/test_util.h"

namespace warren::storage {
namespace {

using testing::Msg;
using testing::OpenOrDie;
using testing::ScanAll;
using testing::TempDir;
namespace fs = std::filesystem;

proto::QueueRecord Queue(std::string vhost, std::string name, uint64_t id) {
  proto::QueueRecord q;
  q.set_vhost(std::move(vhost));
  q.set_name(std::move(name));
  q.set_id(id);
  q.set_durable(true);
  return q;
}

proto::BindingRecord Binding(std::string source, std::string dest, std::string rk,
                             std::string args = "", bool to_exchange = false) {
  proto::BindingRecord b;
  b.set_vhost("/");
  b.set_source(std::move(source));
  b.set_destination(std::move(dest));
  b.set_destination_is_exchange(to_exchange);
  b.set_routing_key(std::move(rk));
  b.set_arguments(std::move(args));
  return b;
}

TEST(StoreTest, EveryRecordKindSurvivesReopen) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    proto::VhostRecord v;
    v.set_name("/");
    v.add_tags("default");
    b.PutVhost(v);
    v.set_name("other");
    b.PutVhost(v);
    proto::UserRecord u;
    u.set_name("guest");
    u.set_password_hash(std::string("\x01\x02\x00\x03", 4));
    u.set_hashing_algorithm("rabbit_password_hashing_sha256");
    u.add_tags("administrator");
    b.PutUser(u);
    proto::PermissionRecord p;
    p.set_user("guest");
    p.set_vhost("/");
    p.set_configure(".*");
    p.set_write(".*");
    p.set_read(".*");
    b.PutPermission(p);
    proto::ExchangeRecord e;
    e.set_vhost("/");
    e.set_name("logs");
    e.set_type("topic");
    e.set_durable(true);
    e.set_arguments(std::string("\x00\x00\x00\x00", 4));
    b.PutExchange(e);
    b.PutQueue(Queue("/", "q1", 1));
    b.PutQueue(Queue("other", "q1", 2));
    b.PutBinding(Binding("logs", "q1", "a.#"));
    b.PutBinding(Binding("logs", "q1", "a.#", std::string("\x00\x00\x00\x01", 4)));
    b.PutBinding(Binding("logs", "logs2", "a.#", "", /*to_exchange=*/true));
    std::string props("\x90\x00\x0atext/plain\x02", 14);  // content-type + delivery-mode 2
    b.PutMessage(1, 1, Msg("hello", "key", "logs", props));
    b.PutMessage(1, 2, Msg(std::string(100000, 'x')));
    b.PutBody(7, Msg("shared", "k2", "fan"));
    b.PutMessageRef(1, 3, 7);
    b.PutMessageRef(2, 1, 7);
    b.PutDeliveryState(1, 2, 3, true);
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  auto store = OpenOrDie(dir.path());
  std::vector<proto::VhostRecord> vhosts;
  ASSERT_TRUE(store->ListVhosts(&vhosts).ok());
  ASSERT_EQ(vhosts.size(), 2u);
  EXPECT_EQ(vhosts[0].name(), "/");
  EXPECT_EQ(vhosts[0].tags(0), "default");
  EXPECT_EQ(vhosts[1].name(), "other");
  std::vector<proto::UserRecord> users;
  ASSERT_TRUE(store->ListUsers(&users).ok());
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].password_hash(), std::string("\x01\x02\x00\x03", 4));
  EXPECT_EQ(users[0].hashing_algorithm(), "rabbit_password_hashing_sha256");
  std::vector<proto::PermissionRecord> perms;
  ASSERT_TRUE(store->ListPermissions(&perms).ok());
  ASSERT_EQ(perms.size(), 1u);
  EXPECT_EQ(perms[0].read(), ".*");
  std::vector<proto::ExchangeRecord> exchanges;
  ASSERT_TRUE(store->ListExchanges(&exchanges).ok());
  ASSERT_EQ(exchanges.size(), 1u);
  EXPECT_EQ(exchanges[0].type(), "topic");
  EXPECT_EQ(exchanges[0].arguments().size(), 4u);
  std::vector<proto::QueueRecord> queues;
  ASSERT_TRUE(store->ListQueues(&queues).ok());
  ASSERT_EQ(queues.size(), 2u);
  EXPECT_EQ(queues[0].id(), 1u);
  EXPECT_EQ(queues[1].vhost(), "other");
  std::vector<proto::BindingRecord> bindings;
  ASSERT_TRUE(store->ListBindings(&bindings).ok());
  EXPECT_EQ(bindings.size(), 3u);  // arguments are part of the identity

  auto q1 = ScanAll(store.get(), 1);
  ASSERT_EQ(q1.size(), 3u);
  EXPECT_EQ(q1[0].seq, 1u);
  EXPECT_EQ(q1[0].body, "hello");
  EXPECT_EQ(q1[0].routing_key, "key");
  EXPECT_EQ(q1[0].exchange, "logs");
  EXPECT_EQ(q1[0].properties, std::string("\x90\x00\x0atext/plain\x02", 14));
  EXPECT_EQ(q1[0].body_id, 0u);
  EXPECT_EQ(q1[1].body.size(), 100000u);
  EXPECT_EQ(q1[1].delivery_count, 3u);
  EXPECT_TRUE(q1[1].redelivered);
  EXPECT_EQ(q1[2].body, "shared");
  EXPECT_EQ(q1[2].body_id, 7u);
  EXPECT_EQ(q1[2].exchange, "fan");
  auto q2 = ScanAll(store.get(), 2);
  ASSERT_EQ(q2.size(), 1u);
  EXPECT_EQ(q2[0].body, "shared");
}

TEST(StoreTest, DeletesSurviveReopen) {
  TempDir dir;
  proto::BindingRecord bind = Binding("x", "q", "rk");
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    proto::VhostRecord v;
    v.set_name("/");
    b.PutVhost(v);
    proto::UserRecord u;
    u.set_name("bob");
    b.PutUser(u);
    proto::PermissionRecord p;
    p.set_user("bob");
    p.set_vhost("/");
    b.PutPermission(p);
    proto::ExchangeRecord e;
    e.set_vhost("/");
    e.set_name("x");
    b.PutExchange(e);
    b.PutQueue(Queue("/", "q", 5));
    b.PutBinding(bind);
    b.PutMessage(5, 1, Msg("a"));
    b.PutMessage(5, 2, Msg("b"));
    b.PutBody(9, Msg("s"));
    b.PutMessageRef(5, 3, 9);
    b.PutDeliveryState(5, 1, 1, false);
    ASSERT_TRUE(store->Write(std::move(b)).ok());

    WriteBatch d;
    d.DeleteVhost("/");
    d.DeleteUser("bob");
    d.DeletePermission("bob", "/");
    d.DeleteExchange("/", "x");
    d.DeleteBinding(bind);
    d.DeleteMessage(5, 1);
    d.DeleteMessage(5, 3);
    d.DeleteBody(9);
    ASSERT_TRUE(store->Write(std::move(d)).ok());
  }
  auto store = OpenOrDie(dir.path());
  std::vector<proto::VhostRecord> vhosts;
  std::vector<proto::UserRecord> users;
  std::vector<proto::PermissionRecord> perms;
  std::vector<proto::ExchangeRecord> exchanges;
  std::vector<proto::BindingRecord> bindings;
  std::vector<proto::QueueRecord> queues;
  ASSERT_TRUE(store->ListVhosts(&vhosts).ok());
  ASSERT_TRUE(store->ListUsers(&users).ok());
  ASSERT_TRUE(store->ListPermissions(&perms).ok());
  ASSERT_TRUE(store->ListExchanges(&exchanges).ok());
  ASSERT_TRUE(store->ListBindings(&bindings).ok());
  ASSERT_TRUE(store->ListQueues(&queues).ok());
  EXPECT_TRUE(vhosts.empty());
  EXPECT_TRUE(users.empty());
  EXPECT_TRUE(perms.empty());
  EXPECT_TRUE(exchanges.empty());
  EXPECT_TRUE(bindings.empty());
  EXPECT_EQ(queues.size(), 1u);
  auto msgs = ScanAll(store.get(), 5);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].seq, 2u);
  EXPECT_EQ(msgs[0].delivery_count, 0u);
}

TEST(StoreTest, DeleteQueueRemovesItsMessagesOnly) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutQueue(Queue("/", "a", 1));
    b.PutQueue(Queue("/", "b", 2));
    b.PutQueue(Queue("/", "c", 3));
    for (uint64_t seq = 1; seq <= 1000; ++seq) {
      for (uint64_t q = 1; q <= 3; ++q) b.PutMessage(q, seq, Msg("m" + std::to_string(seq)));
      b.PutDeliveryState(2, seq, 1, true);
    }
    ASSERT_TRUE(store->Write(std::move(b)).ok());
    ASSERT_TRUE(store->FlushForTesting().ok());  // half in tables, half in the memtable
    WriteBatch more;
    for (uint64_t seq = 1001; seq <= 2000; ++seq) more.PutMessage(2, seq, Msg("late"));
    ASSERT_TRUE(store->Write(std::move(more)).ok());
    WriteBatch del;
    del.DeleteQueue("/", "b", 2);
    ASSERT_TRUE(store->Write(std::move(del)).ok());
    EXPECT_TRUE(ScanAll(store.get(), 2).empty());
  }
  auto store = OpenOrDie(dir.path());
  std::vector<proto::QueueRecord> queues;
  ASSERT_TRUE(store->ListQueues(&queues).ok());
  ASSERT_EQ(queues.size(), 2u);
  EXPECT_EQ(queues[0].name(), "a");
  EXPECT_EQ(queues[1].name(), "c");
  EXPECT_EQ(ScanAll(store.get(), 1).size(), 1000u);
  EXPECT_TRUE(ScanAll(store.get(), 2).empty());
  EXPECT_EQ(ScanAll(store.get(), 3).size(), 1000u);
  uint64_t delivery_states = 0;
  ASSERT_TRUE(store->ForEach(Family::kDelivery, [&](std::string_view, std::string_view) {
    ++delivery_states;
    return true;
  }).ok());
  EXPECT_EQ(delivery_states, 0u);
}

TEST(StoreTest, DeleteQueueWithLargestId) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutMessage(UINT64_MAX, 1, Msg("a"));
  b.PutMessage(UINT64_MAX - 1, 1, Msg("b"));
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  EXPECT_EQ(ScanAll(store.get(), UINT64_MAX).size(), 1u);
  WriteBatch d;
  d.DeleteQueue("/", "max", UINT64_MAX);
  ASSERT_TRUE(store->Write(std::move(d)).ok());
  EXPECT_TRUE(ScanAll(store.get(), UINT64_MAX).empty());
  EXPECT_EQ(ScanAll(store.get(), UINT64_MAX - 1).size(), 1u);
}

// SubmitRead: off the calling thread, in submission order, seeing completed writes; the reads
// still queued at destruction run before the store closes.
TEST(StoreTest, SubmittedReadsRunInOrderOnTheReaderThreadAndBeforeClose) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch batch;
  batch.PutMessage(7, 1, Msg("hello"));
  ASSERT_TRUE(store->Write(std::move(batch)).ok());
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  size_t seen = 0;
  for (int i = 0; i < 100; ++i) {
    store->SubmitRead([&, i, s = store.get()] {
      if (i == 0) seen = ScanAll(s, 7).size();
      std::lock_guard l(mu);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
    });
  }
  store.reset();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  EXPECT_NE(threads.front(), std::this_thread::get_id());
  EXPECT_EQ(seen, 1u);
}

TEST(StoreTest, StoreDirFor) { EXPECT_EQ(StoreDirFor("/var/lib/warren"), "/var/lib/warren/store"); }

TEST(StoreTest, CreatesMissingParents) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("a/b/store"));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->format_version(), kFormatVersion);
}

TEST(StoreTest, ReadOnlyOpenOfMissingStoreFails) {
  TempDir dir;
  StoreOptions o;
  o.dir = dir.Sub("nothing");
  o.read_only = true;
  std::unique_ptr<Store> store;
  Status s = Store::Open(o, &store);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(fs::exists(o.dir));  // a read-only open creates nothing
}

TEST(StoreTest, ReadOnlyRejectsWrites) {
  TempDir dir;
  OpenOrDie(dir.path()).reset();
  StoreOptions o;
  o.dir = dir.path();
  o.read_only = true;
  auto store = OpenOrDie(o);
  WriteBatch b;
  b.PutMessage(1, 1, Msg("x"));
  EXPECT_TRUE(store->Write(std::move(b)).IsInvalidArgument());
}

TEST(StoreTest, ReadOnlyOpenWhileTheWriterHasTheStore) {
  TempDir dir;
  auto writer = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutMessage(1, 1, Msg("one"));
  ASSERT_TRUE(writer->Write(std::move(b)).ok());
  StoreOptions o;
  o.dir = dir.path();
  o.read_only = true;
  auto reader = OpenOrDie(o);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(ScanAll(reader.get(), 1).size(), 1u);
  WriteBatch more;
  more.PutMessage(1, 2, Msg("two"));
  ASSERT_TRUE(writer->Write(std::move(more)).ok());
  EXPECT_EQ(ScanAll(reader.get(), 1).size(), 1u);  // as of Open
  ASSERT_TRUE(reader->Refresh().ok());
  EXPECT_EQ(ScanAll(reader.get(), 1).size(), 2u);
}

TEST(StoreTest, SubmitWithoutCallbackAndEmptyBatch) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  store->Submit(WriteBatch(), nullptr);
  WriteBatch b;
  b.PutMessage(1, 1, Msg("x"));
  store->Submit(std::move(b), nullptr);
  EXPECT_TRUE(store->Write(WriteBatch()).ok());
  EXPECT_EQ(ScanAll(store.get(), 1).size(), 1u);
}

// ---- Refusals ----

TEST(StoreOpenTest, UpgradesAVersion1StoreByItsMarker) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    proto::StoreMeta meta;
    meta.set_magic("warren");
    meta.set_format_version(1);
    WriteBatch b;
    b.PutRaw(Family::kMeta, kMetaKey, meta.SerializeAsString());
    b.PutMessage(1, 1, Msg("from version 1"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  StoreOptions ro;
  ro.dir = dir.path();
  ro.read_only = true;
  EXPECT_EQ(OpenOrDie(ro)->format_version(), 1u);  // a reader changes nothing
  auto store = OpenOrDie(dir.path());
  EXPECT_EQ(store->format_version(), kFormatVersion);
  store.reset();
  EXPECT_EQ(OpenOrDie(ro)->format_version(), kFormatVersion);
  auto reopened = OpenOrDie(dir.path());
  auto msgs = ScanAll(reopened.get(), 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].body, "from version 1");
}

TEST(StoreTest, ExpiryIsReadBackWithTheMessage) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  WriteBatch b;
  b.PutMessage(1, 1, Msg("inline"), 1700000000001);
  b.PutBody(9, Msg("shared"));
  b.PutMessageRef(1, 2, 9, 1700000000002);
  b.PutMessage(1, 3, Msg("no ttl"));
  ASSERT_TRUE(store->Write(std::move(b)).ok());
  auto msgs = ScanAll(store.get(), 1);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].expires, 1700000000001);
  EXPECT_EQ(msgs[1].expires, 1700000000002);
  EXPECT_EQ(msgs[1].body, "shared");
  EXPECT_EQ(msgs[2].expires, 0);
}

TEST(StoreOpenTest, RefusesNewerFormatVersion) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    proto::StoreMeta meta;
    meta.set_magic("warren");
    meta.set_format_version(kFormatVersion + 1);
    WriteBatch b;
    b.PutRaw(Family::kMeta, kMetaKey, meta.SerializeAsString());
    b.PutMessage(1, 1, Msg("keep me"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  for (bool read_only : {false, true}) {
    StoreOptions o;
    o.dir = dir.path();
    o.read_only = read_only;
    std::unique_ptr<Store> store;
    Status s = Store::Open(o, &store);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.ToString().find("newer"), std::string::npos) << s.ToString();
    EXPECT_EQ(store, nullptr);
  }
}

TEST(StoreOpenTest, RefusesDirectoryWithOtherFiles) {
  TempDir dir;
  { std::ofstream(dir.Sub("notes.txt")) << "not a database"; }
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &store);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("not a Warren store"), std::string::npos) << s.ToString();
  // Untouched: nothing was created next to the file.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(StoreOpenTest, RefusesFile) {
  TempDir dir;
  { std::ofstream(dir.Sub("file")) << "x"; }
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.Sub("file");
  EXPECT_TRUE(Store::Open(o, &store).IsInvalidArgument());
}

TEST(StoreOpenTest, RefusesForeignRocksDBWithoutModifyingIt) {
  TempDir dir;
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "foo", "bar").ok());
  }
  std::unique_ptr<Store> store;
  StoreOptions so;
  so.dir = dir.path();
  Status s = Store::Open(so, &store);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("not a Warren store"), std::string::npos) << s.ToString();
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path(), &families).ok());
  EXPECT_EQ(families, std::vector<std::string>{"default"});
  so.read_only = true;
  EXPECT_FALSE(Store::Open(so, &store).ok());
}

TEST(StoreOpenTest, RefusesOurFamiliesWithDataButNoMarker) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.DeleteRaw(Family::kMeta, kMetaKey);
    b.PutMessage(1, 1, Msg("data"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &store);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
}

TEST(StoreOpenTest, AdoptsCreationThatCrashedBeforeCurrent) {
  TempDir dir;
  { std::ofstream(dir.Sub("LOCK")); }
  { std::ofstream(dir.Sub("LOG")) << "partial"; }
  auto store = OpenOrDie(dir.path());
  ASSERT_NE(store, nullptr);
}

TEST(StoreOpenTest, RefusesGarbageCurrent) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutMessage(1, 1, Msg("data"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  { std::ofstream(dir.Sub("CURRENT"), std::ios::trunc) << "MANIFEST-999999\n"; }
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &store);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(StoreOpenTest, RefusesGarbageManifest) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutMessage(1, 1, Msg("data"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
  }
  std::string manifest;
  {
    std::ifstream current(dir.Sub("CURRENT"));
    std::getline(current, manifest);
  }
  {
    std::ofstream out(dir.Sub(manifest), std::ios::trunc | std::ios::binary);
    out << std::string(4096, '\x5a');
  }
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &store);
  EXPECT_FALSE(s.ok()) << "opened over a corrupt MANIFEST";
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(StoreOpenTest, RefusesStoreWhoseCurrentIsMissing) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    b.PutMessage(1, 1, Msg("data"));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
    ASSERT_TRUE(store->FlushForTesting().ok());
  }
  fs::remove(dir.Sub("CURRENT"));
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &store);
  EXPECT_FALSE(s.ok()) << "started empty over a store without CURRENT";
}

TEST(StoreOpenTest, CorruptTableIsReported) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path());
    WriteBatch b;
    for (uint64_t seq = 1; seq <= 2000; ++seq) b.PutMessage(1, seq, Msg(std::string(200, 'a')));
    ASSERT_TRUE(store->Write(std::move(b)).ok());
    ASSERT_TRUE(store->FlushForTesting().ok());
  }
  // Overwrite the middle of the largest table (the message index).
  fs::path largest;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().extension() == ".sst" &&
        (largest.empty() || fs::file_size(e.path()) > fs::file_size(largest))) {
      largest = e.path();
    }
  }
  ASSERT_FALSE(largest.empty());
  {
    std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(largest) / 3));
    f << std::string(512, '\x00');
  }
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &store);
  if (s.ok()) {
    // Block checksums catch it on read.
    s = store->ScanQueue(1, 0, [](const StoredMessage&) { return true; });
  }
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

// Batches written one by one, then closed: each is its own record in the WAL (the memtables are
// not flushed on close), and the WAL is the only copy.
std::string WriteWalRecords(const std::string& dir, int batches) {
  {
    auto store = OpenOrDie(dir);
    for (int i = 1; i <= batches; ++i) {
      WriteBatch b;
      b.PutMessage(1, static_cast<uint64_t>(i), Msg(std::string(500, static_cast<char>('a' + i % 26))));
      EXPECT_TRUE(store->Write(std::move(b)).ok());
    }
  }
  fs::path wal;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log" && (wal.empty() || fs::file_size(e.path()) > fs::file_size(wal))) {
      wal = e.path();
    }
  }
  EXPECT_FALSE(wal.empty());
  EXPECT_GT(fs::file_size(wal), static_cast<uintmax_t>(batches) * 500);
  return wal.string();
}

TEST(StoreOpenTest, RefusesWalDamagedBeforeItsEnd) {
  TempDir dir;
  const std::string wal = WriteWalRecords(dir.path(), 10);
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(wal) / 2));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(fs::file_size(wal) / 2));
    f.put(static_cast<char>(c ^ 0x5a));
  }
  const uintmax_t size = fs::file_size(wal);
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &store);
  ASSERT_FALSE(s.ok()) << "opened over a WAL damaged in the middle, dropping its second half";
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(fs::path(wal).filename().string()), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("write-ahead log"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("--truncate-corrupt-wal"), std::string::npos) << s.ToString();
  EXPECT_EQ(fs::file_size(wal), size) << "the refused open changed the WAL";

  // The operator's choice: keep what precedes the damage.
  o.truncate_corrupt_wal = true;
  store = OpenOrDie(o);
  ASSERT_NE(store, nullptr);
  auto msgs = ScanAll(store.get(), 1);
  EXPECT_GE(msgs.size(), 1u);
  EXPECT_LT(msgs.size(), 10u);
  for (size_t i = 0; i < msgs.size(); ++i) EXPECT_EQ(msgs[i].seq, i + 1);
}

TEST(StoreOpenTest, DropsATornLastWalRecord) {
  TempDir dir;
  const std::string wal = WriteWalRecords(dir.path(), 10);
  fs::resize_file(wal, fs::file_size(wal) - 100);  // the last record cut short, as a crash leaves it
  auto store = OpenOrDie(dir.path());
  ASSERT_NE(store, nullptr);
  auto msgs = ScanAll(store.get(), 1);
  ASSERT_EQ(msgs.size(), 9u);
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(msgs[i].seq, i + 1);
    EXPECT_EQ(msgs[i].body, std::string(500, static_cast<char>('a' + (i + 1) % 26)));
  }
}

TEST(StoreOpenTest, StoreInUseNamesItsLockFile) {
  TempDir dir;
  auto first = OpenOrDie(dir.path());
  ASSERT_NE(first, nullptr);
  std::unique_ptr<Store> second;
  StoreOptions o;
  o.dir = dir.path();
  Status s = Store::Open(o, &second);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is in use"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(dir.Sub("LOCK")), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("this process"), std::string::npos) << s.ToString();
  EXPECT_EQ(s.message().find("start empty"), std::string::npos) << s.ToString();
  // The first store still holds its lock and works.
  WriteBatch b;
  b.PutMessage(1, 1, Msg("x"));
  EXPECT_TRUE(first->Write(std::move(b)).ok());
  EXPECT_FALSE(Store::Open(o, &second).ok());
}

}  // namespace
}  // namespace warren::storage
