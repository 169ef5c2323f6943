// Journal: what the broker needs of durable storage, as an interface, so that broker/ neither
// includes RocksDB nor protobuf and its persister and queues can be tested against a fake.
// The server's journal is the store (server/journal/store_journal.h).
//
// Threads: Submit and SubmitRead are called on the broker thread and hand their work to the
// journal's own threads (a writer with group commit, a reader); their callbacks run there, and
// the broker's Persister posts what they report back to the broker thread. The scans run on the
// calling thread: the broker thread calls them only for short reads (a basic.get that finds a
// queue's memory empty, a stream consumer's next chunk) and hands long ones to SubmitRead.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "storage/format.h"
#include "storage/message.h"
#include "storage/status.h"
#include "storage/write_batch.h"

namespace warren::broker {

class Journal {
 public:
  virtual ~Journal() = default;

  // Writes `batch` (with every batch submitted meanwhile: group commit), fsynced first when it
  // asks for it; then on_done on the writer thread. Batches are applied in submission order.
  virtual void Submit(storage::WriteBatch batch, std::function<void(const storage::Status&)> on_done) = 0;
  // Runs `read` on the reader thread, after the reads submitted before it; it sees every write
  // completed before it starts.
  virtual void SubmitRead(std::function<void()> read) = 0;

  // A queue's messages with seq >= from_seq in seq order; fn returns false to stop. The message
  // passed to fn is reused between calls.
  [[nodiscard]] virtual storage::Status ScanQueue(uint64_t queue_id, uint64_t from_seq,
                                                  const std::function<bool(const storage::StoredMessage&)>& fn) = 0;
  // The delayed messages with keys in [from, end), in key order.
  [[nodiscard]] virtual storage::Status ScanDelayed(
      std::string_view from, std::string_view end,
      const std::function<bool(std::string_view key, const storage::MessageView& message)>& fn) = 0;
};

}  // namespace warren::broker
