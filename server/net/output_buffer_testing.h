// Test helper: what a gather write of an OutputBuffer would send, as one string.
#pragma once

#include <string>
#include <vector>

#include <asio/buffer.hpp>

#include "server/net/output_buffer.h"

namespace warren::net::testing {

inline std::string GatheredBytes(const OutputBuffer& out) {
  std::vector<asio::const_buffer> buffers;
  out.Buffers(buffers);
  std::string all;
  for (const auto& b : buffers) all.append(static_cast<const char*>(b.data()), b.size());
  return all;
}

}  // namespace warren::net::testing
