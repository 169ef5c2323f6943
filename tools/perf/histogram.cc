#include "tools/perf/histogram.h"

#include <bit>
#include <cmath>

namespace warren::perf {

namespace {
constexpr uint64_t kLinear = 2u << Histogram::kSubBits;  // values below have a bucket each
constexpr uint64_t kHalf = 1u << Histogram::kSubBits;
constexpr uint64_t kSaturate = (uint64_t{1} << Histogram::kMaxBits) - 1;
}  // namespace

size_t Histogram::Index(uint64_t value) {
  if (value > kSaturate) value = kSaturate;
  if (value < kLinear) return value;
  int shift = std::bit_width(value) - 1 - kSubBits;  // value >> shift is in [kHalf, 2*kHalf)
  return kLinear + (shift - 1) * kHalf + ((value >> shift) - kHalf);
}

uint64_t Histogram::UpperBound(size_t index) {
  if (index < kLinear) return index;
  uint64_t shift = (index - kLinear) / kHalf + 1;
  uint64_t mantissa = (index - kLinear) % kHalf + kHalf;
  return ((mantissa + 1) << shift) - 1;
}

void Histogram::Add(const Histogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  if (other.max_ > max_) max_ = other.max_;
}

uint64_t Histogram::Percentile(double percentile) const {
  if (total_ == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(total_)));
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return UpperBound(i) < max_ ? UpperBound(i) : max_;
  }
  return max_;
}

}  // namespace warren::perf
