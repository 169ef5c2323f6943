// Tests for the generated method codec: every method round-trips with non-default values in every
// field (a typed test over all alternatives of Method), bit packing against hand-written bytes,
// unknown ids, truncation and trailing bytes, the RabbitMQ-only connection methods, and every
// difference of RabbitMQ's AMQP 0-8 dialect.
#include "server/amqp/methods.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <variant>

#include "server/amqp/methods_testing.h"

namespace warren::amqp {
namespace {

using namespace std::string_literals;
using test_support::SampleMethod;

template <typename T>
std::string Encode(const T& m, Protocol protocol = Protocol::k0_9_1) {
  std::string out;
  ByteWriter w(out);
  m.Encode(w, protocol);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Typed tests over every alternative of Method.

template <typename V>
struct VariantTypes;
template <typename... Ts>
struct VariantTypes<std::variant<Ts...>> {
  using type = ::testing::Types<Ts...>;
};

struct MethodTypeName {
  template <typename T>
  static std::string GetName(int) {
    std::string name(T::kName);
    for (char& c : name) {
      if (c == '.' || c == '-') c = '_';
    }
    return name;
  }
};

template <typename T>
class EveryMethodTest : public ::testing::Test {};
TYPED_TEST_SUITE(EveryMethodTest, VariantTypes<Method>::type, MethodTypeName);

TYPED_TEST(EveryMethodTest, SampleRoundTrips) {
  using T = TypeParam;
  const T sample = SampleMethod<T>();
  const std::string wire = Encode(sample);
  ASSERT_GE(wire.size(), 4u);
  EXPECT_EQ(wire.substr(0, 4), std::string({static_cast<char>(T::kClassId >> 8),
                                             static_cast<char>(T::kClassId & 0xff),
                                             static_cast<char>(T::kMethodId >> 8),
                                             static_cast<char>(T::kMethodId & 0xff)}));

  auto decoded = DecodeMethod(wire);
  ASSERT_TRUE(decoded.has_value());
  ASSERT_TRUE(std::holds_alternative<T>(*decoded));
  EXPECT_EQ(std::get<T>(*decoded), sample);
  EXPECT_EQ(Encode(std::get<T>(*decoded)), wire);

  std::string via_variant;
  ByteWriter w(via_variant);
  EncodeMethod(*decoded, w);
  EXPECT_EQ(via_variant, wire);

  EXPECT_EQ(MethodIds(*decoded), std::make_pair(T::kClassId, T::kMethodId));
  EXPECT_EQ(MethodName(*decoded), T::kName);
  EXPECT_EQ(MethodName(T::kClassId, T::kMethodId), T::kName);
}

TYPED_TEST(EveryMethodTest, SampleDiffersFromDefaultWhenThereAreFields) {
  using T = TypeParam;
  const std::string sample = Encode(SampleMethod<T>());
  const std::string defaults = Encode(T{});
  if (defaults.size() > 4) {
    EXPECT_NE(sample, defaults);
    EXPECT_FALSE(SampleMethod<T>() == T{});
  } else {
    EXPECT_EQ(sample, defaults);  // no arguments at all
  }
}

TYPED_TEST(EveryMethodTest, DefaultRoundTrips) {
  using T = TypeParam;
  const std::string wire = Encode(T{});
  auto decoded = DecodeMethod(wire);
  ASSERT_TRUE(decoded.has_value());
  ASSERT_TRUE(std::holds_alternative<T>(*decoded));
  EXPECT_EQ(std::get<T>(*decoded), T{});
}

TYPED_TEST(EveryMethodTest, DecodeArgumentsReadsOnlyArguments) {
  using T = TypeParam;
  const std::string wire = Encode(SampleMethod<T>());
  ByteReader r(std::string_view(wire).substr(4));
  T m;
  ASSERT_TRUE(m.DecodeArguments(r));
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(m, SampleMethod<T>());
}

TYPED_TEST(EveryMethodTest, EveryTruncationIsMalformed) {
  using T = TypeParam;
  const std::string wire = Encode(SampleMethod<T>());
  for (size_t n = 0; n < wire.size(); ++n) {
    SCOPED_TRACE(n);
    auto decoded = DecodeMethod(std::string_view(wire).substr(0, n));
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error(), DecodeError::kMalformed);
  }
}

TYPED_TEST(EveryMethodTest, TrailingByteIsMalformed) {
  using T = TypeParam;
  for (const std::string& wire : {Encode(SampleMethod<T>()), Encode(T{})}) {
    auto decoded = DecodeMethod(wire + '\0');
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error(), DecodeError::kMalformed);
  }
}

TYPED_TEST(EveryMethodTest, RoundTripsIn0_8) {
  using T = TypeParam;
  const std::string wire = Encode(SampleMethod<T>(), Protocol::k0_8);
  auto decoded = DecodeMethod(wire, Protocol::k0_8);
  if constexpr (!T::kIn0_8) {
    // 0-8 has no such method: its ids are unknown there or name another method (10,60 is close).
    EXPECT_FALSE(decoded.has_value() && std::holds_alternative<T>(*decoded));
  } else {
    ASSERT_TRUE(decoded.has_value());
    ASSERT_TRUE(std::holds_alternative<T>(*decoded));
    EXPECT_EQ(Encode(std::get<T>(*decoded), Protocol::k0_8), wire);
    for (size_t n = 0; n < wire.size(); ++n) {
      auto truncated = DecodeMethod(std::string_view(wire).substr(0, n), Protocol::k0_8);
      ASSERT_FALSE(truncated.has_value()) << n;
      EXPECT_EQ(truncated.error(), DecodeError::kMalformed);
    }
    auto trailing = DecodeMethod(wire + '\0', Protocol::k0_8);
    ASSERT_FALSE(trailing.has_value());
    EXPECT_EQ(trailing.error(), DecodeError::kMalformed);
  }
}

// ---------------------------------------------------------------------------------------------
// The method set as a whole.

template <typename... Ts>
std::vector<std::pair<uint16_t, uint16_t>> AllIds(std::variant<Ts...>*) {
  return {{Ts::kClassId, Ts::kMethodId}...};
}
template <typename... Ts>
std::vector<std::string_view> ContentMethods(std::variant<Ts...>*) {
  std::vector<std::string_view> out;
  ((Ts::kHasContent ? out.push_back(Ts::kName) : void()), ...);
  return out;
}

TEST(MethodSetTest, IdsAreUniqueAndNamed) {
  const auto ids = AllIds(static_cast<Method*>(nullptr));
  EXPECT_EQ(ids.size(), std::variant_size_v<Method>);
  EXPECT_EQ(ids.size(), 66u);  // 60 in the extended spec XML + 4 RabbitMQ connection methods + access
  std::set<std::pair<uint16_t, uint16_t>> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  for (auto [c, m] : ids) EXPECT_NE(MethodName(c, m), "") << c << "," << m;
}

TEST(MethodSetTest, ContentMethods) {
  EXPECT_EQ(ContentMethods(static_cast<Method*>(nullptr)),
            (std::vector<std::string_view>{"basic.publish", "basic.return", "basic.deliver",
                                           "basic.get-ok"}));
}

TEST(MethodSetTest, RabbitMqConnectionExtensions) {
  static_assert(method::ConnectionBlocked::kClassId == 10);
  static_assert(method::ConnectionBlocked::kMethodId == 60);
  static_assert(std::is_same_v<decltype(method::ConnectionBlocked::reason), std::string_view>);
  static_assert(method::ConnectionUnblocked::kMethodId == 61);
  static_assert(method::ConnectionUpdateSecret::kMethodId == 70);
  static_assert(
      std::is_same_v<decltype(method::ConnectionUpdateSecret::new_secret), std::string_view>);
  static_assert(std::is_same_v<decltype(method::ConnectionUpdateSecret::reason), std::string_view>);
  static_assert(method::ConnectionUpdateSecretOk::kClassId == 10);
  static_assert(method::ConnectionUpdateSecretOk::kMethodId == 71);
  EXPECT_EQ(MethodName(10, 60), "connection.blocked");
  EXPECT_EQ(MethodName(10, 61), "connection.unblocked");
  EXPECT_EQ(MethodName(10, 70), "connection.update-secret");
  EXPECT_EQ(MethodName(10, 71), "connection.update-secret-ok");

  // connection.blocked: reason is a shortstr.
  const std::string blocked_wire = "\x00\x0a\x00\x3c\x03low"s;
  auto blocked = DecodeMethod(blocked_wire);
  ASSERT_TRUE(blocked.has_value());
  EXPECT_EQ(std::get<method::ConnectionBlocked>(*blocked).reason, "low");
  // connection.update-secret: longstr then shortstr.
  const std::string secret_wire = "\x00\x0a\x00\x46\x00\x00\x00\x02pw\x01r"s;
  auto secret = DecodeMethod(secret_wire);
  ASSERT_TRUE(secret.has_value());
  const auto& s = std::get<method::ConnectionUpdateSecret>(*secret);
  EXPECT_EQ(s.new_secret, "pw");
  EXPECT_EQ(s.reason, "r");
  EXPECT_TRUE(DecodeMethod("\x00\x0a\x00\x3d"s).has_value());
  EXPECT_TRUE(DecodeMethod("\x00\x0a\x00\x47"s).has_value());
}

TEST(MethodSetTest, UnknownMethods) {
  for (std::string payload : {"\x00\x63\x00\x0a"s, "\x00\x3c\x00\x63"s, "\x00\x0a\x00\x00"s,
                              "\xff\xff\xff\xff"s, "\x00\x00\x00\x00"s,
                              "\x00\x3c\x00\x29" "args"s}) {
    auto decoded = DecodeMethod(payload);
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error(), DecodeError::kUnknownMethod);
  }
  EXPECT_EQ(MethodName(60, 99), "");
  EXPECT_EQ(MethodName(0, 0), "");
  EXPECT_EQ(MethodName(60, 40), "basic.publish");
}

