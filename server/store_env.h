// The one seam through which a test build changes the server: the file system under its store.
//
// main.cc puts its store on StoreEnv(). warren-server links store_env.cc, which answers
// nullptr (RocksDB's default Env). The power-cut test build, tests/power_cut/, links its own
// definition instead: the same main.cc, with the store on FaultInjectionFS and a signal that
// cuts the power. No other code differs between the two binaries.
#pragma once

#include <string>

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace warren::server {

// The Env for the store in `store_dir` (StoreOptions::env), or nullptr for the default. Owned by
// the callee and alive until the process ends.
// REQUIRES: called once, from main, before any other thread starts (a test build sets the signal
// mask that every later thread inherits).
rocksdb::Env* StoreEnv(const std::string& store_dir);

}  // namespace warren::server
