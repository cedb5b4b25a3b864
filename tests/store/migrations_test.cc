// Each migration: a database at version N-1 with data written the old way is
// migrated to N; the data is preserved and the new schema is there.
#include "store/migrations.h"

#include <gtest/gtest.h>

#include <string>

#include "store/sqlite.h"
#include "store/store.h"
#include "tests/store/store_fixture.h"

namespace sbx::store {
namespace {

using storetest::MakeTempDir;

class MigrationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    path_ = dir_ + "/sbx.db";
    auto db = Db::Open(path_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }
  void TearDown() override {
    db_.reset();
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }

  void MigrateOrDie(int version) {
    Status s = MigrateTo(*db_, version);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(*ReadSchemaVersion(*db_), version);
  }
  void Exec(const std::string& sql) {
    Status s = db_->Exec(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  int64_t QueryInt(const std::string& sql) {
    auto stmt = db_->Prepare(sql);
    EXPECT_TRUE(stmt.ok()) << stmt.status().ToString();
    if (!stmt.ok()) return -1;
    auto row = stmt->Step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return row.ok() && *row ? stmt->ColumnInt(0) : -1;
  }
  std::string QueryText(const std::string& sql) {
    auto stmt = db_->Prepare(sql);
    EXPECT_TRUE(stmt.ok()) << stmt.status().ToString();
    if (!stmt.ok()) return "";
    auto row = stmt->Step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return row.ok() && *row ? stmt->ColumnText(0) : "";
  }
  bool HasTable(const std::string& name) {
    return QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '" + name +
                    "'") == 1;
  }

  // An object row as version 1 wrote it.
  void InsertObjectV1(const std::string& name, int64_t rv) {
    api::Object o = storetest::MakeSandbox(name);
    o.metadata.uid = "uid-" + name;
    o.metadata.resource_version = std::to_string(rv);
    o.metadata.generation = 1;
    Exec("INSERT INTO objects VALUES ('agents.x-k8s.io', 'Sandbox', 'default', '" + name +
         "', 'uid-" + name + "', " + std::to_string(rv) + ", '" + o.ToJson().dump() + "')");
    Exec("UPDATE resource_version SET value = " + std::to_string(rv));
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Db> db_;
};

TEST_F(MigrationsTest, VersionsAreOrderedWithoutGaps) {
  int expected = 1;
  for (const Migration& m : AllMigrations()) {
    EXPECT_EQ(m.version, expected++) << m.name;
    EXPECT_NE(std::string(m.name), "");
  }
  EXPECT_EQ(LatestSchemaVersion(), expected - 1);
}

TEST_F(MigrationsTest, FreshDatabaseIsVersionZero) { EXPECT_EQ(*ReadSchemaVersion(*db_), 0); }

TEST_F(MigrationsTest, Migration1CreatesObjectsAndCounter) {
  MigrateOrDie(1);
  EXPECT_TRUE(HasTable("objects"));
  EXPECT_EQ(QueryInt("SELECT value FROM resource_version WHERE id = 1"), 0);
  EXPECT_EQ(QueryText("SELECT name FROM schema_version WHERE version = 1"),
            "objects and resource version counter");
  EXPECT_FALSE(HasTable("watch_log"));
}

TEST_F(MigrationsTest, Migration2AddsWatchLogKeepingObjects) {
  MigrateOrDie(1);
  InsertObjectV1("a", 1);
  InsertObjectV1("b", 7);

  MigrateOrDie(2);

  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM objects"), 2);
  EXPECT_EQ(QueryText("SELECT uid FROM objects WHERE name = 'b'"), "uid-b");
  EXPECT_TRUE(HasTable("watch_log"));
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM watch_log"), 0);
  // Writes before the log existed cannot be replayed.
  EXPECT_EQ(QueryInt("SELECT value FROM watch_log_floor WHERE id = 1"), 7);
  EXPECT_FALSE(HasTable("events"));
}

TEST_F(MigrationsTest, Migration3AddsEventsAndMetaKeepingObjectsAndLog) {
  MigrateOrDie(2);
  InsertObjectV1("a", 1);
  Exec(
      "INSERT INTO watch_log VALUES (1, 'ADDED', 'agents.x-k8s.io', 'Sandbox', 'default', "
      "(SELECT object FROM objects WHERE name = 'a'))");

  MigrateOrDie(3);

  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM objects"), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM watch_log"), 1);
  EXPECT_TRUE(HasTable("events"));
  EXPECT_TRUE(HasTable("meta"));
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM events"), 0);
}

TEST_F(MigrationsTest, StoreOpensOldDatabaseAndServesItsObjects) {
  MigrateOrDie(1);
  InsertObjectV1("a", 4);
  db_.reset();

  FakeClock clock(TimePoint{});
  auto store = Store::Open(path_, &clock);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->SchemaVersion(), LatestSchemaVersion());
  auto a = (*store)->Get(storetest::SandboxKey("a"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->metadata.uid, "uid-a");
  EXPECT_EQ(a->metadata.resource_version, "4");
  EXPECT_EQ((*store)->EventsSince(3, "agents.x-k8s.io", "Sandbox").status().code(), Code::kGone);
  auto next = (*store)->Create(storetest::MakeSandbox("b"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->metadata.resource_version, "5");
  auto since = (*store)->EventsSince(4, "agents.x-k8s.io", "Sandbox");
  ASSERT_TRUE(since.ok()) << since.status().ToString();
  EXPECT_EQ(since->size(), 1u);
}

TEST_F(MigrationsTest, MigratingTwiceIsANoOp) {
  MigrateOrDie(LatestSchemaVersion());
  MigrateOrDie(LatestSchemaVersion());
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM schema_version"), LatestSchemaVersion());
}

TEST_F(MigrationsTest, NewerDatabaseIsRefused) {
  MigrateOrDie(LatestSchemaVersion());
  Exec("INSERT INTO schema_version VALUES (99, 'from the future', 'x')");
  Status s = MigrateTo(*db_, LatestSchemaVersion());
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
}

TEST_F(MigrationsTest, FailedMigrationLeavesPreviousVersion) {
  MigrateOrDie(1);
  // Make migration 2 fail halfway: its table already exists.
  Exec("CREATE TABLE watch_log_floor (x INTEGER)");
  Status s = MigrateTo(*db_, 2);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(*ReadSchemaVersion(*db_), 1);
  EXPECT_FALSE(HasTable("watch_log"));
}

}  // namespace
}  // namespace sbx::store
