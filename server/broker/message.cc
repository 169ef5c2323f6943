#include "server/broker/message.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "common/dcheck.h"
#include "server/amqp/properties.h"
#include "server/broker/memory.h"
#include "server/broker/queue_arguments.h"

namespace warren::broker {

MessageRef Message::Create(std::string_view exchange, std::string_view routing_key,
                           std::string_view raw_properties, uint64_t body_size, MemoryAccount* account) {
  return MessageRef(Allocate(exchange, routing_key, raw_properties, body_size, body_size, account));
}

Message* Message::Allocate(std::string_view exchange, std::string_view routing_key, std::string_view raw_properties,
                           uint64_t body_size, uint64_t capacity, MemoryAccount* account) {
  // Short strings are at most 255 bytes on the wire; callers pass decoded shortstrs.
  exchange = exchange.substr(0, 255);
  routing_key = routing_key.substr(0, 255);
  size_t bytes = sizeof(Message) + exchange.size() + routing_key.size() + raw_properties.size() +
                 static_cast<size_t>(capacity);
  void* mem = ::operator new(bytes);
  auto* m = new (mem) Message();
  m->exchange_len_ = static_cast<uint8_t>(exchange.size());
  m->routing_key_len_ = static_cast<uint8_t>(routing_key.size());
  m->properties_len_ = static_cast<uint32_t>(raw_properties.size());
  m->body_size_ = body_size;
  m->account_ = account;
  if (account != nullptr) account->Add(MemoryUse::kMessages, bytes);
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
  return m;
}

void Message::FillBody(std::string_view chunk) {
  WARREN_DCHECK(body_filled() + chunk.size() <= body_size());
  std::memcpy(const_cast<char*>(body_data()) + body_filled_, chunk.data(), chunk.size());
  body_filled_ += chunk.size();
}

MessageBuilder::MessageBuilder(std::string_view exchange, std::string_view routing_key,
                               std::string_view raw_properties, uint64_t body_size, MemoryAccount* account)
    : message_(Message::Allocate(exchange, routing_key, raw_properties, body_size, UpfrontCapacity(body_size), nullptr)),
      capacity_(UpfrontCapacity(body_size)),
      account_(account) {
  if (account_ != nullptr) account_->Add(MemoryUse::kAssembly, allocated());
}

MessageBuilder::~MessageBuilder() {
  if (account_ != nullptr && message_) account_->Sub(MemoryUse::kAssembly, allocated());
}

MessageRef MessageBuilder::Finish() {
  // Complete, so the block is exactly the size Message::allocated_bytes() reports at release.
  if (account_ != nullptr) {
    account_->Sub(MemoryUse::kAssembly, allocated());
    message_->account_ = account_;
    account_->Add(MemoryUse::kMessages, message_->allocated_bytes());
  }
  return std::move(message_);
}

uint64_t MessageBuilder::allocated() const { return sizeof(Message) + message_->prefix_size() + capacity_; }

uint64_t MessageBuilder::AllocatedAfter(size_t chunk) const {
  const uint64_t needed = message_->body_filled() + chunk;
  if (needed <= capacity_) return allocated();
  // The last piece makes it exact; otherwise double, so growing to N bytes copies < 2N.
  const uint64_t grown = needed == message_->body_size() ? needed : std::min(message_->body_size(),
                                                                             std::max(needed, 2 * capacity_));
  return sizeof(Message) + message_->prefix_size() + grown;
}

void MessageBuilder::Append(std::string_view chunk) {
  const uint64_t target = AllocatedAfter(chunk.size()) - sizeof(Message) - message_->prefix_size();
  if (target > capacity_) {
    const Message& old = *message_;
    const uint64_t before = allocated();
    Message* grown =
        Message::Allocate(old.exchange(), old.routing_key(), old.raw_properties(), old.body_size(), target, nullptr);
    std::memcpy(const_cast<char*>(grown->body_data()), old.body_data(), old.body_filled());
    grown->body_filled_ = old.body_filled_;
    message_ = MessageRef(grown);
    capacity_ = target;
    if (account_ != nullptr) {
      account_->Sub(MemoryUse::kAssembly, before);
      account_->Add(MemoryUse::kAssembly, allocated());
    }
  }
  message_->FillBody(chunk);
}

void Message::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (account_ != nullptr) account_->Sub(MemoryUse::kMessages, allocated_bytes());
    this->~Message();
    ::operator delete(this);
  }
}

}  // namespace warren::broker
