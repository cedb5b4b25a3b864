#include "store/migrations.h"

#include <string>

namespace sbx::store {

namespace {

// 1: objects keyed by (group, kind, namespace, name) and the one global
// resourceVersion counter that every write increments.
Status ObjectsAndCounter(Db& db) {
  return db.Exec(R"sql(
    CREATE TABLE resource_version (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      value INTEGER NOT NULL
    );
    INSERT INTO resource_version (id, value) VALUES (1, 0);
    CREATE TABLE objects (
      grp TEXT NOT NULL,
      kind TEXT NOT NULL,
      namespace TEXT NOT NULL,
      name TEXT NOT NULL,
      uid TEXT NOT NULL UNIQUE,
      resource_version INTEGER NOT NULL,
      object TEXT NOT NULL,
      PRIMARY KEY (grp, kind, namespace, name)
    );
  )sql");
}

// 2: the watch log. Writes before this migration were not logged, so the
// floor starts at the current counter: a watcher asking for an older version
// gets Gone and relists, as it would after compaction.
Status WatchLog(Db& db) {
  return db.Exec(R"sql(
    CREATE TABLE watch_log (
      resource_version INTEGER PRIMARY KEY,
      type TEXT NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
      grp TEXT NOT NULL,
      kind TEXT NOT NULL,
      namespace TEXT NOT NULL,
      object TEXT NOT NULL
    );
    CREATE INDEX watch_log_by_kind ON watch_log (grp, kind, resource_version);
    CREATE TABLE watch_log_floor (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      value INTEGER NOT NULL
    );
    INSERT INTO watch_log_floor (id, value) SELECT 1, value FROM resource_version;
  )sql");
}

// 3: Kubernetes-style events about objects, and a key-value table for the
// daemon's own bookkeeping (for example the runsc root it last used).
Status EventsAndMeta(Db& db) {
  return db.Exec(R"sql(
    CREATE TABLE events (
      namespace TEXT NOT NULL,
      name TEXT NOT NULL,
      involved_api_version TEXT NOT NULL,
      involved_kind TEXT NOT NULL,
      involved_namespace TEXT NOT NULL,
      involved_name TEXT NOT NULL,
      involved_uid TEXT NOT NULL,
      type TEXT NOT NULL,
      reason TEXT NOT NULL,
      message TEXT NOT NULL,
      source TEXT NOT NULL,
      count INTEGER NOT NULL,
      first_us INTEGER NOT NULL,
      last_us INTEGER NOT NULL,
      resource_version INTEGER NOT NULL,
      PRIMARY KEY (namespace, name)
    );
    CREATE INDEX events_by_involved ON events (involved_uid, type, reason, message);
    CREATE INDEX events_by_last ON events (last_us);
    CREATE TABLE meta (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    );
  )sql");
}

Status Rollback(Db& db, Status cause) {
  Status s = db.Exec("ROLLBACK");
  if (!s.ok()) return cause.Annotate("(rollback failed: " + s.message() + ")");
  return cause;
}

Status ApplyOne(Db& db, const Migration& m) {
  SBX_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  // Re-read under the write lock: another process may have migrated meanwhile.
  auto current = ReadSchemaVersion(db);
  if (!current.ok()) return Rollback(db, current.status());
  if (*current >= m.version) return db.Exec("COMMIT");
  if (*current != m.version - 1) {
    return Rollback(db, Internal("schema version " + std::to_string(*current) +
                                 " cannot be migrated to " + std::to_string(m.version)));
  }
  Status s = m.apply(db);
  if (s.ok()) {
    auto stmt = db.Prepare(
        "INSERT INTO schema_version (version, name, applied_at) "
        "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))");
    s = stmt.ok() ? stmt->Bind(1, int64_t{m.version}).Bind(2, m.name).Run() : stmt.status();
  }
  if (!s.ok()) return Rollback(db, s);
  return db.Exec("COMMIT");
}

}  // namespace

const std::vector<Migration>& AllMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "objects and resource version counter", ObjectsAndCounter},
      {2, "watch log", WatchLog},
      {3, "events and meta", EventsAndMeta},
  };
  return kMigrations;
}

int LatestSchemaVersion() { return AllMigrations().back().version; }

Result<int> ReadSchemaVersion(Db& db) {
  SBX_ASSIGN_OR_RETURN(
      Stmt exists,
      db.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"));
  SBX_ASSIGN_OR_RETURN(bool has_table, exists.Step());
  if (!has_table) return 0;
  SBX_ASSIGN_OR_RETURN(Stmt max,
                       db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  SBX_ASSIGN_OR_RETURN(bool row, max.Step());
  if (!row) return 0;
  return static_cast<int>(max.ColumnInt(0));
}

Status MigrateTo(Db& db, int target) {
  SBX_RETURN_IF_ERROR(
      db.Exec("CREATE TABLE IF NOT EXISTS schema_version ("
              "  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"));
  SBX_ASSIGN_OR_RETURN(int current, ReadSchemaVersion(db));
  if (current > target) {
    return FailedPrecondition("database " + db.path() + " has schema version " +
                              std::to_string(current) + ", newer than the supported " +
                              std::to_string(target));
  }
  for (const Migration& m : AllMigrations()) {
    if (m.version <= current || m.version > target) continue;
    Status s = ApplyOne(db, m);
    if (!s.ok()) {
      return s.Annotate("migration " + std::to_string(m.version) + " (" + m.name + ")");
    }
  }
  return Status::Ok();
}

}  // namespace sbx::store
