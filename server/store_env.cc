// warren-server's StoreEnv: RocksDB's default Env (see store_env.h).
#include "server/store_env.h"

namespace warren::server {

rocksdb::Env* StoreEnv(const std::string&) { return nullptr; }

}  // namespace warren::server
