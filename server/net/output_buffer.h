// Bytes waiting to be written to a socket: small data copied into one contiguous buffer, large
// message bodies referenced in place (pinned by a MessageRef) so they reach the kernel without a
// copy. Buffers() yields one gather list, so many frames go out in one writev.
//
// Thread: owned by the connection's thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <asio/buffer.hpp>

#include "server/amqp/protocol.h"
#include "server/broker/message.h"

namespace warren::net {

class OutputBuffer {
 public:
  // Bodies at least this large are referenced instead of copied.
  static constexpr size_t kReferenceThreshold = 4096;

  // Small data is appended here directly.
  std::string& bytes() { return bytes_; }
  // Appends `data`, which lives inside `owner`: referenced if large, copied otherwise.
  void AppendBody(std::string_view data, const broker::MessageRef& owner);

  // The dialect method frames appended here are encoded in: the connection's (kept by Clear).
  amqp::Protocol protocol() const { return protocol_; }
  void set_protocol(amqp::Protocol protocol) { protocol_ = protocol; }

  size_t size() const { return bytes_.size() + referenced_bytes_; }
  bool empty() const { return size() == 0; }
  // The gather list for everything appended, in order. Valid until the next mutation.
  void Buffers(std::vector<asio::const_buffer>& out) const;
  void Clear();
  // Capacity an idle connection keeps per buffer.
  static constexpr size_t kIdleCapacity = 4096;
  // REQUIRES: empty(). The connection's output has drained: gives back capacity past kIdleCapacity
  // (a burst's), so an idle connection costs little.
  void ReleaseIdleCapacity();

 private:
  struct Reference {
    size_t position;  // offset in bytes_ where the referenced data belongs
    std::string_view data;
  };
  std::string bytes_;
  std::vector<Reference> references_;
  std::vector<broker::MessageRef> pins_;
  size_t referenced_bytes_ = 0;
  amqp::Protocol protocol_ = amqp::Protocol::k0_9_1;
};

}  // namespace warren::net
