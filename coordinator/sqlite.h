// The little of SQLite's C API the store needs: one connection, statements
// prepared once and reused, transactions, and every error an absl::Status that
// names the database file. Not thread-safe: the store serializes its calls.
//
//   auto db = Database::Open("coordinator.db", /*busy_timeout_ms=*/5000);
//   Query q = (*db)->Prepare("SELECT state FROM trials WHERE sweep_id = ?1", sweep_id);
//   for (;;) {
//     auto row = q.Step();
//     if (!row.ok()) return row.status();
//     if (!*row) break;
//     states.push_back(q.Text(0));
//   }
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace seedproof {

// A parameter bound as a BLOB (a std::string_view binds as TEXT).
struct Blob {
  std::string_view bytes;
};

class Database;

// One use of a prepared statement: parameters bound when it is made, the statement
// reset when it goes out of scope, so a read cut short never holds its snapshot
// open. A failure to prepare or bind is reported by the first Step or Run. A
// statement has one use at a time: preparing the same SQL again while a Query of
// it is alive resets that Query.
class Query {
 public:
  Query(Query&& other) noexcept;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query& operator=(Query&&) = delete;
  ~Query();

  // true: a row is ready to read; false: the statement has finished.
  absl::StatusOr<bool> Step();
  // Runs a statement to its end, ignoring any rows (INSERT, UPDATE, PRAGMA x = y).
  absl::Status Run();
  // Calls on_row for each row (read the columns inside it); stops at the first
  // error, its own or on_row's.
  absl::Status ForEachRow(const std::function<absl::Status()>& on_row);

  // Columns of the current row, 0-based. NULL reads as 0 and "".
  int64_t Int(int column) const;
  std::string Text(int column) const;
  std::string Bytes(int column) const;  // a BLOB
  bool IsNull(int column) const;

 private:
  friend class Database;
  Query(const Database& db, sqlite3_stmt* stmt, absl::Status status);

  void Bind(int index, int64_t value);
  void Bind(int index, std::string_view value);
  void Bind(int index, const Blob& value);

  const Database& db_;
  sqlite3_stmt* stmt_;  // owned by the Database's statement cache
  absl::Status status_;
};

class Database {
 public:
  // Opens the file at path, creating an empty database if there is none, and
  // reads its header: FAILED_PRECONDITION naming the file when it is not an SQLite
  // database; the file system's complaint (as UNAVAILABLE) when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        int busy_timeout_ms);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // sql (one statement), prepared on its first use and cached, with args bound to
  // ?1, ?2, ...: integers, std::string_view (TEXT), Blob. (SQL's NULLIF(?1, '')
  // stores an empty text as NULL.)
  template <typename... Args>
  Query Prepare(std::string_view sql, const Args&... args) {
    Query query = Cached(sql);
    int index = 0;
    (query.Bind(++index, args), ...);
    return query;
  }

  // Runs a script of statements without parameters or rows (the schema's DDL), uncached.
  absl::Status Exec(const std::string& script);

  // Runs body in a write transaction (BEGIN IMMEDIATE, so waiting for another
  // writer goes through the busy timeout): committed if body returns OK, rolled
  // back otherwise or if the commit fails.
  absl::Status Transaction(const std::function<absl::Status()>& body);

  // The rowid of the last row this connection inserted.
  int64_t LastInsertId() const;
  const std::string& path() const { return path_; }

  // "PATH: what: SQLite's message" with the status code that fits SQLite's code.
  absl::Status Error(int code, const std::string& what) const;

 private:
  Database(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  Query Cached(std::string_view sql);

  std::string path_;
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace seedproof
