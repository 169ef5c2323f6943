// A fixed-size log-linear histogram of non-negative integers (HdrHistogram's layout, reduced):
// values below 64 have a bucket each; above, every power-of-two range is split into 32 buckets,
// so a reported value is within 1/32 (about 3%) above the recorded one. No allocation per
// sample; one instance is about 11 KiB.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace warren::perf {

class Histogram {
 public:
  static constexpr int kSubBits = 5;  // 32 buckets per power of two
  static constexpr int kMaxBits = 48;  // values saturate at 2^48 - 1
  static constexpr size_t kBuckets = (2u << kSubBits) + (kMaxBits - kSubBits - 1) * (1u << kSubBits);

  void Record(uint64_t value) {
    ++counts_[Index(value)];
    ++total_;
    if (value > max_) max_ = value;
  }
  void Add(const Histogram& other);
  void Reset() { *this = Histogram(); }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  // The smallest bucket bound with at least `percentile`% of the samples at or below it (the
  // largest value its bucket holds, capped at max()); 0 when empty.
  uint64_t Percentile(double percentile) const;

  static size_t Index(uint64_t value);
  // The largest value that Index maps to `index`.
  static uint64_t UpperBound(size_t index);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace warren::perf
