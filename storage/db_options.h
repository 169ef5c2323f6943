// RocksDB tuning for Warren's workload. See db_options.cc for the reasoning behind each choice.
#pragma once

#include <rocksdb/options.h>

#include "storage/format.h"

namespace warren::storage {

struct StoreOptions;

rocksdb::DBOptions MakeDBOptions(const StoreOptions& options);
rocksdb::ColumnFamilyOptions MakeFamilyOptions(Family family, const StoreOptions& options);

}  // namespace warren::storage
