#include "server/net/output_buffer.h"

namespace warren::net {

void OutputBuffer::AppendBody(std::string_view data, const broker::MessageRef& owner) {
  if (data.size() < kReferenceThreshold) {
    bytes_.append(data);
    return;
  }
  references_.push_back(Reference{bytes_.size(), data});
  if (pins_.empty() || pins_.back().get() != owner.get()) pins_.push_back(owner);
  referenced_bytes_ += data.size();
}

void OutputBuffer::Buffers(std::vector<asio::const_buffer>& out) const {
  out.clear();
  size_t copied_from = 0;
  for (const Reference& ref : references_) {
    if (ref.position > copied_from) out.emplace_back(bytes_.data() + copied_from, ref.position - copied_from);
    out.emplace_back(ref.data.data(), ref.data.size());
    copied_from = ref.position;
  }
  if (bytes_.size() > copied_from) out.emplace_back(bytes_.data() + copied_from, bytes_.size() - copied_from);
}

void OutputBuffer::Clear() {
  bytes_.clear();
  references_.clear();
  pins_.clear();
  referenced_bytes_ = 0;
  // Keep the capacity of a typical burst but give back what a huge one grew.
  if (bytes_.capacity() > (4u << 20)) std::string().swap(bytes_);
}

void OutputBuffer::ReleaseIdleCapacity() {
  if (bytes_.capacity() > kIdleCapacity) std::string().swap(bytes_);
  if (references_.capacity() * sizeof(Reference) > kIdleCapacity) std::vector<Reference>().swap(references_);
  if (pins_.capacity() * sizeof(broker::MessageRef) > kIdleCapacity) std::vector<broker::MessageRef>().swap(pins_);
}

}  // namespace warren::net
