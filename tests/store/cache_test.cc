// The store's object cache and its write-ahead-log checkpointing: reads
// served from memory must always show what was last committed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "store/store.h"
#include "tests/store/store_fixture.h"

namespace sbx::store {
namespace {

using storetest::MakeSandbox;
using storetest::SandboxKey;

class CacheTest : public storetest::StoreTest {};

TEST_F(CacheTest, GetShowsEveryCommittedWriteAndNoRolledBackOne) {
  api::Object created = MustCreate(MakeSandbox("a"));
  ASSERT_TRUE(store_->Get(SandboxKey("a")).ok());  // now cached

  created.metadata.labels["v"] = "2";
  auto updated = store_->Update(created);
  ASSERT_TRUE(updated.ok());
  auto got = store_->Get(SandboxKey("a"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->metadata.labels["v"], "2");
  EXPECT_EQ(got->metadata.resource_version, updated->metadata.resource_version);

  updated->body["status"] = {{"phase", "x"}};
  ASSERT_TRUE(store_->UpdateStatus(*updated).ok());
  EXPECT_EQ(store_->Get(SandboxKey("a"))->body["status"]["phase"], "x");

  // A transaction that writes, reads its own write, then fails: the cache
  // keeps the committed object.
  Status s = store_->Transact([&](Txn& t) -> Status {
    auto cur = t.Get(SandboxKey("a"));
    if (!cur.ok()) return cur.status();
    cur->metadata.labels["v"] = "3";
    auto w = t.Update(*cur);
    if (!w.ok()) return w.status();
    auto again = t.Get(SandboxKey("a"));
    EXPECT_TRUE(again.ok() && again->metadata.labels["v"] == "3");
    return Status(Code::kFailedPrecondition, "rolled back");
  });
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(store_->Get(SandboxKey("a"))->metadata.labels["v"], "2");

  ASSERT_TRUE(store_->Delete(SandboxKey("a")).ok());
  EXPECT_EQ(store_->Get(SandboxKey("a")).status().code(), Code::kNotFound);
  MustCreate(MakeSandbox("a"));
  EXPECT_TRUE(store_->Get(SandboxKey("a")).ok());
}

TEST_F(CacheTest, ReturnedObjectsAreCopies) {
  MustCreate(MakeSandbox("a"));
  auto first = store_->Get(SandboxKey("a"));
  ASSERT_TRUE(first.ok());
  first->metadata.labels["mutated"] = "yes";
  EXPECT_EQ(store_->Get(SandboxKey("a"))->metadata.labels.count("mutated"), 0u);
}

// Another connection's commits are noticed at this Store's next transaction.
TEST_F(CacheTest, WritesThroughAnotherConnectionAreSeenAfterTheNextTransaction) {
  api::Object a = MustCreate(MakeSandbox("a"));
  ASSERT_TRUE(store_->Get(SandboxKey("a")).ok());
  auto other = Store::Open(db_path_, &clock_);
  ASSERT_TRUE(other.ok());
  auto theirs = (*other)->Get(SandboxKey("a"));
  ASSERT_TRUE(theirs.ok());
  theirs->metadata.labels["by"] = "other";
  ASSERT_TRUE((*other)->Update(*theirs).ok());

  MustCreate(MakeSandbox("b"));  // any transaction on this Store
  auto got = store_->Get(SandboxKey("a"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->metadata.labels["by"], "other");
  // And an update based on the stale copy is refused, not lost.
  a.metadata.labels["by"] = "stale";
  EXPECT_EQ(store_->Update(a).status().code(), Code::kConflict);
}

// SQLite's own checkpoint is off; the Store's checkpointer copies the log
// into the database file in the background.
TEST_F(CacheTest, TheLogIsCheckpointedIntoTheDatabaseFile) {
  auto size = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
  };
  const int64_t before = size(db_path_);
  std::string padding(8192, 'x');
  for (int i = 0; i < 400; ++i) {
    api::Object o = MakeSandbox("s" + std::to_string(i));
    o.metadata.annotations["padding"] = padding;
    MustCreate(o);
  }
  // 400 objects of 8 KiB, twice (object and watch log): over 6 MB.
  bool grown = false;
  for (int i = 0; i < 50 && !grown; ++i) {
    grown = size(db_path_) - before > 6'000'000;
    if (!grown) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(grown) << "database file " << size(db_path_) << " bytes, log "
                     << size(db_path_ + "-wal");
}

}  // namespace
}  // namespace sbx::store
