// RocksDB's info log (the LOG file in the store directory), written by Warren.
//
// RocksDB's own file logger writes through a WritableFileWriter whose first failed write is
// sticky: in Debian's RocksDB 7.8, built with assertions, the next line it logs then aborts the
// process (`sync_without_flush_called_` in WritableFileWriter). On a full or failing disk the
// LOG fails with the WAL, and RocksDB logs that very failure next, so a full disk killed the
// broker before it could nack a publish or say why. This logger drops what it cannot write
// and tries again with the next line: the info log is a diagnostic, never a reason to stop.
//
// Rotation: past max_bytes (kMaxBytes) LOG becomes LOG.old, replacing the previous one, so the
// two take at most about twice that.
//
// Thread-safety: thread-safe; RocksDB logs from its writer and background threads.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <mutex>
#include <string>

#include <rocksdb/env.h>

namespace warren::storage {

class InfoLog final : public rocksdb::Logger {
 public:
  static constexpr uint64_t kMaxBytes = 16ull << 20;

  // Appends to `dir`/LOG (created 0600 when missing; a LOG of max_bytes or more is rotated first).
  explicit InfoLog(std::string dir, uint64_t max_bytes = kMaxBytes);
  ~InfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  size_t GetLogFileSize() const override;

 private:
  void OpenLocked();  // REQUIRES: mu_ held
  void RotateLocked();

  const std::string path_;
  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace warren::storage
