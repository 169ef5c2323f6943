// A published message: exchange, routing key, raw content-header properties and body, laid out in
// one allocation. Immutable once its body is filled; shared by reference count between every
// queue it was routed to and every connection writing it out, so a body is never copied between
// publish and delivery.
//
// Thread-safety: the reference count is atomic, but the last reference must be dropped on the
// broker thread (it updates the broker's MemoryAccount); the contents must only be written
// (FillBody) by the creating thread before the message is shared.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <utility>

#include "common/dcheck.h"

namespace warren::broker {

class MemoryAccount;
class Message;

// Intrusive reference to a Message.
class MessageRef {
 public:
  MessageRef() = default;
  explicit MessageRef(Message* m);  // adopts one reference
  MessageRef(const MessageRef& o);
  MessageRef(MessageRef&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  MessageRef& operator=(MessageRef o) noexcept {
    std::swap(m_, o.m_);
    return *this;
  }
  ~MessageRef();

  Message* get() const { return m_; }
  Message* operator->() const { return m_; }
  Message& operator*() const { return *m_; }
  explicit operator bool() const { return m_ != nullptr; }

 private:
  Message* m_ = nullptr;
};

class Message {
 public:
  // Allocates a message with room for a body of `body_size` bytes (filled later with FillBody).
  // The block's bytes are counted in `account` (MemoryUse::kMessages) until the last reference
  // goes; null: not counted (tests).
  static MessageRef Create(std::string_view exchange, std::string_view routing_key,
                           std::string_view raw_properties, uint64_t body_size, MemoryAccount* account);

  std::string_view exchange() const { return {data(), exchange_len_}; }
  std::string_view routing_key() const { return {data() + exchange_len_, routing_key_len_}; }
  // Property flags and property list exactly as received, so delivery re-sends them bit-exact.
  std::string_view raw_properties() const {
    return {data() + exchange_len_ + routing_key_len_, properties_len_};
  }
  std::string_view body() const { return {body_data(), static_cast<size_t>(body_size_)}; }
  uint64_t body_size() const { return body_size_; }
  uint64_t body_filled() const { return body_filled_; }
  bool complete() const { return body_filled_ == body_size_; }
  // delivery_mode == 2.
  bool persistent() const { return persistent_; }
  // The `expiration` property: kNone when absent, kValid with ttl() in milliseconds, kInvalid
  // when it is not a TTL RabbitMQ accepts (the publish is refused, see ParseExpiration).
  enum class Expiration : uint8_t { kNone, kValid, kInvalid };
  Expiration expiration() const { return expiration_; }
  bool has_ttl() const { return expiration_ == Expiration::kValid; }
  uint32_t ttl() const { return ttl_; }

  // Appends a chunk of body. REQUIRES: body_filled() + chunk.size() <= body_size().
  void FillBody(std::string_view chunk);

  // The store id of a body stored once for several durable queues; 0 when each queue's index
  // entry holds the body inline. REQUIRES (setter): the message is not shared yet.
  uint64_t body_id() const { return body_id_; }
  void set_body_id(uint64_t id) {
    WARREN_DCHECK(refs_.load(std::memory_order_relaxed) == 1);
    body_id_ = id;
  }
  // Where the message is counted (copies of it are counted there too).
  MemoryAccount* account() const { return account_; }

 private:
  friend class MessageRef;
  friend class MessageBuilder;
  Message() = default;
  // A message with room for `capacity` bytes of its `body_size`-byte body.
  static Message* Allocate(std::string_view exchange, std::string_view routing_key, std::string_view raw_properties,
                           uint64_t body_size, uint64_t capacity, MemoryAccount* account);
  // Header and data bytes before the body.
  size_t prefix_size() const { return exchange_len_ + routing_key_len_ + properties_len_; }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* body_data() const { return data() + exchange_len_ + routing_key_len_ + properties_len_; }
  void Unref();
  size_t allocated_bytes() const {
    return sizeof(Message) + exchange_len_ + routing_key_len_ + properties_len_ + static_cast<size_t>(body_size_);
  }

  std::atomic<uint32_t> refs_{1};
  uint8_t exchange_len_ = 0;
  uint8_t routing_key_len_ = 0;
  bool persistent_ = false;
  Expiration expiration_ = Expiration::kNone;  // fills padding: the header stays 48 bytes
  uint32_t properties_len_ = 0;
  uint32_t ttl_ = 0;
  uint64_t body_size_ = 0;
  uint64_t body_filled_ = 0;
  uint64_t body_id_ = 0;
  MemoryAccount* account_ = nullptr;
};

// Assembles a message whose body arrives in pieces (content body frames) without reserving a
// large declared size up front: the block grows as the body arrives, doubling each time (so at
// most about twice the body is copied, never quadratically), to exactly the declared size when
// the last piece comes. A content header declaring 128 MiB costs nothing until the bytes arrive,
// and the finished message is still one contiguous block. A body of at most kUpfrontBodyBytes
// (most messages) gets its room at once: one allocation per message.
//
// Thread: the creating (broker) thread; the message is not shared before Finish.
class MessageBuilder {
 public:
  // The bytes allocated so far are counted in `account` (MemoryUse::kAssembly) until Finish
  // moves the message to MemoryUse::kMessages; null: not counted (tests).
  static constexpr uint64_t kUpfrontBodyBytes = 16 * 1024;
  MessageBuilder(std::string_view exchange, std::string_view routing_key, std::string_view raw_properties,
                 uint64_t body_size, MemoryAccount* account);
  ~MessageBuilder();
  MessageBuilder(MessageBuilder&& o) noexcept
      : message_(std::move(o.message_)), capacity_(o.capacity_), account_(o.account_) {}
  MessageBuilder& operator=(MessageBuilder&&) = delete;

  // Bytes allocated for this message so far (header, properties and body room).
  uint64_t allocated() const;
  uint64_t body_size() const { return message_->body_size(); }
  uint64_t remaining() const { return message_->body_size() - message_->body_filled(); }
  bool complete() const { return message_->complete(); }
  // The allocation Append(chunk) would leave (allocated() when it needs no growth).
  uint64_t AllocatedAfter(size_t chunk) const;
  // REQUIRES: chunk.size() <= remaining().
  void Append(std::string_view chunk);
  // REQUIRES: complete(). The builder is empty afterwards.
  MessageRef Finish();

 private:
  static uint64_t UpfrontCapacity(uint64_t body_size) { return body_size <= kUpfrontBodyBytes ? body_size : 0; }
  MessageRef message_;
  uint64_t capacity_ = 0;  // body bytes allocated
  MemoryAccount* account_;
};

inline MessageRef::MessageRef(Message* m) : m_(m) {}
inline MessageRef::MessageRef(const MessageRef& o) : m_(o.m_) {
  if (m_) m_->refs_.fetch_add(1, std::memory_order_relaxed);
}
inline MessageRef::~MessageRef() {
  if (m_) m_->Unref();
}

}  // namespace warren::broker
