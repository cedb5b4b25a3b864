// Many writers: no lost updates under optimistic concurrency, two
// connections on one file, and a writer killed mid-way leaves a consistent
// database.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "store/sqlite.h"
#include "store/store.h"
#include "tests/store/store_fixture.h"

namespace sbx::store {
namespace {

using storetest::MakeConfigMap;
using storetest::MakeSandbox;
using storetest::MakeTempDir;
using storetest::StoreTest;

using ConcurrencyTest = StoreTest;

const ObjectKey kCounterKey{"", "ConfigMap", "default", "counter"};

// Read-modify-write of data.n, retried on Conflict as a controller would.
Status Increment(Store& store) {
  while (true) {
    SBX_ASSIGN_OR_RETURN(api::Object obj, store.Get(kCounterKey));
    int n = std::stoi(obj.body["data"]["n"].get<std::string>());
    obj.body["data"]["n"] = std::to_string(n + 1);
    auto r = store.Update(obj);
    if (r.ok()) return Status::Ok();
    if (r.status().code() != Code::kConflict) return r.status();
  }
}

TEST_F(ConcurrencyTest, UpdatesWithRetryNeverLoseAnIncrement) {
  api::Object counter = MakeConfigMap("counter");
  counter.body["data"] = {{"n", "0"}};
  MustCreate(counter);

  constexpr int kThreads = 4, kEach = 40;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      auto l = store_->List("", "ConfigMap", {});
      EXPECT_TRUE(l.ok()) << l.status().ToString();
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        Status s = Increment(*store_);
        EXPECT_TRUE(s.ok()) << s.ToString();
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();

  auto final_obj = store_->Get(kCounterKey);
  ASSERT_TRUE(final_obj.ok());
  EXPECT_EQ(final_obj->body["data"]["n"], std::to_string(kThreads * kEach));
  EXPECT_EQ(final_obj->metadata.generation, 1 + kThreads * kEach);
  EXPECT_EQ(store_->CurrentResourceVersion(), 1 + kThreads * kEach);
}

TEST_F(ConcurrencyTest, TwoConnectionsOnOneFileSerialiseWrites) {
  auto second = Store::Open(db_path_, &clock_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  constexpr int kEach = 30;
  auto write_many = [](Store* s, const std::string& prefix) {
    for (int i = 0; i < kEach; ++i) {
      auto r = s->Create(MakeSandbox(prefix + std::to_string(i)));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    }
  };
  std::thread a(write_many, store_.get(), "a");
  std::thread b(write_many, second->get(), "b");
  a.join();
  b.join();
  auto all = store_->List("agents.x-k8s.io", "Sandbox", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), size_t{2 * kEach});
  std::set<std::string> versions;
  for (const auto& o : all->items) versions.insert(o.metadata.resource_version);
  EXPECT_EQ(versions.size(), size_t{2 * kEach});
  EXPECT_EQ(all->resource_version, 2 * kEach);
}

// Runs in the child: creates and updates objects until killed.
[[noreturn]] void WriteUntilKilled(const std::string& path, int progress_fd, int round) {
  SystemClock clock;
  auto store = Store::Open(path, &clock);
  if (!store.ok()) _exit(2);
  std::string padding(4096, 'x');
  for (int i = 0;; ++i) {
    api::Object o = MakeSandbox("r" + std::to_string(round) + "-" + std::to_string(i));
    o.metadata.annotations["padding"] = padding;
    auto created = (*store)->Create(o);
    if (!created.ok()) _exit(3);
    created->metadata.labels["touched"] = "yes";
    if (!(*store)->Update(*created).ok()) _exit(4);
    if (i == 20 && ::write(progress_fd, "x", 1) != 1) _exit(5);
  }
}

int64_t QueryInt(Db& db, const std::string& sql) {
  auto stmt = db.Prepare(sql);
  EXPECT_TRUE(stmt.ok()) << stmt.status().ToString();
  if (!stmt.ok()) return -1;
  auto row = stmt->Step();
  EXPECT_TRUE(row.ok() && *row) << sql;
  return row.ok() && *row ? stmt->ColumnInt(0) : -1;
}

TEST(CrashSafetyTest, KilledWriterLeavesNoPartialObjectAndConsistentVersions) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/sbx.db";
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      WriteUntilKilled(path, fds[1], round);
    }
    ::close(fds[1]);
    char c;
    ASSERT_EQ(::read(fds[0], &c, 1), 1) << "writer died early";
    ::close(fds[0]);
    ::usleep(1000 * (1 + round * 7));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited with " << WEXITSTATUS(status);

    auto db = Db::Open(path);
    ASSERT_TRUE(db.ok());
    int64_t counter = QueryInt(**db, "SELECT value FROM resource_version");
    // Every version up to the counter was written, exactly once, in the log.
    EXPECT_EQ(QueryInt(**db, "SELECT COUNT(*) FROM watch_log"), counter);
    EXPECT_EQ(QueryInt(**db, "SELECT MAX(resource_version) FROM watch_log"), counter);
    EXPECT_LE(QueryInt(**db, "SELECT MAX(resource_version) FROM objects"), counter);
    // Each object arrived with its ADDED entry, and each create's update too.
    EXPECT_EQ(QueryInt(**db, "SELECT COUNT(*) FROM objects"),
              QueryInt(**db, "SELECT COUNT(*) FROM watch_log WHERE type = 'ADDED'"));
    db->reset();

    FakeClock clock(TimePoint{});
    auto store = Store::Open(path, &clock);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto all = (*store)->List("agents.x-k8s.io", "Sandbox", {});
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_GT(all->items.size(), 20u);
    for (const auto& o : all->items) {
      EXPECT_EQ(o.metadata.uid.size(), 36u);
      if (o.metadata.name.rfind("after-", 0) == 0) continue;
      ASSERT_EQ(o.metadata.annotations.count("padding"), 1u) << o.metadata.name;
      EXPECT_EQ(o.metadata.annotations.at("padding").size(), 4096u);
    }
    auto next = (*store)->Create(MakeSandbox("after-" + std::to_string(round)));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(next->metadata.resource_version, std::to_string(counter + 1));
  }
  ASSERT_TRUE(RemoveAll(dir).ok());
}

}  // namespace
}  // namespace sbx::store
