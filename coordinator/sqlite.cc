#include "coordinator/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace seedproof {

Query::Query(const Database& db, sqlite3_stmt* stmt, absl::Status status)
    : db_(db), stmt_(stmt), status_(std::move(status)) {}

Query::Query(Query&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      status_(std::move(other.status_)) {}

// Clearing the bindings frees the copies of large values (an artifact's bytes)
// the cached statement would otherwise hold until its next use.
Query::~Query() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

// SQLITE_TRANSIENT copies the value: a Query may outlive the temporaries it was made from.
void Query::Bind(int index, int64_t value) {
  if (status_.ok()) {
    const int rc = sqlite3_bind_int64(stmt_, index, value);
    if (rc != SQLITE_OK) status_ = db_.Error(rc, absl::StrCat("binding parameter ", index));
  }
}

void Query::Bind(int index, std::string_view value) {
  if (status_.ok()) {
    const int rc = sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                       SQLITE_UTF8);
    if (rc != SQLITE_OK) status_ = db_.Error(rc, absl::StrCat("binding parameter ", index));
  }
}

void Query::Bind(int index, const Blob& value) {
  if (status_.ok()) {
    const int rc =
        sqlite3_bind_blob64(stmt_, index, value.bytes.data(), value.bytes.size(), SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) status_ = db_.Error(rc, absl::StrCat("binding parameter ", index));
  }
}

absl::StatusOr<bool> Query::Step() {
  if (!status_.ok()) return status_;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  status_ = db_.Error(rc, sqlite3_sql(stmt_));
  return status_;
}

absl::Status Query::ForEachRow(const std::function<absl::Status()>& on_row) {
  for (;;) {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    if (auto s = on_row(); !s.ok()) return s;
  }
}

absl::Status Query::Run() {
  for (;;) {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

int64_t Query::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Query::Text(int column) const {
  // Ask for the text before its length: the conversion to text decides the length.
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return "";
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::string Query::Bytes(int column) const {
  const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  if (bytes == nullptr) return "";
  return std::string(bytes, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Query::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         int busy_timeout_ms) {
  sqlite3* handle = nullptr;
  // NOMUTEX: the store serializes every call, so SQLite's own locking is overhead.
  const int rc =
      sqlite3_open_v2(path.c_str(), &handle,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc);
    sqlite3_close(handle);
    return absl::UnavailableError(absl::StrCat(path, ": cannot open: ", message));
  }
  std::unique_ptr<Database> db(new Database(path, handle));
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, busy_timeout_ms);
  // SQLite reads the file's header only when a statement first needs it.
  auto row = db->Prepare("SELECT count(*) FROM sqlite_schema").Step();
  if (!row.ok()) {
    if (sqlite3_errcode(handle) == SQLITE_NOTADB) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": not an SQLite database (is it the coordinator's database file?)"));
    }
    return row.status();
  }
  return db;
}

Database::~Database() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Query Database::Cached(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) return Query(*this, it->second, absl::OkStatus());
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Query(*this, nullptr, Error(rc, std::string(sql)));
  statements_.emplace(std::string(sql), stmt);
  return Query(*this, stmt, absl::OkStatus());
}

absl::Status Database::Exec(const std::string& script) {
  const int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, "running a script");
}

absl::Status Database::Transaction(const std::function<absl::Status()>& body) {
  if (auto s = Prepare("BEGIN IMMEDIATE").Run(); !s.ok()) return s;
  absl::Status status = body();
  if (status.ok()) status = Prepare("COMMIT").Run();
  // After a failed COMMIT SQLite may already have rolled back; ROLLBACK then fails harmlessly.
  if (!status.ok()) Prepare("ROLLBACK").Run().IgnoreError();
  return status;
}

int64_t Database::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }

absl::Status Database::Error(int code, const std::string& what) const {
  const std::string message = absl::StrCat(path_, ": ", what, ": ", sqlite3_errmsg(db_));
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT:
      return absl::FailedPreconditionError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace seedproof
