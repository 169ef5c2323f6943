#include "server/broker/timers.h"

#include <gtest/gtest.h>

namespace warren::broker {
namespace {

TEST(TimersTest, CoarseReadingIsNeverEarlierThanTheSteadyClock) {
  MonoMillis last = 0;
  for (int i = 0; i < 100000; ++i) {
    const MonoMillis fine = SteadyNowMillis();
    const MonoMillis coarse = CoarseSteadyNowMillisNotBefore();
    ASSERT_GE(coarse, fine);
    ASSERT_LE(coarse, fine + 50);  // a tick is 1-10 ms; generous for a loaded machine
    ASSERT_GE(coarse, last);
    last = coarse;
  }
}

}  // namespace
}  // namespace warren::broker
