#include "server/broker/message.h"

#include <cstring>
#include <new>

#include "common/dcheck.h"
#include "server/amqp/properties.h"
#include "server/broker/queue_arguments.h"

namespace warren::broker {

MessageRef Message::Create(std::string_view exchange, std::string_view routing_key,
                           std::string_view raw_properties, uint64_t body_size) {
  // Short strings are at most 255 bytes on the wire; callers pass decoded shortstrs.
  exchange = exchange.substr(0, 255);
  routing_key = routing_key.substr(0, 255);
  size_t bytes = sizeof(Message) + exchange.size() + routing_key.size() + raw_properties.size() +
                 static_cast<size_t>(body_size);
  void* mem = ::operator new(bytes);
  auto* m = new (mem) Message();
  m->exchange_len_ = static_cast<uint8_t>(exchange.size());
  m->routing_key_len_ = static_cast<uint8_t>(routing_key.size());
  m->properties_len_ = static_cast<uint32_t>(raw_properties.size());
  m->body_size_ = body_size;
  char* p = m->data();
  std::memcpy(p, exchange.data(), exchange.size());
  p += exchange.size();
  std::memcpy(p, routing_key.data(), routing_key.size());
  p += routing_key.size();
  std::memcpy(p, raw_properties.data(), raw_properties.size());
  m->persistent_ = amqp::PeekDeliveryMode(raw_properties) == std::optional<uint8_t>(2);
  if (auto expiration = amqp::PeekExpiration(raw_properties)) [[unlikely]] {
    auto ttl = ParseExpiration(*expiration);
    m->expiration_ = ttl ? Expiration::kValid : Expiration::kInvalid;
    m->ttl_ = ttl.value_or(0);
  }
  return MessageRef(m);
}

void Message::FillBody(std::string_view chunk) {
  WARREN_DCHECK(body_filled() + chunk.size() <= body_size());
  std::memcpy(const_cast<char*>(body_data()) + body_filled_, chunk.data(), chunk.size());
  body_filled_ += chunk.size();
}

void Message::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    this->~Message();
    ::operator delete(this);
  }
}

}  // namespace warren::broker
