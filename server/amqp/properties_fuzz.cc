// libFuzzer target: content header frame payloads (class-id, weight, body-size, raw properties)
// and the raw basic properties in them. Invariants:
//  - DecodeProperties and ValidateProperties give the same verdict, and DecodeContentHeader
//    accepts exactly the headers whose properties validate;
//  - on valid properties the per-message fast paths (Peek*) agree with the full decode;
//  - decoded properties re-encode to properties that decode to the same value, stably.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "server/amqp/properties.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

// Peek* return views; the full decode owns strings.
bool SameString(const std::optional<std::string_view>& peeked, const std::optional<std::string>& decoded) {
  return peeked.has_value() == decoded.has_value() && (!peeked || *peeked == *decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warren::amqp;
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  constexpr size_t kFixed = 12;  // class-id u16, weight u16, body-size u64
  const std::string_view raw = payload.substr(std::min(size, kFixed));

  ContentHeader header;
  const bool header_ok = DecodeContentHeader(payload, &header);
  const bool valid = ValidateProperties(raw);
  Check(header_ok == (size >= kFixed && valid));
  if (header_ok) Check(header.raw_properties.data() == raw.data() && header.raw_properties.size() == raw.size());

  BasicProperties props;
  Check(DecodeProperties(raw, &props) == valid);
  if (!valid) {
    // The fast paths only have to stay inside the input.
    PeekDeliveryMode(raw);
    PeekPriority(raw);
    PeekExpiration(raw);
    PeekReplyTo(raw);
    std::optional<FieldTable> headers;
    PeekHeaders(raw, &headers);
    return 0;
  }
  Check(PeekDeliveryMode(raw) == props.delivery_mode);
  Check(PeekPriority(raw) == props.priority);
  Check(SameString(PeekExpiration(raw), props.expiration));
  Check(SameString(PeekReplyTo(raw), props.reply_to));
  std::optional<FieldTable> headers;
  Check(PeekHeaders(raw, &headers) && headers == props.headers);

  std::string encoded;
  ByteWriter w(encoded);
  EncodeProperties(props, w);
  BasicProperties again;
  Check(DecodeProperties(encoded, &again) && again == props);
  std::string reencoded;
  ByteWriter w2(reencoded);
  EncodeProperties(again, w2);
  Check(reencoded == encoded);
  return 0;
}
