// The message shapes exchanged between the broker and the store.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace warren::storage {

// A message as the broker holds it. Views only: the bytes are copied into the WriteBatch by the
// call that takes a MessageData, so they need only outlive that call.
struct MessageData {
  std::string_view exchange;
  std::string_view routing_key;
  std::string_view properties;  // raw AMQP basic properties (flags + property list), bit-exact
  std::string_view body;
};

// A message read back by Store::ScanQueue.
struct StoredMessage {
  uint64_t seq = 0;
  uint64_t body_id = 0;  // 0 when the body is inlined in the index entry
  std::string exchange;
  std::string routing_key;
  std::string properties;
  std::string body;
  int64_t timestamp = 0;  // stream entries: when appended (unix milliseconds); 0 otherwise
  int64_t expires = 0;    // queue messages with a TTL: when it ends (unix milliseconds); 0: none
  uint32_t delivery_count = 0;  // from the delivery-state record; 0 when there is none
  bool redelivered = false;
  bool has_delivery_state = false;  // a delivery-state record exists (to delete with the entry)
};

}  // namespace warren::storage
