// Helpers shared by the storage tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/store.h"

namespace warren::storage::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/warren-storage-XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::unique_ptr<Store> OpenOrDie(const StoreOptions& o) {
  std::unique_ptr<Store> store;
  Status s = Store::Open(o, &store);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
}

inline std::unique_ptr<Store> OpenOrDie(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  return OpenOrDie(o);
}

inline MessageData Msg(std::string_view body, std::string_view rk = "rk",
                       std::string_view exchange = "ex", std::string_view props = "") {
  return MessageData{exchange, rk, props, body};
}

inline std::vector<StoredMessage> ScanAll(Store* store, uint64_t queue_id, uint64_t from = 0) {
  std::vector<StoredMessage> out;
  Status s = store->ScanQueue(queue_id, from, [&](const StoredMessage& m) {
    out.push_back(m);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

}  // namespace warren::storage::testing
