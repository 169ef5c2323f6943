#include "server/service/logging.h"

#include <time.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace warren::service {

namespace {

constexpr std::string_view kPattern = "%Y-%m-%d %H:%M:%S.%e [%l] %v";

std::string_view RabbitMqLevel(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "debug";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warning";
    case spdlog::level::err: return "error";
    default: return "critical";
  }
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count() % 1000000;
    struct tm local {};
    ::localtime_r(&seconds, &local);
    char date[32], zone[8];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &local);
    std::strftime(zone, sizeof zone, "%z", &local);  // +0100; RFC 3339 wants +01:00
    const std::string_view z(zone);
    const std::string time = fmt::format("{}.{:06}{}:{}", date, micros, z.substr(0, 3), z.substr(3));
    // The message may hold client-sent bytes that are not UTF-8: replaced, so every line parses.
    const std::string text = nlohmann::json(std::string(msg.payload.data(), msg.payload.size()))
                                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    fmt::format_to(std::back_inserter(dest), "{{\"time\":\"{}\",\"level\":\"{}\",\"msg\":{}}}\n", time,
                   RabbitMqLevel(msg.level), text);
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

std::unique_ptr<spdlog::formatter> MakeFormatter(bool json) {
  if (json) return MakeJsonFormatter();
  return std::make_unique<spdlog::pattern_formatter>(std::string(kPattern));
}

std::shared_ptr<LogFileSink>& FileSink() {
  static std::shared_ptr<LogFileSink> sink;
  return sink;
}

}  // namespace

std::unique_ptr<spdlog::formatter> MakeJsonFormatter() { return std::make_unique<JsonFormatter>(); }

LogFileSink::LogFileSink(std::string path, uint64_t rotation_size, uint32_t rotation_count)
    : path_(std::move(path)), rotation_size_(rotation_size), rotation_count_(rotation_count) {
  Open();
}

LogFileSink::~LogFileSink() {
  if (file_ != nullptr) std::fclose(file_);
}

void LogFileSink::Open() {
  std::FILE* file = std::fopen(path_.c_str(), "ae");
  if (file == nullptr) {
    throw spdlog::spdlog_ex(fmt::format("cannot open the log file '{}': {}", path_, std::strerror(errno)));
  }
  if (file_ != nullptr) std::fclose(file_);
  file_ = file;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path_, ec);
  size_ = ec ? 0 : size;
}

void LogFileSink::Reopen() {
  std::lock_guard lock(mutex_);
  Open();
}

void LogFileSink::Rotate() {
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  // FILE.(count-1) -> FILE.count (replacing the oldest), ..., FILE -> FILE.1.
  for (uint32_t i = rotation_count_; i >= 1; --i) {
    const std::string from = i == 1 ? path_ : fmt::format("{}.{}", path_, i - 1);
    std::filesystem::rename(from, fmt::format("{}.{}", path_, i), ec);
  }
  if (rotation_count_ == 0) std::filesystem::remove(path_, ec);
  Open();
}

void LogFileSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  // A failed open throws: spdlog reports it on stderr, and the next line tries again.
  if (file_ == nullptr) Open();
  if (rotation_size_ != 0 && size_ > 0 && size_ + line.size() > rotation_size_) Rotate();
  std::fwrite(line.data(), 1, line.size(), file_);
  // Unbuffered in effect: a crash must not take the last lines with it.
  std::fflush(file_);
  size_ += line.size();
}

void LogFileSink::flush_() {
  if (file_ != nullptr) std::fflush(file_);
}

std::string SetUpLogging(const LogOptions& options) {
  std::vector<spdlog::sink_ptr> sinks;
  auto level = spdlog::level::off;
  if (options.console) {
    auto console = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    console->set_formatter(MakeFormatter(options.console_json));
    console->set_level(spdlog::level::from_str(options.console_level));
    level = std::min(level, console->level());
    sinks.push_back(std::move(console));
  }
  std::shared_ptr<LogFileSink> file;
  if (!options.file.empty()) {
    try {
      file = std::make_shared<LogFileSink>(options.file, options.rotation_size, options.rotation_count);
    } catch (const spdlog::spdlog_ex& e) {
      return e.what();
    }
    file->set_formatter(MakeFormatter(options.file_json));
    file->set_level(spdlog::level::from_str(options.file_level));
    level = std::min(level, file->level());
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("warren", sinks.begin(), sinks.end());
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
  FileSink() = std::move(file);
  return {};
}

void ReopenLogFile() {
  if (const auto& sink = FileSink()) {
    try {
      sink->Reopen();
      spdlog::info("log file reopened");
    } catch (const spdlog::spdlog_ex& e) {
      spdlog::error("{}", e.what());
    }
  }
}

}  // namespace warren::service
