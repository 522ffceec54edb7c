// The store's tables (schema.cc has them, commented) and how a database file is
// brought up to date. The version is SQLite's user_version; the file is marked as
// seedproof's by its application_id, so the store never writes into another
// program's database.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "coordinator/sqlite.h"

namespace seedproof {

// The schema version this code reads and writes.
inline constexpr int kSchemaVersion = 7;
// PRAGMA application_id of a seedproof coordinator database: "SPRF".
inline constexpr int32_t kApplicationId = 0x53505246;

// Creates the tables in an empty database, or migrates an older schema, one
// version at a time, in one transaction. FAILED_PRECONDITION naming the file when
// the file's schema is newer than kSchemaVersion (both versions named), or when it
// is another program's SQLite database. With migrate false, a database of an
// older (or no) schema is FAILED_PRECONDITION instead, and nothing is written.
//
// before(from), when given, runs in the transaction before the script that takes
// the database from version `from` to from + 1: a migration's work that is not
// SQL (at 6 -> 7 the artifacts' bytes move to files).
absl::Status MigrateSchema(Database& db, bool migrate = true,
                           const std::function<absl::Status(int64_t from)>& before = {});

}  // namespace seedproof