TEST(MethodSetTest, ShortPayloadIsMalformed) {
  for (std::string payload : {""s, "\x00"s, "\x00\x3c"s, "\x00\x3c\x00"s}) {
    auto decoded = DecodeMethod(payload);
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error(), DecodeError::kMalformed);
  }
}

template <typename... Ts>
std::vector<std::string> AllSampleEncodings(std::variant<Ts...>*) {
  return {Encode(SampleMethod<Ts>())...};
}

TEST(MethodSetTest, MutatedEncodingsNeverCrash) {
  std::mt19937 rng(4242);
  const auto samples = AllSampleEncodings(static_cast<Method*>(nullptr));
  int decoded_ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = samples[rng() % samples.size()];
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    auto decoded = DecodeMethod(bytes);
    if (decoded) {
      // Whatever decodes must re-encode to a payload that decodes to the same method.
      std::string again;
      ByteWriter w(again);
      EncodeMethod(*decoded, w);
      auto twice = DecodeMethod(again);
      ASSERT_TRUE(twice.has_value());
      EXPECT_EQ(*twice, *decoded);
      ++decoded_ok;
    }
  }
  EXPECT_GT(decoded_ok, 0);
}

// ---------------------------------------------------------------------------------------------
// Hand-written wire bytes.

TEST(MethodWireTest, BasicPublishBits) {
  method::BasicPublish p;
  p.exchange = "ex";
  p.routing_key = "rk";
  const std::string prefix = "\x00\x3c\x00\x28" "\x00\x00" "\x02" "ex" "\x02" "rk"s;
  EXPECT_EQ(Encode(p), prefix + "\x00"s);
  p.mandatory = true;
  EXPECT_EQ(Encode(p), prefix + "\x01"s);
  p.immediate = true;
  EXPECT_EQ(Encode(p), prefix + "\x03"s);
  p.mandatory = false;
  EXPECT_EQ(Encode(p), prefix + "\x02"s);

  const std::string wire = prefix + "\x01"s;  // decoded views point into it
  auto decoded = DecodeMethod(wire);
  ASSERT_TRUE(decoded.has_value());
  const auto& d = std::get<method::BasicPublish>(*decoded);
  EXPECT_TRUE(d.mandatory);
  EXPECT_FALSE(d.immediate);
  EXPECT_EQ(d.exchange, "ex");
  EXPECT_EQ(d.routing_key, "rk");
}

