#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/http/internal/api.h"
#include "storage/store.h"

// POST /api/backup {"dir": "/abs/path"}: an online backup of the store (storage::Store::Checkpoint)
// laid out as a data dir, with its manifest DIR/warren-backup.json. Administrators only. The
// broker thread only admits the request; the checkpoint runs on the HTTP thread, so the broker
// never waits for it.

namespace warren::http::internal {

namespace {

constexpr char kManifestName[] = "warren-backup.json";

// Written whole or not at all: to a temporary name, synced, then renamed.
std::string WriteDurably(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fmt::format("create {}: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == text.size() && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) return fmt::format("write {}: {}", tmp, std::strerror(saved));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fmt::format("rename {}: {}", tmp, std::strerror(errno));
  return {};
}

Reply Fail(int status, std::string_view error, const std::string& dir, const std::string& reason) {
  // A refused request is the caller's mistake, not the server's.
  spdlog::log(status >= 500 ? spdlog::level::err : spdlog::level::warn, "backup to {} failed: {}", dir, reason);
  return JsonReply(json{{"error", error}, {"reason", reason}}, status);
}

Reply TakeBackup(storage::Store& store, const std::string& dir) {
  const auto started = std::chrono::system_clock::now();
  spdlog::info("backup of {} to {} started", store.dir(), dir);
  storage::CheckpointInfo info;
  if (storage::Status s = store.Checkpoint(dir, &info); !s.ok()) {
    if (s.IsInvalidArgument()) return Fail(400, "bad_request", dir, s.message());
    if (s.IsBusy()) return Fail(409, "conflict", dir, s.message());
    return Fail(500, "backup_failed", dir, s.ToString());
  }
  json files = json::array();
  uint64_t bytes = 0;
  for (const auto& f : info.files) {
    files.push_back(json{{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
    bytes += f.size;
  }
  json manifest{{"warren_version", WARREN_VERSION},
                {"format_version", info.format_version},
                {"created_at", fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(started)))},
                {"last_sequence_number", info.sequence_number},
                {"source", store.dir()},
                {"same_filesystem", info.same_filesystem},
                {"total_size", bytes},
                {"files", std::move(files)}};
  const std::string path = (std::filesystem::path(dir) / kManifestName).string();
  if (std::string error = WriteDurably(path, manifest.dump(1) + "\n"); !error.empty()) {
    return Fail(500, "backup_failed", dir, "the copy was taken but its manifest was not written: " + error);
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() - started);
  spdlog::info("backup to {} done: {} files, {} bytes, sequence number {}, {} ms", dir, info.files.size(), bytes,
               info.sequence_number, took.count());
  manifest["manifest"] = path;
  return JsonReply(manifest);
}

}  // namespace

void Api::AddBackupRoute() {
  On("POST", "backup", [this](Ctx& ctx) {
    RequireAdmin(ctx);
    const std::string dir = StringField(ParseBody(ctx.req), "dir", std::nullopt);
    storage::Store* store = options_.store;
    if (store == nullptr) throw HttpError{503, "service_unavailable", "this server has no store to back up"};
    Reply admitted;
    admitted.off_broker = [store, dir] { return TakeBackup(*store, dir); };
    return admitted;
  });
}

}  // namespace warren::http::internal
