// Status: the result of every storage operation that can fail. OK or a code plus a message that
// names the problem (file, key, record) well enough for an operator to act on it.
//
// Thread-safety: a Status is a value; copies are independent.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace rocksdb {
class Status;
}

namespace warren::storage {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status IOError(std::string msg) { return Status(kIOError, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(kCorruption, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(kInvalidArgument, std::move(msg)); }
  static Status NoSpace(std::string msg) { return Status(kNoSpace, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(kNotFound, std::move(msg)); }
  // The operation is already running and does not run twice at once (a checkpoint).
  static Status Busy(std::string msg) { return Status(kBusy, std::move(msg)); }

  // Maps a RocksDB status; `context` (e.g. "open /data/store") is prefixed to its message.
  static Status FromRocksDB(const rocksdb::Status& s, std::string_view context = {});

  bool ok() const { return code_ == kOk; }
  bool IsIOError() const { return code_ == kIOError; }
  bool IsNoSpace() const { return code_ == kNoSpace; }
  bool IsCorruption() const { return code_ == kCorruption; }
  bool IsInvalidArgument() const { return code_ == kInvalidArgument; }
  bool IsNotFound() const { return code_ == kNotFound; }
  bool IsBusy() const { return code_ == kBusy; }

  // "OK", or e.g. "Corruption: message index entry queue 3 seq 17: truncated header".
  std::string ToString() const;
  const std::string& message() const { return msg_; }

 private:
  enum Code { kOk, kIOError, kCorruption, kInvalidArgument, kNoSpace, kNotFound, kBusy };
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  Code code_ = kOk;
  std::string msg_;
};

}  // namespace warren::storage