TEST(MethodWireTest, QueueDeclareBits) {
  const std::string prefix = "\x00\x32\x00\x0a" "\x00\x00" "\x01q"s;
  const std::string table = "\x00\x00\x00\x00"s;
  method::QueueDeclare q;
  q.queue = "q";
  EXPECT_EQ(Encode(q), prefix + "\x00"s + table);
  q.passive = true;
  EXPECT_EQ(Encode(q), prefix + "\x01"s + table);
  q.passive = false;
  q.durable = true;
  EXPECT_EQ(Encode(q), prefix + "\x02"s + table);
  q.durable = false;
  q.exclusive = true;
  EXPECT_EQ(Encode(q), prefix + "\x04"s + table);
  q.exclusive = false;
  q.auto_delete = true;
  EXPECT_EQ(Encode(q), prefix + "\x08"s + table);
  q.auto_delete = false;
  q.no_wait = true;
  EXPECT_EQ(Encode(q), prefix + "\x10"s + table);
  q.passive = q.durable = q.exclusive = q.auto_delete = true;
  EXPECT_EQ(Encode(q), prefix + "\x1f"s + table);

  // passive + exclusive + no_wait, with an x-max-length argument.
  const std::string args = "\x00\x00\x00\x12" "\x0cx-max-length" "I\x00\x00\x00\x05"s;
  ASSERT_EQ(args.size(), 4u + 18u);
  const std::string wire = prefix + "\x15"s + args;
  auto decoded = DecodeMethod(wire);
  ASSERT_TRUE(decoded.has_value());
  const auto& d = std::get<method::QueueDeclare>(*decoded);
  EXPECT_TRUE(d.passive);
  EXPECT_FALSE(d.durable);
  EXPECT_TRUE(d.exclusive);
  EXPECT_FALSE(d.auto_delete);
  EXPECT_TRUE(d.no_wait);
  ASSERT_NE(d.arguments.Find("x-max-length"), nullptr);
  EXPECT_EQ(d.arguments.Find("x-max-length")->AsInt(), 5);
}

