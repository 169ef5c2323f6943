#include "server/net/frame_writer.h"

#include <algorithm>

#include "common/dcheck.h"
#include "server/amqp/properties.h"

namespace warren::net {

void WriteContentFrames(OutputBuffer& out, uint16_t channel, uint32_t frame_max, const broker::MessageRef& message) {
  WriteContentFrames(out, channel, frame_max, message, message->raw_properties());
}

void WriteContentFrames(OutputBuffer& out, uint16_t channel, uint32_t frame_max, const broker::MessageRef& message,
                        std::string_view raw_properties) {
  WARREN_DCHECK(frame_max > amqp::kFrameOverhead);
  std::string& b = out.bytes();
  amqp::ByteWriter w(b);
  const size_t start = b.size();
  w.WriteU8(amqp::kFrameHeader);
  w.WriteU16(channel);
  w.WriteU32(0);
  amqp::EncodeContentHeader(amqp::kClassBasic, message->body_size(), raw_properties, w);
  w.PatchU32(start + 3, static_cast<uint32_t>(b.size() - start - amqp::kFrameHeaderSize));
  w.WriteU8(amqp::kFrameEnd);

  const size_t chunk = frame_max - amqp::kFrameOverhead;
  std::string_view body = message->body();
  while (!body.empty()) {
    std::string_view piece = body.substr(0, chunk);
    body.remove_prefix(piece.size());
    w.WriteU8(amqp::kFrameBody);
    w.WriteU16(channel);
    w.WriteU32(static_cast<uint32_t>(piece.size()));
    out.AppendBody(piece, message);
    w.WriteU8(amqp::kFrameEnd);
  }
}

void WriteHeartbeatFrame(OutputBuffer& out) {
  static constexpr char kHeartbeat[] = {amqp::kFrameHeartbeat, 0, 0, 0, 0, 0, 0, static_cast<char>(amqp::kFrameEnd)};
  out.bytes().append(kHeartbeat, sizeof(kHeartbeat));
}

}  // namespace warren::net
