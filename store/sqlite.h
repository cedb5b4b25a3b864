// A small RAII layer over the SQLite C API, private to store/.
//
// Db owns one sqlite3 connection; Stmt owns (or borrows from Db's cache) one
// prepared statement. Every SQLite error becomes a Status that carries the
// statement's purpose and SQLite's own message. The raw handles stay inside
// this file pair: sqlite3.h is included only by sqlite.cc.
//
// Thread safety: a Db and its Stmts are used by one thread at a time; the
// Store serialises access with its own mutex.
#ifndef SBX_STORE_SQLITE_H_
#define SBX_STORE_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sbx::store {

// A prepared statement. Bind parameters are 1-based as in SQLite. A Stmt that
// came from Db's cache is reset and returned to the cache on destruction.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, std::string_view value);
  Stmt& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Stmt& BindNull(int index);

  // Advances to the next row: true if there is a row, false when done.
  Result<bool> Step();
  // Runs a statement that returns no rows (or ignores them) to completion.
  Status Run();

  int64_t ColumnInt(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  friend class Db;
  Stmt(sqlite3_stmt* stmt, bool* cache_in_use) : stmt_(stmt), cache_in_use_(cache_in_use) {}
  void Release();
  Status Error(std::string_view context, int rc) const;

  sqlite3_stmt* stmt_ = nullptr;
  // Non-null for a cached statement: the cache entry's in-use flag.
  bool* cache_in_use_ = nullptr;
  // A bind failure (out of memory, bad index) is reported by the next Step/Run.
  Status bind_status_;
};

class Db {
 public:
  // Opens (creating if absent) the database file at `path`. The caller sets
  // pragmas with Exec.
  static Result<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that take no parameters.
  Status Exec(std::string_view sql);
  // Prepares `sql`. Statements are cached by their text; a statement that is
  // already in use (nested iteration) gets a fresh, uncached copy.
  Result<Stmt> Prepare(std::string_view sql);

  // Rows changed by the most recent INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  bool InTransaction() const;
  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Error(std::string_view context, int rc) const;

  sqlite3* db_;
  std::string path_;
  struct CacheEntry {
    sqlite3_stmt* stmt;
    bool in_use;
  };
  std::unordered_map<std::string, CacheEntry> cache_;
};

// True if `s` is the error SQLite reports when another connection holds the
// lock beyond the busy timeout.
bool IsBusy(const Status& s);

}  // namespace sbx::store

#endif  // SBX_STORE_SQLITE_H_
