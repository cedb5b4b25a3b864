// The watch log and listeners: ordering, resuming from a resourceVersion
// (also after a restart), compaction, and nothing heard of rolled-back writes.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "store/store.h"
#include "tests/store/store_fixture.h"

namespace sbx::store {
namespace {

using storetest::MakeConfigMap;
using storetest::MakeSandbox;
using storetest::Rv;
using storetest::SandboxKey;
using storetest::StoreTest;

using WatchTest = StoreTest;

constexpr const char* kGroup = "agents.x-k8s.io";

// Records what listeners hear.
class Recorder {
 public:
  void operator()(const WatchEvent& e) {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(e);
  }
  std::vector<WatchEvent> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::vector<WatchEvent> events_;
};

TEST_F(WatchTest, ListenersHearAddedModifiedDeletedAfterCommit) {
  Recorder rec;
  store_->Subscribe([&](const WatchEvent& e) { rec(e); });

  api::Object a = MustCreate(MakeSandbox("a"));
  a.metadata.labels["x"] = "1";
  ASSERT_TRUE(store_->Update(a).ok());
  ASSERT_TRUE(store_->Delete(SandboxKey("a")).ok());

  auto events = rec.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, WatchEventType::kAdded);
  EXPECT_EQ(events[1].type, WatchEventType::kModified);
  EXPECT_EQ(events[2].type, WatchEventType::kDeleted);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].resource_version, i + 1);
    EXPECT_EQ(Rv(events[i].object), i + 1);
  }
  EXPECT_EQ(events[2].object.metadata.labels.at("x"), "1");
}

TEST_F(WatchTest, NoOpUpdateIsNotHeard) {
  api::Object a = MustCreate(MakeSandbox("a"));
  Recorder rec;
  store_->Subscribe([&](const WatchEvent& e) { rec(e); });
  ASSERT_TRUE(store_->Update(a).ok());
  EXPECT_TRUE(rec.events().empty());
}

TEST_F(WatchTest, ConcurrentWritersAreHeardInResourceVersionOrder) {
  Recorder rec;
  store_->Subscribe([&](const WatchEvent& e) {
    // Listeners may read while other writers wait for their turn.
    EXPECT_GE(store_->CurrentResourceVersion(), e.resource_version);
    rec(e);
  });
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = store_->Create(MakeSandbox("s-" + std::to_string(t) + "-" + std::to_string(i)));
        EXPECT_TRUE(r.ok()) << r.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  auto events = rec.events();
  ASSERT_EQ(events.size(), size_t{kThreads * kEach});
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].resource_version, static_cast<int64_t>(i + 1));
  }
}

TEST_F(WatchTest, TransactRollbackIsNotHeardNorLogged) {
  MustCreate(MakeSandbox("first"));
  Recorder rec;
  store_->Subscribe([&](const WatchEvent& e) { rec(e); });
  Status s = store_->Transact([&](Txn& txn) -> Status {
    SBX_RETURN_IF_ERROR(txn.Create(MakeSandbox("a")).status());
    return Internal("abort");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(rec.events().empty());

  MustCreate(MakeSandbox("b"));
  auto heard = rec.events();
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].resource_version, 2);
  auto logged = store_->EventsSince(1, kGroup, "Sandbox");
  ASSERT_TRUE(logged.ok());
  ASSERT_EQ(logged->size(), 1u);
  EXPECT_EQ((*logged)[0].object.metadata.name, "b");
}

TEST_F(WatchTest, TransactIsHeardOnlyAfterCommitAndInOrder) {
  Recorder rec;
  store_->Subscribe([&](const WatchEvent& e) { rec(e); });
  Status s = store_->Transact([&](Txn& txn) -> Status {
    SBX_RETURN_IF_ERROR(txn.Create(MakeSandbox("a")).status());
    SBX_RETURN_IF_ERROR(txn.Create(MakeSandbox("b")).status());
    EXPECT_TRUE(rec.events().empty());
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok());
  auto events = rec.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].object.metadata.name, "a");
  EXPECT_EQ(events[1].object.metadata.name, "b");
}

TEST_F(WatchTest, ResumeFromResourceVersionAfterReopen) {
  api::Object a = MustCreate(MakeSandbox("a"));
  int64_t seen = Rv(a);
  MustCreate(MakeConfigMap("c"));
  a.metadata.labels["x"] = "1";
  ASSERT_TRUE(store_->Update(a).ok());
  ASSERT_TRUE(store_->Delete(SandboxKey("a")).ok());

  Reopen();

  auto events = store_->EventsSince(seen, kGroup, "Sandbox");
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, WatchEventType::kModified);
  EXPECT_EQ((*events)[0].resource_version, 3);
  EXPECT_EQ((*events)[0].object.metadata.labels.at("x"), "1");
  EXPECT_EQ((*events)[1].type, WatchEventType::kDeleted);
  EXPECT_EQ((*events)[1].resource_version, 4);

  auto every_kind = store_->EventsSince(seen, "", "");
  ASSERT_TRUE(every_kind.ok());
  EXPECT_EQ(every_kind->size(), 3u);

  // The counter continues after the restart.
  EXPECT_EQ(Rv(MustCreate(MakeSandbox("b"))), 5);
}

TEST_F(WatchTest, EventsSinceZeroMeansFromNow) {
  MustCreate(MakeSandbox("a"));
  auto events = store_->EventsSince(0, kGroup, "Sandbox");
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

TEST_F(WatchTest, CompactedResourceVersionIsGone) {
  store_->SetWatchLogRetention(5);
  for (int i = 0; i < 10; ++i) MustCreate(MakeSandbox("s" + std::to_string(i)));

  auto gone = store_->EventsSince(1, kGroup, "Sandbox");
  ASSERT_EQ(gone.status().code(), Code::kGone);
  EXPECT_EQ(gone.status().message(), "too old resource version: 1 (6)");
  EXPECT_EQ(store_->EventsSince(4, kGroup, "Sandbox").status().code(), Code::kGone);

  // The oldest retained entry is 6, so a watcher that saw 5 misses nothing.
  auto kept = store_->EventsSince(5, kGroup, "Sandbox");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  ASSERT_EQ(kept->size(), 5u);
  EXPECT_EQ(kept->front().resource_version, 6);
  EXPECT_EQ(kept->back().resource_version, 10);

  // Compaction is persistent.
  Reopen();
  EXPECT_EQ(store_->EventsSince(4, kGroup, "Sandbox").status().code(), Code::kGone);
}

TEST_F(WatchTest, UnsubscribedListenerIsNotCalled) {
  Recorder rec;
  uint64_t id = store_->Subscribe([&](const WatchEvent& e) { rec(e); });
  MustCreate(MakeSandbox("a"));
  store_->Unsubscribe(id);
  MustCreate(MakeSandbox("b"));
  EXPECT_EQ(rec.events().size(), 1u);
}

TEST_F(WatchTest, ListenerMayReadAndUnsubscribeItself) {
  uint64_t id = 0;
  int calls = 0;
  id = store_->Subscribe([&](const WatchEvent& e) {
    ++calls;
    EXPECT_TRUE(store_->Get(SandboxKey(e.object.metadata.name)).ok());
    store_->Unsubscribe(id);
  });
  MustCreate(MakeSandbox("a"));
  MustCreate(MakeSandbox("b"));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace sbx::store