TEST(MethodWireTest, BasicDeliverSingleBitBetweenFields) {
  const std::string wire =
      "\x00\x3c\x00\x3c" "\x01" "c" "\x00\x00\x00\x00\x00\x00\x00\x07" "\x01" "\x00" "\x01r"s;
  auto decoded = DecodeMethod(wire);
  ASSERT_TRUE(decoded.has_value());
  const auto& d = std::get<method::BasicDeliver>(*decoded);
  EXPECT_EQ(d.consumer_tag, "c");
  EXPECT_EQ(d.delivery_tag, 7u);
  EXPECT_TRUE(d.redelivered);
  EXPECT_EQ(d.exchange, "");
  EXPECT_EQ(d.routing_key, "r");
  EXPECT_EQ(Encode(d), wire);
}

TEST(MethodWireTest, ConnectionTune) {
  const std::string wire = "\x00\x0a\x00\x1e" "\x07\xff" "\x00\x02\x00\x00" "\x00\x3c"s;
  auto decoded = DecodeMethod(wire);
  ASSERT_TRUE(decoded.has_value());
  const auto& t = std::get<method::ConnectionTune>(*decoded);
  EXPECT_EQ(t.channel_max, 2047);
  EXPECT_EQ(t.frame_max, 131072u);
  EXPECT_EQ(t.heartbeat, 60);
}

TEST(MethodWireTest, StringFieldsViewIntoPayload) {
  const std::string wire = "\x00\x3c\x00\x28" "\x00\x00" "\x02" "ex" "\x02" "rk" "\x00"s;
  auto decoded = DecodeMethod(wire);
  ASSERT_TRUE(decoded.has_value());
  const auto& p = std::get<method::BasicPublish>(*decoded);
  EXPECT_EQ(p.exchange.data(), wire.data() + 7);
  EXPECT_EQ(p.routing_key.data(), wire.data() + 10);
}

