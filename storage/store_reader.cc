// The store's reader thread: scans the broker thread hands off (page-in of a long queue, the
// paged tail of a purge) so that it never waits for the disk itself. One thread, reads in
// submission order: a queue's page-ins do not overtake each other, and a scan of many thousand
// messages does not hold up the writer's group commits.
#include <utility>

#include "storage/store.h"

namespace warren::storage {

void Store::StartReader() {
  reader_ = std::thread([this] { ReaderLoop(); });
}

void Store::StopReader() {
  if (!reader_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(reader_mu_);
    reader_stopping_ = true;
  }
  reader_cv_.notify_one();
  reader_.join();
}

void Store::SubmitRead(std::function<void()> read) {
  {
    std::lock_guard<std::mutex> l(reader_mu_);
    reads_.push_back(std::move(read));
  }
  reader_cv_.notify_one();
}

void Store::ReaderLoop() {
  std::unique_lock<std::mutex> l(reader_mu_);
  while (true) {
    reader_cv_.wait(l, [this] { return reader_stopping_ || !reads_.empty(); });
    // Reads submitted before the stop still run: their completions release broker state.
    if (reads_.empty()) return;
    std::function<void()> read = std::move(reads_.front());
    reads_.pop_front();
    l.unlock();
    read();
    l.lock();
  }
}

}  // namespace warren::storage
