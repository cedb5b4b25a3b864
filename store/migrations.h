// The database schema, as an ordered list of migrations.
//
// Each migration moves the schema from version N-1 to N and runs in its own
// transaction together with the row that records it in `schema_version`, so a
// crash leaves the database at N-1 or N, never between. Migrations are never
// edited once released; a change to the schema is a new entry at the end.
//
// The schema after the latest migration (the number is the migration that
// introduced each table):
//
//   schema_version(version PK, name, applied_at)    written by MigrateTo
//   resource_version(id=1 PK, value)                the global counter (1)
//   objects(grp, kind, namespace, name PK;          one row per object (1)
//           uid UNIQUE, resource_version, object JSON)
//   watch_log(resource_version PK, type, grp,       ADDED/MODIFIED/DELETED (2)
//             kind, namespace, object JSON)
//   watch_log_floor(id=1 PK, value)                 entries above value are kept (2)
//   events(namespace, name PK; involved_*, type,    core v1 Events (3)
//          reason, message, source, count,
//          first_us, last_us, resource_version)
//   meta(key PK, value)                             daemon bookkeeping (3)
#ifndef SBX_STORE_MIGRATIONS_H_
#define SBX_STORE_MIGRATIONS_H_

#include <vector>

#include "common/status.h"
#include "store/sqlite.h"

namespace sbx::store {

struct Migration {
  int version;
  const char* name;
  // Runs inside the migration's transaction.
  Status (*apply)(Db&);
};

// In version order, starting at 1, without gaps.
const std::vector<Migration>& AllMigrations();
int LatestSchemaVersion();

// 0 for a database no migration has touched.
Result<int> ReadSchemaVersion(Db& db);

// Applies the migrations after the current version up to and including
// `target`. A database newer than `target` is left alone and reported as
// FailedPrecondition, so an older sbxd never writes to a schema it does not know.
Status MigrateTo(Db& db, int target);

}  // namespace sbx::store

#endif  // SBX_STORE_MIGRATIONS_H_
