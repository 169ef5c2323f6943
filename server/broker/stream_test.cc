// Streams: declaration rules and argument texts, x-stream-offset resolution, the log in a real
// store (offsets, headers, consumers reading independently in bounded chunks), segment retention
// and recovery.
#include "server/broker/stream.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/amqp/properties.h"
#include "server/broker/manual_timers.h"
#include "server/broker/queue.h"
#include "server/broker/store_testing.h"
#include "server/broker/vhost.h"

namespace warren::broker {
namespace {

using amqp::FieldTable;
using amqp::FieldValue;

FieldTable Args(std::vector<std::pair<std::string, FieldValue>> entries) {
  FieldTable t;
  t.entries = std::move(entries);
  t.entries.emplace_back("x-queue-type", FieldValue(std::string("stream")));
  return t;
}

// The declaration's checks in Vhost::DeclareQueue's order.
std::string DeclareError(const FieldTable& args, bool durable = true, bool exclusive = false, bool auto_delete = false,
                         bool server_named = false) {
  constexpr std::string_view kLabel = "queue 's' in vhost '/'";
  auto generic = ParseQueueArguments(args, kLabel);
  if (!generic) return generic.error().text;
  if (auto values = ParseStreamArguments(args, kLabel); !values) return values.error().text;
  auto properties = CheckQueueTypeProperties(generic->type, durable, exclusive, auto_delete, server_named, kLabel);
  return properties ? std::string() : properties.error().text;
}

TEST(StreamArgumentsTest, IntervalsHaveRabbitMqsUnits) {
  EXPECT_EQ(ParseStreamInterval("10s"), 10);
  EXPECT_EQ(ParseStreamInterval("30m"), 1800);
  EXPECT_EQ(ParseStreamInterval("1h"), 3600);
  EXPECT_EQ(ParseStreamInterval("7D"), 7 * 86400);
  EXPECT_EQ(ParseStreamInterval("1M"), 30 * 86400);
  EXPECT_EQ(ParseStreamInterval("1Y"), 365 * 86400);
  EXPECT_EQ(ParseStreamInterval("01s"), 1);
  EXPECT_EQ(ParseStreamInterval("100000000000000000000Y"), INT64_MAX);  // saturates, as accepted
  for (const char* bad : {"", "s", "1", "1H", "1d", "1y", "1S", "1.5h", " 1s", "1hh", "-1s"}) {
    EXPECT_EQ(ParseStreamInterval(bad), std::nullopt) << bad;
  }
}

TEST(StreamArgumentsTest, DeclareRulesAndTexts) {
  EXPECT_EQ(DeclareError(Args({})), "");
  EXPECT_EQ(DeclareError(Args({}), false), "invalid property 'non-durable' for queue 's' in vhost '/'");
  EXPECT_EQ(DeclareError(Args({}), true, true), "invalid property 'exclusive-owner' for queue 's' in vhost '/'");
  EXPECT_EQ(DeclareError(Args({}), false, true), "invalid property 'exclusive-owner' for queue 's' in vhost '/'");
  EXPECT_EQ(DeclareError(Args({}), true, false, true), "invalid property 'auto-delete' for queue 's' in vhost '/'");
  EXPECT_EQ(DeclareError(Args({}), true, false, false, true),
            "Cannot declare a server-named queue for type rabbit_stream_queue");
  EXPECT_EQ(DeclareError(Args({{"x-max-length", FieldValue(int32_t{1})}}), false),
            "invalid arg 'x-max-length' for queue 's' in vhost '/' of queue type rabbit_stream_queue");
  EXPECT_EQ(DeclareError(Args({{"x-delivery-limit", FieldValue(int32_t{1})}})),
            "invalid arg 'x-delivery-limit' for queue 's' in vhost '/' of queue type rabbit_stream_queue");
  EXPECT_EQ(DeclareError(Args({{"x-max-age", FieldValue(std::string("0s"))}})),
            "invalid arg 'x-max-age' for queue 's' in vhost '/': invalid_max_age");
  EXPECT_EQ(DeclareError(Args({{"x-max-age", FieldValue(int32_t{10})}})),
            "invalid arg 'x-max-age' for queue 's' in vhost '/': {unacceptable_type,signedint}");
  EXPECT_EQ(DeclareError(Args({{"x-stream-max-segment-size-bytes", FieldValue(int64_t{3000000001})}})),
            "Exceeded max value for x-stream-max-segment-size-bytes");
  EXPECT_EQ(DeclareError(Args({{"x-stream-max-segment-size-bytes", FieldValue(int32_t{-1})}})),
            "invalid arg 'x-stream-max-segment-size-bytes' for queue 's' in vhost '/': {value_negative,-1}");
  EXPECT_EQ(DeclareError(Args({{"x-initial-cluster-size", FieldValue(int32_t{0})}})),
            "invalid arg 'x-initial-cluster-size' for queue 's' in vhost '/': {value_zero,0}");
  EXPECT_EQ(DeclareError(Args({{"x-initial-cluster-size", FieldValue(std::string("a"))}})),
            "invalid arg 'x-initial-cluster-size' for queue 's' in vhost '/': \"expected integer, got longstr\"");
  EXPECT_EQ(DeclareError(Args({{"x-queue-leader-locator", FieldValue(std::string("bad"))}})),
            "invalid arg 'x-queue-leader-locator' for queue 's' in vhost '/': invalid_queue_locator_arg");
  EXPECT_EQ(DeclareError(Args({{"x-queue-leader-locator", FieldValue(std::string("balanced"))},
                               {"x-foo", FieldValue(std::string("bar"))}})),
            "");
  StreamArguments parsed = ParseValidStreamArguments(Args({{"x-max-age", FieldValue(std::string("2m"))},
                                                           {"x-max-length-bytes", FieldValue(int32_t{1000})}}));
  EXPECT_EQ(parsed.max_age_seconds, 120);
  EXPECT_EQ(parsed.max_length_bytes, 1000u);
  EXPECT_EQ(parsed.max_segment_bytes, kDefaultStreamSegmentBytes);
}

TEST(StreamArgumentsTest, ParsesConsumerOffsets) {
  auto parse = [](FieldValue v) {
    FieldTable t;
    t.entries.emplace_back("x-stream-offset", std::move(v));
    return ParseStreamOffset(t, 10'000'000, "queue 's' in vhost '/'");
  };
  using K = StreamOffset::Kind;
  EXPECT_EQ(ParseStreamOffset(FieldTable{}, 0, "")->kind, K::kNext);
  EXPECT_EQ(parse(std::string("first"))->kind, K::kFirst);
  EXPECT_EQ(parse(std::string("last"))->kind, K::kLast);
  EXPECT_EQ(parse(std::string("next"))->kind, K::kNext);
  EXPECT_EQ(parse(int64_t{5})->kind, K::kOffset);
  EXPECT_EQ(parse(int8_t{5})->value, 5);
  EXPECT_EQ(parse(int32_t{-1})->kind, K::kFirst);
  auto ts = parse(amqp::Timestamp{1234});
  EXPECT_EQ(ts->kind, K::kTimestamp);
  EXPECT_EQ(ts->value, 1'234'000);
  auto ago = parse(std::string("1h"));
  EXPECT_EQ(ago->kind, K::kTimestamp);
  EXPECT_EQ(ago->value, 10'000'000 - 3'600'000);
  EXPECT_EQ(parse(std::string("xx")).error().text, "invalid arg 'x-stream-offset' for queue 's' in vhost '/': 'xx'");
  EXPECT_EQ(parse(true).error().code, amqp::reply::kPreconditionFailed);
}

// A consumer that takes up to `credit` messages and records them.
class TestConsumer final : public Consumer {
 public:
  explicit TestConsumer(size_t credit) : credit(credit) {}
  bool Ready() const override { return got.size() < credit; }
  bool no_ack() const override { return false; }
  void Deliver(Queue&, QueuedMessage m) override { got.push_back(std::move(m)); }
  void OnQueueDeleted(Queue&) override {}
  size_t credit;
  std::vector<QueuedMessage> got;
};

std::optional<int64_t> OffsetHeader(const QueuedMessage& m) {
  std::optional<FieldTable> headers;
  if (!amqp::PeekHeaders(m.msg->raw_properties(), &headers) || !headers) return std::nullopt;
  const FieldValue* v = headers->Find("x-stream-offset");
  return v != nullptr ? v->AsInt() : std::nullopt;
}

struct StreamEnv {
  explicit StreamEnv(const std::string& dir) : run(dir) {
    run.broker.set_persister(&run.persister);
    run.broker.set_timers(&timers);
    timers.set_unix_seconds(1000);
  }
  Queue& Declare(std::vector<std::pair<std::string, FieldValue>> args = {}) {
    QueueOptions options;
    options.durable = true;
    options.arguments = Args(std::move(args));
    auto declared = run.broker.FindVhost("/")->DeclareQueue("s", false, std::move(options), 1);
    EXPECT_TRUE(declared) << declared.error().text;
    return *declared->queue;
  }
  Queue& Find() { return **run.broker.FindVhost("/")->FindQueue("s", 1); }
  void Publish(Queue& q, int n, size_t size = 10) {
    for (int i = 0; i < n; ++i) q.Enqueue(testing::Body(run.broker, size, 'a'));
  }
  ManualTimers timers;
  testing::BrokerRun run;
};

TEST(StreamLogTest, ConsumersReadTheSameOffsetsIndependentlyInChunks) {
  storage::testing::TempDir dir;
  StreamEnv env(dir.path());
  Queue& q = env.Declare();
  ASSERT_NE(q.stream(), nullptr);
  env.Publish(q, 600);
  EXPECT_EQ(q.ready_count(), 600u);
  TestConsumer a(1000), b(1000), late(1000);
  q.AddStreamConsumer(&a, StreamOffset{StreamOffset::Kind::kFirst});
  q.AddStreamConsumer(&b, StreamOffset{StreamOffset::Kind::kOffset, 590});
  q.Dispatch();
  EXPECT_TRUE(a.got.empty());  // nothing is read before it is durable
  env.run.Settle();
  // One chunk per consumer per dispatch; the rest follows from a posted continuation.
  EXPECT_EQ(a.got.size(), StreamLog::kReadChunkMessages);
  EXPECT_EQ(b.got.size(), 10u);
  for (int i = 0; i < 3; ++i) env.timers.RunPosted();
  ASSERT_EQ(a.got.size(), 600u);
  for (size_t i = 0; i < a.got.size(); ++i) {
    ASSERT_EQ(a.got[i].seq, i);
    ASSERT_EQ(OffsetHeader(a.got[i]), static_cast<int64_t>(i));
  }
  EXPECT_EQ(OffsetHeader(b.got.front()), 590);
  EXPECT_EQ(q.ready_count(), 600u);  // reading removes nothing
  EXPECT_EQ(q.unacked_count(), 0u);
  q.AddStreamConsumer(&late, StreamOffset{StreamOffset::Kind::kLast});
  q.Dispatch();
  ASSERT_EQ(late.got.size(), 1u);
  EXPECT_EQ(late.got[0].seq, 599u);
  q.RemoveConsumer(&a);
  q.RemoveConsumer(&b);
  q.RemoveConsumer(&late);
}

TEST(StreamLogTest, ResolvesNextOffsetsAndTimestamps) {
  storage::testing::TempDir dir;
  StreamEnv env(dir.path());
  Queue& q = env.Declare({{"x-stream-max-segment-size-bytes", FieldValue(int32_t{100})}});
  env.Publish(q, 20);  // 10 segments of 100 bytes at t=1000
  env.timers.set_unix_seconds(2000);
  env.Publish(q, 20);  // at t=2000
  StreamLog& s = *q.stream();
  EXPECT_EQ(s.segments().size(), 4u);
  using K = StreamOffset::Kind;
  EXPECT_EQ(s.Resolve({K::kNext}).offset, 40u);
  EXPECT_EQ(s.Resolve({K::kFirst}).offset, 0u);
  EXPECT_EQ(s.Resolve({K::kOffset, 1000}).offset, 1000u);
  EXPECT_EQ(s.Resolve({K::kTimestamp, 1'500'000}).offset, 20u);
  EXPECT_EQ(s.Resolve({K::kTimestamp, 3'000'000}).offset, 40u);
  env.run.Settle();
  TestConsumer c(100);
  q.AddStreamConsumer(&c, StreamOffset{K::kTimestamp, 1'500'000});
  q.Dispatch();
  ASSERT_EQ(c.got.size(), 20u);
  EXPECT_EQ(c.got[0].seq, 20u);
  q.RemoveConsumer(&c);
}

TEST(StreamLogTest, RetentionDropsWholeSegmentsByBytesAndAge) {
  storage::testing::TempDir dir;
  StreamEnv env(dir.path());
  Queue& q = env.Declare({{"x-stream-max-segment-size-bytes", FieldValue(int32_t{100})},
                          {"x-max-length-bytes", FieldValue(int32_t{300})}});
  env.Publish(q, 50);  // 10-byte messages: segments of 10
  StreamLog& s = *q.stream();
  EXPECT_LE(s.bytes(), 300u);
  EXPECT_GE(s.bytes(), 200u);
  EXPECT_EQ(s.first_offset() % 10, 0u);
  EXPECT_EQ(q.ready_count(), 50 - s.first_offset());
  env.run.Settle();
  std::vector<storage::StreamSegment> stored;
  ASSERT_TRUE(env.run.store->ListStreamSegments(q.id(), &stored).ok());
  EXPECT_EQ(std::vector<storage::StreamSegment>(s.segments().begin(), s.segments().end()), stored);
  TestConsumer c(100);
  q.AddStreamConsumer(&c, StreamOffset{StreamOffset::Kind::kOffset, 0});  // clamped to the first kept
  q.Dispatch();
  ASSERT_FALSE(c.got.empty());
  EXPECT_EQ(c.got[0].seq, s.first_offset());
  q.RemoveConsumer(&c);

  // Age: closed segments older than x-max-age go on the timer; the open one stays.
  storage::testing::TempDir dir2;
  StreamEnv aged(dir2.path());
  Queue& a = aged.Declare({{"x-stream-max-segment-size-bytes", FieldValue(int32_t{100})},
                           {"x-max-age", FieldValue(std::string("10s"))}});
  aged.Publish(a, 35);
  EXPECT_EQ(a.stream()->segments().size(), 4u);
  aged.timers.set_unix_seconds(1011);
  aged.timers.Advance(2000);
  EXPECT_EQ(a.stream()->segments().size(), 1u);
  EXPECT_EQ(a.stream()->first_offset(), 30u);
  EXPECT_EQ(a.ready_count(), 5u);
}

TEST(StreamLogTest, RecoveryKeepsOffsetsAndSegments) {
  storage::testing::TempDir dir;
  std::vector<storage::StreamSegment> before;
  {
    StreamEnv env(dir.path());
    Queue& q = env.Declare({{"x-stream-max-segment-size-bytes", FieldValue(int32_t{100})},
                            {"x-max-length-bytes", FieldValue(int32_t{300})}});
    env.Publish(q, 45);
    before.assign(q.stream()->segments().begin(), q.stream()->segments().end());
    env.run.Settle();
    env.Publish(q, 5);  // never committed: a crash loses them, unconfirmed
  }
  StreamEnv env(dir.path());
  Queue& q = env.Find();
  ASSERT_NE(q.stream(), nullptr);
  EXPECT_EQ(std::vector<storage::StreamSegment>(q.stream()->segments().begin(), q.stream()->segments().end()),
            before);
  EXPECT_EQ(q.stream()->next_offset(), 45u);
  env.Publish(q, 1);
  env.run.Settle();
  TestConsumer c(100);
  q.AddStreamConsumer(&c, StreamOffset{StreamOffset::Kind::kFirst});
  q.Dispatch();
  ASSERT_FALSE(c.got.empty());
  EXPECT_EQ(c.got.front().seq, before.front().first);
  EXPECT_EQ(c.got.back().seq, 45u);
  EXPECT_EQ(OffsetHeader(c.got.back()), 45);
  q.RemoveConsumer(&c);
}

}  // namespace
}  // namespace warren::broker
