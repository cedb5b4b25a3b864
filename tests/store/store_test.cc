// Opening the database, and the store's bookkeeping table.
#include "store/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "store/migrations.h"
#include "tests/store/store_fixture.h"

namespace sbx::store {
namespace {

using storetest::MakeSandbox;
using storetest::SandboxKey;
using storetest::StoreTest;

using StoreOpenTest = StoreTest;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST_F(StoreOpenTest, CreatesPrivateFileAndDirectoriesInWalMode) {
  EXPECT_EQ(ModeOf(dir_ + "/state"), 0700u);
  EXPECT_EQ(ModeOf(db_path_), 0600u);
  MustCreate(MakeSandbox("a"));
  EXPECT_TRUE(PathExists(db_path_ + "-wal"));
  EXPECT_EQ(ModeOf(db_path_ + "-wal"), 0600u);
}

TEST_F(StoreOpenTest, MigratesToTheLatestSchema) {
  EXPECT_EQ(store_->SchemaVersion(), LatestSchemaVersion());
}

TEST_F(StoreOpenTest, ObjectsSurviveReopen) {
  api::Object a = MustCreate(MakeSandbox("a"));
  Reopen();
  auto got = store_->Get(SandboxKey("a"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->ToJson(), a.ToJson());
  EXPECT_EQ(store_->CurrentResourceVersion(), 1);
}

TEST_F(StoreOpenTest, UnopenablePathIsAnError) {
  auto s = Store::Open(db_path_ + "/not-a-dir/x.db", &clock_);
  EXPECT_FALSE(s.ok());
}

TEST_F(StoreOpenTest, MetaPutGetDelete) {
  EXPECT_EQ(store_->GetMeta("runsc-root").status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->PutMeta("runsc-root", "/run/sbx/runsc").ok());
  ASSERT_TRUE(store_->PutMeta("runsc-root", "/run/sbx/runsc2").ok());
  auto v = store_->GetMeta("runsc-root");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "/run/sbx/runsc2");
  Reopen();
  EXPECT_EQ(*store_->GetMeta("runsc-root"), "/run/sbx/runsc2");
  ASSERT_TRUE(store_->DeleteMeta("runsc-root").ok());
  EXPECT_EQ(store_->GetMeta("runsc-root").status().code(), Code::kNotFound);
  // Meta writes are not object writes.
  EXPECT_EQ(store_->CurrentResourceVersion(), 0);
}

}  // namespace
}  // namespace sbx::store
