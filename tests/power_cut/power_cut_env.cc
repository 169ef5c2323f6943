// warren-server-powercut's StoreEnv (server/store_env.h): the store runs on FaultInjectionFS, and
// a thread waits for signals that make its disk fail (test_power_cut.py, test_store_failure.py).
// A test build only, never installed.
//
// SIGUSR2 or SIGUSR1 cuts the power of the store directory, as a machine losing power would:
// every write not yet synced is dropped (SIGUSR2), or a random part of it survives (SIGUSR1:
// torn writes); every later write waits forever. The process then kills itself with SIGKILL,
// closing nothing.
// The disk's health, while the process goes on: SIGRTMIN, the disk dies (every later write,
// sync, file creation, rename or delete fails with an I/O error, for good); SIGRTMIN+1, the
// disk is full (the same fail with "no space"); SIGRTMIN+2, the disk stops answering (every
// write waits); SIGRTMIN+3, it is well again (room freed, stall over; a dead disk stays dead).
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <memory>
#include <optional>
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

void CutPower(FaultInjectionFS& fs, const std::string& dir, bool torn) {
  std::mt19937 rng{std::random_device{}()};
  FaultInjectionFS::CutStats cut;
  std::unique_lock<std::shared_mutex> stopped;
  const rocksdb::IOStatus status = fs.CutPower(dir, torn ? &rng : nullptr, &cut, &stopped);
  if (!status.ok()) {
    spdlog::critical("power cut of '{}' failed: {}", dir, status.ToString());
    spdlog::default_logger()->flush();
    std::_Exit(70);
  }
  spdlog::warn("power cut ({}): {} files lost {} unsynced bytes, {} files without a durable directory entry "
               "removed, {} replaced files restored",
               torn ? "torn writes" : "unsynced writes dropped", cut.files_cut, cut.bytes_dropped,
               cut.files_removed, cut.files_restored);
  spdlog::default_logger()->flush();
  raise(SIGKILL);
}

void WaitForFaults(std::shared_ptr<FaultInjectionFS> fs, std::string dir, sigset_t signals) {
  std::unique_lock<std::shared_mutex> stall;  // held while the disk stops answering
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) {
      spdlog::critical("fault injection: sigwait failed");
      std::_Exit(70);
    }
    if (sig == SIGUSR1 || sig == SIGUSR2) {
      if (stall.owns_lock()) stall.unlock();  // the cut takes the same lock
      return CutPower(*fs, dir, sig == SIGUSR1);
    }
    if (sig == SIGRTMIN) {
      fs->SetActive(false);
      spdlog::warn("disk fault: the store's disk died; every later write fails with an I/O error");
    } else if (sig == SIGRTMIN + 1) {
      fs->SetNoSpace(true);
      spdlog::warn("disk fault: the store's disk is full; every later write fails with no space");
    } else if (sig == SIGRTMIN + 2) {
      if (!stall.owns_lock()) stall = fs->Stall();
      spdlog::warn("disk fault: the store's disk stopped answering; every later write waits");
    } else if (sig == SIGRTMIN + 3) {
      fs->SetNoSpace(false);
      if (stall.owns_lock()) stall.unlock();
      spdlog::warn("disk fault: the store's disk has room and answers again");
    }
    spdlog::default_logger()->flush();
  }
}

}  // namespace

rocksdb::Env* StoreEnv(const std::string& store_dir) {
  static auto fs = std::make_shared<FaultInjectionFS>(rocksdb::FileSystem::Default());
  static std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMIN + 1, SIGRTMIN + 2, SIGRTMIN + 3}) sigaddset(&signals, sig);
  // Blocked here, so in every thread started later: sigwait in WaitForFaults is their only taker.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(WaitForFaults, fs, store_dir, signals).detach();
  spdlog::warn("power-cut test build: the store runs on FaultInjectionFS; SIGUSR2 cuts the power (drops every "
               "unsynced write), SIGUSR1 cuts it with torn writes; SIGRTMIN kills the disk, SIGRTMIN+1 fills "
               "it, SIGRTMIN+2 stalls it, SIGRTMIN+3 heals it");
  return env.get();
}

}  // namespace warren::server
