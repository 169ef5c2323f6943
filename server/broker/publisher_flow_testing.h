// Test helper: a publisher that counts how often the broker let it go on.
#pragma once

#include "server/broker/publisher_flow.h"

namespace warren::broker::testing {

class CountingPublisher final : public PublisherFlow {
 public:
  void ResumePublishing() override { ++resumed; }
  int resumed = 0;
};

}  // namespace warren::broker::testing
