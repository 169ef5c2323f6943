#include "server/amqp/frame_parser.h"

#include "server/amqp/byte_buffer.h"
#include "server/amqp/constants.h"

namespace warren::amqp {

FrameParse ParseFrame(std::string_view data, uint32_t max_payload, Frame* frame, size_t* frame_size) {
  *frame_size = 0;
  if (data.size() < kFrameHeaderSize) return FrameParse::kNeedMore;
  ByteReader header(data.substr(0, kFrameHeaderSize));
  frame->type = header.ReadU8();
  frame->channel = header.ReadU16();
  const uint32_t size = header.ReadU32();
  frame->payload = {};
  if (size > max_payload) {
    *frame_size = size_t{size} + kFrameOverhead;
    return FrameParse::kTooLarge;
  }
  *frame_size = size_t{size} + kFrameOverhead;
  if (data.size() < *frame_size) return FrameParse::kNeedMore;
  if (static_cast<uint8_t>(data[*frame_size - 1]) != kFrameEnd) return FrameParse::kBadFrameEnd;
  frame->payload = data.substr(kFrameHeaderSize, size);
  return FrameParse::kFrame;
}

}  // namespace warren::amqp
