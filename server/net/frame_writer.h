// Appends complete AMQP frames to an OutputBuffer.
#pragma once

#include <cstdint>

#include "server/amqp/byte_buffer.h"
#include "server/amqp/constants.h"
#include "server/amqp/methods.h"
#include "server/broker/message.h"
#include "server/net/output_buffer.h"

namespace warren::net {

// Encoded in out.protocol().
template <typename M>
void WriteMethodFrame(OutputBuffer& out, uint16_t channel, const M& method) {
  std::string& b = out.bytes();
  const size_t start = b.size();
  amqp::ByteWriter w(b);
  w.WriteU8(amqp::kFrameMethod);
  w.WriteU16(channel);
  w.WriteU32(0);
  method.Encode(w, out.protocol());
  w.PatchU32(start + 3, static_cast<uint32_t>(b.size() - start - amqp::kFrameHeaderSize));
  w.WriteU8(amqp::kFrameEnd);
}

// Writes the content header and body frames of `message`, splitting the body so that no frame
// exceeds frame_max. REQUIRES: frame_max > kFrameOverhead.
void WriteContentFrames(OutputBuffer& out, uint16_t channel, uint32_t frame_max, const broker::MessageRef& message);
// The same with other raw properties than the message's (a delivery that adds a header).
void WriteContentFrames(OutputBuffer& out, uint16_t channel, uint32_t frame_max, const broker::MessageRef& message,
                        std::string_view raw_properties);

void WriteHeartbeatFrame(OutputBuffer& out);

}  // namespace warren::net
