#include "store/sqlite.h"

#include <sqlite3.h>

#include <utility>

namespace sbx::store {

namespace {

// SQLite's busy and locked results are transient: another connection holds
// the lock. Everything else is an environment failure or a bug.
Status FromSqlite(int rc, std::string message) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

Status ErrorFor(sqlite3* db, std::string_view context, int rc) {
  std::string msg = "sqlite: " + std::string(context) + ": " + sqlite3_errstr(rc);
  if (db != nullptr) {
    const char* detail = sqlite3_errmsg(db);
    if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
      msg += " (" + std::string(detail) + ")";
    }
  }
  return FromSqlite(rc, std::move(msg));
}

}  // namespace

bool IsBusy(const Status& s) { return s.code() == Code::kUnavailable; }

// ---- Stmt ----

Stmt::~Stmt() { Release(); }

Stmt::Stmt(Stmt&& o) noexcept
    : stmt_(std::exchange(o.stmt_, nullptr)),
      cache_in_use_(std::exchange(o.cache_in_use_, nullptr)),
      bind_status_(std::move(o.bind_status_)) {}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    Release();
    stmt_ = std::exchange(o.stmt_, nullptr);
    cache_in_use_ = std::exchange(o.cache_in_use_, nullptr);
    bind_status_ = std::move(o.bind_status_);
  }
  return *this;
}

void Stmt::Release() {
  if (stmt_ == nullptr) return;
  if (cache_in_use_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *cache_in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
  cache_in_use_ = nullptr;
}

Status Stmt::Error(std::string_view context, int rc) const {
  std::string where(context);
  if (const char* sql = sqlite3_sql(stmt_); sql != nullptr) {
    where += " [" + std::string(sql).substr(0, 80) + "]";
  }
  return ErrorFor(sqlite3_db_handle(stmt_), where, rc);
}

Stmt& Stmt::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = Error("bind", rc);
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view value) {
  int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = Error("bind", rc);
  return *this;
}

Stmt& Stmt::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = Error("bind", rc);
  return *this;
}

Result<bool> Stmt::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error("step", rc);
}

Status Stmt::Run() {
  while (true) {
    SBX_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

int64_t Stmt::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Stmt::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Stmt::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// ---- Db ----

Result<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = ErrorFor(raw, "open " + path, rc);
    sqlite3_close_v2(raw);  // a handle is returned even on failure
    return s;
  }
  sqlite3_extended_result_codes(raw, 1);
  return std::unique_ptr<Db>(new Db(raw, path));
}

Db::~Db() {
  for (auto& [sql, entry] : cache_) sqlite3_finalize(entry.stmt);
  sqlite3_close_v2(db_);
}

Status Db::Error(std::string_view context, int rc) const { return ErrorFor(db_, context, rc); }

Status Db::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return FromSqlite(rc, "sqlite: exec [" + text.substr(0, 80) + "]: " + msg);
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Stmt(it->second.stmt, &it->second.in_use);
  }
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              it == cache_.end() ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
  if (rc != SQLITE_OK) {
    return Error("prepare [" + std::string(sql.substr(0, 80)) + "]", rc);
  }
  if (it != cache_.end()) return Stmt(raw, nullptr);  // nested use of a cached statement
  auto pos = cache_.emplace(std::string(sql), CacheEntry{raw, true}).first;
  return Stmt(raw, &pos->second.in_use);
}

int64_t Db::Changes() const { return sqlite3_changes64(db_); }

bool Db::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

}  // namespace sbx::store