TEST(MethodWireTest, MalformedTableArgumentIsMalformed) {
  const std::string prefix = "\x00\x32\x00\x0a" "\x00\x00" "\x01q" "\x00"s;
  auto decoded = DecodeMethod(prefix + "\x00\x00\x00\x04" "\x01kZ\x00"s);  // unknown letter
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error(), DecodeError::kMalformed);
  decoded = DecodeMethod(prefix + "\x00\x00\x01\x00"s);  // table longer than payload
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error(), DecodeError::kMalformed);
}

TEST(MethodWireTest, ShortStrLongerThanRemainingIsMalformed) {
  auto decoded = DecodeMethod("\x00\x3c\x00\x28" "\x00\x00" "\x09" "ex"s);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error(), DecodeError::kMalformed);
}

// As RabbitMQ 3.10.8: 501 "Malformed UTF-8 in shortstr" for a queue, exchange or consumer tag
// that is not UTF-8, but basic.publish's exchange and routing key are taken as they are.
TEST(MethodWireTest, ShortStrsMustBeUtf8ExceptInBasicPublish) {
  method::QueueDeclare declare{.queue = "q\xff\xfe"};
  auto decoded = DecodeMethod(Encode(declare));
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error(), DecodeError::kMalformedUtf8);
  method::QueueBind bind{.queue = "q", .exchange = "amq.direct", .routing_key = "\xc0\xaf"};
  decoded = DecodeMethod(Encode(bind));
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error(), DecodeError::kMalformedUtf8);
  bind.routing_key = "\xe2\x82\xac";
  EXPECT_TRUE(DecodeMethod(Encode(bind)).has_value());
  method::BasicPublish publish{.exchange = "\xff", .routing_key = "\xfe"};
  EXPECT_TRUE(DecodeMethod(Encode(publish)).has_value());
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ's AMQP 0-8 (amqp-rabbitmq-0.8.json), checked against RabbitMQ 3.10.8's bytes.

template <typename... Ts>
std::vector<std::string_view> DifferentIn0_8(std::variant<Ts...>*) {
  std::vector<std::string_view> out;
  ((Ts::kIn0_8 && Encode(SampleMethod<Ts>()) != Encode(SampleMethod<Ts>(), Protocol::k0_8)
        ? out.push_back(Ts::kName)
        : void()),
   ...);
  return out;
}
template <typename... Ts>
std::vector<std::string_view> MissingIn0_8(std::variant<Ts...>*) {
  std::vector<std::string_view> out;
  ((Ts::kIn0_8 ? void() : out.push_back(Ts::kName)), ...);
  return out;
}

TEST(Method0_8Test, OnlyTheseMethodsDifferOnTheWire) {
  EXPECT_EQ(DifferentIn0_8(static_cast<Method*>(nullptr)),
            (std::vector<std::string_view>{"connection.close", "connection.close-ok", "channel.open-ok",
                                           "basic.consume"}));
  EXPECT_EQ(MissingIn0_8(static_cast<Method*>(nullptr)),
            (std::vector<std::string_view>{"connection.blocked", "connection.unblocked", "connection.update-secret",
                                           "connection.update-secret-ok", "exchange.bind", "exchange.bind-ok",
                                           "exchange.unbind", "exchange.unbind-ok", "basic.nack", "confirm.select",
                                           "confirm.select-ok"}));
}

