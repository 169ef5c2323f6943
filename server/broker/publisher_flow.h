// A publisher that the broker may ask to pause (stop reading from its socket) until whatever
// it outran catches up: a queue's consumers (as RabbitMQ's credit flow) or the store's writer.
#pragma once

namespace warren::broker {

class PublisherFlow {
 public:
  virtual ~PublisherFlow() = default;
  virtual void ResumePublishing() = 0;
};

}  // namespace warren::broker
