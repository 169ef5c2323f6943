// The AMQP dialects Warren speaks, and which protocol header asks for which (as RabbitMQ 3.10).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace warren::amqp {

enum class Protocol : uint8_t {
  k0_9_1,  // also what AMQP 0-9 clients get: RabbitMQ serves them 0-9-1
  k0_8,    // RabbitMQ's 0-8 (the 0-8 spec plus queue.unbind and basic.recover)
};

// The 8-octet header a client opens with.
inline constexpr size_t kProtocolHeaderSize = 8;

// The protocol a header selects; nullopt for any other header (refused with 0-9-1's header).
// REQUIRES: header.size() == kProtocolHeaderSize.
constexpr std::optional<Protocol> ProtocolForHeader(std::string_view header) {
  using namespace std::string_view_literals;
  if (header == "AMQP\x00\x00\x09\x01"sv || header == "AMQP\x01\x01\x00\x09"sv) return Protocol::k0_9_1;
  // 0-8 as most clients send it, and the header printed in the 0-8 spec (py-amqplib sends that).
  if (header == "AMQP\x01\x01\x08\x00"sv || header == "AMQP\x01\x01\x09\x01"sv) return Protocol::k0_8;
  return std::nullopt;
}

struct ProtocolVersion {
  uint8_t major;
  uint8_t minor;
};

// The version connection.start announces: 0-9 for 0-9-1 (as RabbitMQ), 8-0 for 0-8.
constexpr ProtocolVersion StartVersion(Protocol protocol) {
  return protocol == Protocol::k0_8 ? ProtocolVersion{8, 0} : ProtocolVersion{0, 9};
}

// As RabbitMQ's management API shows a connection's protocol (0-9 clients appear as 0-9-1).
constexpr std::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::k0_8 ? "AMQP 0-8" : "AMQP 0-9-1";
}

}  // namespace warren::amqp