TEST(Method0_8Test, ConnectionCloseIsMethod60) {
  const std::string close = Encode(method::ConnectionClose{.reply_code = 540, .reply_text = "NOT_IMPLEMENTED - x",
                                                          .class_id = 60, .method_id = 100},
                                   Protocol::k0_8);
  EXPECT_EQ(close, "\x00\x0a\x00\x3c\x02\x1c\x13NOT_IMPLEMENTED - x\x00\x3c\x00\x64"s);
  auto decoded = DecodeMethod(close, Protocol::k0_8);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<method::ConnectionClose>(*decoded).reply_code, 540);
  EXPECT_EQ(Encode(method::ConnectionCloseOk{}, Protocol::k0_8), "\x00\x0a\x00\x3d"s);
  EXPECT_TRUE(std::holds_alternative<method::ConnectionCloseOk>(*DecodeMethod("\x00\x0a\x00\x3d"s, Protocol::k0_8)));
  // 0-9-1's close ids are 0-8's connection.redirect, which Warren does not know.
  for (std::string payload : {"\x00\x0a\x00\x32\x00\xc8\x00\x00\x00\x00\x00"s, "\x00\x0a\x00\x33"s}) {
    auto other = DecodeMethod(payload, Protocol::k0_8);
    ASSERT_FALSE(other.has_value());
    EXPECT_EQ(other.error(), DecodeError::kUnknownMethod);
  }
}

TEST(Method0_8Test, ChannelOpenOkHasNoArguments) {
  EXPECT_EQ(Encode(method::ChannelOpenOk{.reserved_1 = "ignored"}, Protocol::k0_8), "\x00\x14\x00\x0b"s);
  EXPECT_TRUE(DecodeMethod("\x00\x14\x00\x0b"s, Protocol::k0_8).has_value());
  EXPECT_EQ(DecodeMethod("\x00\x14\x00\x0b\x00\x00\x00\x00"s, Protocol::k0_8).error(), DecodeError::kMalformed);
}

TEST(Method0_8Test, BasicConsumeHasNoArgumentsTable) {
  const std::string consume_0_8 = "\x00\x3c\x00\x14\x00\x01\x01q\x04" "ctag\x02"s;
  auto decoded = DecodeMethod(consume_0_8, Protocol::k0_8);
  ASSERT_TRUE(decoded.has_value());
  const auto& c = std::get<method::BasicConsume>(*decoded);
  EXPECT_EQ(c.queue, "q");
  EXPECT_EQ(c.consumer_tag, "ctag");
  EXPECT_TRUE(c.no_ack);
  EXPECT_TRUE(c.arguments.entries.empty());
  // The 0-9-1 form (with a table) is a malformed 0-8 consume, and the other way round (as RabbitMQ).
  EXPECT_EQ(DecodeMethod(consume_0_8 + "\x00\x00\x00\x00"s, Protocol::k0_8).error(), DecodeError::kMalformed);
  EXPECT_EQ(DecodeMethod(consume_0_8).error(), DecodeError::kMalformed);
}

TEST(Method0_8Test, RecoverAsyncRecoverAndAccessAreTheSameInBoth) {
  // Decoded methods view their input: it must outlive them.
  const std::string async_bytes = "\x00\x3c\x00\x64\x01"s, recover_bytes = "\x00\x3c\x00\x6e\x01"s,
                    request_bytes = "\x00\x1e\x00\x0a\x05/data\x1e"s;
  for (Protocol p : {Protocol::k0_9_1, Protocol::k0_8}) {
    auto async = DecodeMethod(async_bytes, p);
    ASSERT_TRUE(async.has_value());
    EXPECT_TRUE(std::get<method::BasicRecoverAsync>(*async).requeue);
    EXPECT_TRUE(std::holds_alternative<method::BasicRecover>(*DecodeMethod(recover_bytes, p)));
    auto request = DecodeMethod(request_bytes, p);
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ(std::get<method::AccessRequest>(*request).realm, "/data");
    EXPECT_EQ(Encode(method::AccessRequestOk{.ticket = 1}, p), "\x00\x1e\x00\x0b\x00\x01"s);
  }
}

TEST(Method0_8Test, ZeroNineOneOnlyMethodsAreUnknown) {
  for (std::string payload : {"\x00\x55\x00\x0a\x00"s, "\x00\x3c\x00\x78\x00\x00\x00\x00\x00\x00\x00\x01\x00"s,
                              "\x00\x0a\x00\x46\x00\x00\x00\x00\x00"s, "\x00\x46\x00\x0a"s}) {
    auto decoded = DecodeMethod(payload, Protocol::k0_8);
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error(), DecodeError::kUnknownMethod);
  }
}

}  // namespace
}  // namespace warren::amqp
