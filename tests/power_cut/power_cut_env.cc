// warren-server-powercut's StoreEnv (server/store_env.h): the store runs on FaultInjectionFS, and
// a thread waits for SIGUSR2 or SIGUSR1. Either cuts the power of the store directory, as a
// machine losing power would: every write not yet synced is dropped (SIGUSR2), or a random
// part of it survives (SIGUSR1: torn writes); every later write waits forever. The process then
// kills itself with SIGKILL, closing nothing. A test build only, never installed.
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <shared_mutex>
#include <thread>

#include <rocksdb/env.h>
#include <spdlog/spdlog.h>

#include "server/store_env.h"
#include "storage/fault_injection_fs.h"

namespace warren::server {
namespace {

using storage::FaultInjectionFS;

void WaitAndCut(std::shared_ptr<FaultInjectionFS> fs, std::string dir, sigset_t signals) {
  int sig = 0;
  if (sigwait(&signals, &sig) != 0) {
    spdlog::critical("power cut: sigwait failed");
    std::_Exit(70);
  }
  std::mt19937 rng{std::random_device{}()};
  FaultInjectionFS::CutStats cut;
  std::unique_lock<std::shared_mutex> stopped;
  const rocksdb::IOStatus status = fs->CutPower(dir, sig == SIGUSR1 ? &rng : nullptr, &cut, &stopped);
  if (!status.ok()) {
    spdlog::critical("power cut of '{}' failed: {}", dir, status.ToString());
    spdlog::default_logger()->flush();
    std::_Exit(70);
  }
  spdlog::warn("power cut ({}): {} files lost {} unsynced bytes, {} files without a durable directory entry "
               "removed, {} replaced files restored",
               sig == SIGUSR1 ? "torn writes" : "unsynced writes dropped", cut.files_cut, cut.bytes_dropped,
               cut.files_removed, cut.files_restored);
  spdlog::default_logger()->flush();
  raise(SIGKILL);
}

}  // namespace

rocksdb::Env* StoreEnv(const std::string& store_dir) {
  static auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  static std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  // Blocked here, so in every thread started later: sigwait in WaitAndCut is their only taker.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(WaitAndCut, fs, store_dir, signals).detach();
  spdlog::warn("power-cut test build: the store runs on FaultInjectionFS; SIGUSR2 cuts the power (drops every "
               "unsynced write), SIGUSR1 cuts it with torn writes");
  return env.get();
}

}  // namespace warren::server
