#include "storage/status.h"

#include <rocksdb/status.h>

namespace warren::storage {

Status Status::FromRocksDB(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return OK();
  std::string msg(context);
  if (!msg.empty()) msg += ": ";
  msg += s.ToString();
  // NoSpace is an IOError subcode in RocksDB; check it first so callers can tell disk full
  // (worth retrying after space is freed) from other I/O failures.
  if (s.IsNoSpace()) return NoSpace(std::move(msg));
  if (s.IsCorruption()) return Corruption(std::move(msg));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return InvalidArgument(std::move(msg));
  if (s.IsNotFound()) return NotFound(std::move(msg));
  return IOError(std::move(msg));
}

std::string Status::ToString() const {
  switch (code_) {
    case kOk: return "OK";
    case kIOError: return "IO error: " + msg_;
    case kCorruption: return "Corruption: " + msg_;
    case kInvalidArgument: return "Invalid argument: " + msg_;
    case kNoSpace: return "No space: " + msg_;
    case kNotFound: return "Not found: " + msg_;
    case kBusy: return "Busy: " + msg_;
  }
  return "Unknown: " + msg_;
}

}  // namespace warren::storage
