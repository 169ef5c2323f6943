#include "tools/perf/histogram.h"

#include <gtest/gtest.h>

namespace warren::perf {
namespace {

TEST(HistogramTest, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 50; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 25u);
  EXPECT_EQ(h.Percentile(100), 50u);
  EXPECT_EQ(h.max(), 50u);
}

TEST(HistogramTest, BucketsCoverEveryValueOnceAndInOrder) {
  for (size_t i = 1; i < Histogram::kBuckets; ++i) {
    uint64_t low = Histogram::UpperBound(i - 1) + 1;
    EXPECT_EQ(Histogram::Index(low), i);
    EXPECT_EQ(Histogram::Index(Histogram::UpperBound(i)), i);
  }
  EXPECT_EQ(Histogram::Index(~uint64_t{0}), Histogram::kBuckets - 1);
}

TEST(HistogramTest, RelativeErrorIsBounded) {
  for (uint64_t v = 1; v < (uint64_t{1} << 40); v = v * 3 + 7) {
    uint64_t bound = Histogram::UpperBound(Histogram::Index(v));
    EXPECT_GE(bound, v);
    EXPECT_LE(static_cast<double>(bound - v), static_cast<double>(v) / 32.0 + 1) << v;
  }
}

TEST(HistogramTest, PercentilesOfAUniformSpread) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v);
  EXPECT_NEAR(static_cast<double>(h.Percentile(50)), 50000, 50000 / 32.0);
  EXPECT_NEAR(static_cast<double>(h.Percentile(99)), 99000, 99000 / 32.0);
  EXPECT_NEAR(static_cast<double>(h.Percentile(99.9)), 99900, 99900 / 32.0);
  EXPECT_EQ(h.Percentile(100), 100000u);  // capped at the largest value seen
}

TEST(HistogramTest, AddMergesAndResetEmpties) {
  Histogram a, b;
  a.Record(10);
  b.Record(1000);
  b.Record(2000);
  a.Add(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.max(), 2000u);
  EXPECT_EQ(a.Percentile(1), 10u);
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.max(), 0u);
}

}  // namespace
}  // namespace warren::perf
