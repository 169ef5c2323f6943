// The server's log: stderr (the journal under systemd) and an optional file, each with its own
// level and format (plain text, or RabbitMQ's JSON lines: {"time", "level", "msg"}). The file is
// appended to, reopened by ReopenLogFile() (SIGUSR1, after logrotate renamed it) and, when
// rotation_size is set, rotated by size: FILE -> FILE.1 -> ... -> FILE.<rotation_count>, the
// oldest dropped (rabbitmq.conf's log.file.rotation.size / .count).
//
// Thread: SetUpLogging at start-up, before other threads log; the sinks lock, so any thread may
// log and call ReopenLogFile.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/formatter.h>
#include <spdlog/sinks/base_sink.h>

namespace warren::service {

struct LogOptions {
  bool console = true;
  std::string console_level = "info";  // spdlog's level names
  bool console_json = false;
  std::string file;  // empty: no log file
  std::string file_level = "info";
  bool file_json = false;
  uint64_t rotation_size = 0;  // bytes; 0: never by size
  uint32_t rotation_count = 5;  // rotated files kept
};

// One JSON object per line with RabbitMQ's field names: time (RFC 3339, local time, with a space
// like RabbitMQ's rfc3339_space), level (debug, info, warning, error, critical), msg.
std::unique_ptr<spdlog::formatter> MakeJsonFormatter();

class LogFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Throws spdlog::spdlog_ex when the file cannot be opened.
  LogFileSink(std::string path, uint64_t rotation_size, uint32_t rotation_count);
  ~LogFileSink() override;
  // Closes and opens the path again: a new file if the old one was renamed.
  void Reopen();

 private:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;
  void Open();  // REQUIRES: the lock is held
  void Rotate();

  const std::string path_;
  const uint64_t rotation_size_;
  const uint32_t rotation_count_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0;
};

// Installs the default logger. Returns an error message (and changes nothing) when the log file
// cannot be opened.
std::string SetUpLogging(const LogOptions& options);
// SIGUSR1: reopens the log file, if there is one.
void ReopenLogFile();

}  // namespace warren::service
