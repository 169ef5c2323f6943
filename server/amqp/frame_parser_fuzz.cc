// libFuzzer target: the frame splitter over an arbitrary byte stream, as Connection feeds it.
// The first input byte picks the payload limit (the pre-tune 4096 or a negotiated frame_max).
// Invariants: a frame's payload lies inside the input and its size is payload + 8; the splitter
// consumes exactly the frame's size and never claims bytes past the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/amqp/frame_parser.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr uint32_t kLimits[] = {0, 4096, 131072, 0xFFFFFFFFu};
  const uint32_t max_payload = kLimits[data[0] % 4];
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  while (true) {
    warren::amqp::Frame frame;
    size_t frame_size = 0;
    const auto result = warren::amqp::ParseFrame(stream, max_payload, &frame, &frame_size);
    if (result != warren::amqp::FrameParse::kFrame) {
      Check(frame.payload.empty());
      if (result == warren::amqp::FrameParse::kTooLarge) Check(frame_size > size_t{max_payload} + 8);
      if (result == warren::amqp::FrameParse::kBadFrameEnd) Check(frame_size <= stream.size());
      return 0;
    }
    Check(frame_size == frame.payload.size() + 8 && frame_size <= stream.size());
    Check(frame.payload.data() == stream.data() + 7);
    Check(static_cast<uint8_t>(stream[frame_size - 1]) == 0xCE);
    stream.remove_prefix(frame_size);
  }
}
