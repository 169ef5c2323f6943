// Splits AMQP frames out of a byte stream. Pure: no I/O, no allocation; the returned payload is a
// view into the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace warren::amqp {

struct Frame {
  uint8_t type = 0;
  uint16_t channel = 0;
  std::string_view payload;
};

enum class FrameParse {
  kFrame,        // *frame is set; *frame_size bytes of the input are consumed
  kNeedMore,     // the input holds a prefix of a frame; *frame_size is its total size when known (else 0)
  kTooLarge,     // the declared payload size exceeds max_payload; *frame is set without payload
  kBadFrameEnd,  // the frame-end octet is not 0xCE; *frame is set without payload
};

// Parses the frame at the start of `data`. A payload of up to `max_payload` octets is accepted
// (RabbitMQ tolerates payloads of frame_max itself, for clients that forget the 8 octets of
// frame overhead).
FrameParse ParseFrame(std::string_view data, uint32_t max_payload, Frame* frame, size_t* frame_size);

}  // namespace warren::amqp
