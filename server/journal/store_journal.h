// The broker's Journal on the server's store: every call goes straight to storage::Store.
#pragma once

#include "server/broker/journal.h"
#include "storage/store.h"

namespace warren::journal {

class StoreJournal final : public broker::Journal {
 public:
  // `store` outlives the journal.
  explicit StoreJournal(storage::Store& store) : store_(store) {}

  void Submit(storage::WriteBatch batch, std::function<void(const storage::Status&)> on_done) override {
    store_.Submit(std::move(batch), std::move(on_done));
  }
  void SubmitRead(std::function<void()> read) override { store_.SubmitRead(std::move(read)); }
  storage::Status ScanQueue(uint64_t queue_id, uint64_t from_seq,
                            const std::function<bool(const storage::StoredMessage&)>& fn) override {
    return store_.ScanQueue(queue_id, from_seq, fn);
  }
  storage::Status ScanDelayed(
      std::string_view from, std::string_view end,
      const std::function<bool(std::string_view key, const storage::MessageView& message)>& fn) override {
    return store_.ScanDelayed(from, end, fn);
  }

 private:
  storage::Store& store_;
};

}  // namespace warren::journal
