// Kubernetes-style events: naming, aggregation, listing, the v1 Event shape,
// and collection after their object is gone.
#include <gtest/gtest.h>

#include <regex>

#include "store/store.h"
#include "tests/store/store_fixture.h"

namespace sbx::store {
namespace {

using storetest::MakeSandbox;
using storetest::SandboxKey;
using storetest::StoreTest;

using EventsTest = StoreTest;

TEST_F(EventsTest, RecordEventNamesItAfterTheObject) {
  api::Object a = MustCreate(MakeSandbox("a"));
  auto e = store_->RecordEvent(a, "Normal", "Created", "created the sandbox");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(std::regex_match(e->name, std::regex(R"(a\.[0-9a-f]{16})"))) << e->name;
  EXPECT_EQ(e->namespace_, "default");
  EXPECT_EQ(e->involved.api_version, "agents.x-k8s.io/v1beta1");
  EXPECT_EQ(e->involved.kind, "Sandbox");
  EXPECT_EQ(e->involved.namespace_, "default");
  EXPECT_EQ(e->involved.name, "a");
  EXPECT_EQ(e->involved.uid, a.metadata.uid);
  EXPECT_EQ(e->type, "Normal");
  EXPECT_EQ(e->reason, "Created");
  EXPECT_EQ(e->message, "created the sandbox");
  EXPECT_EQ(e->source, "sbxd");
  EXPECT_EQ(e->count, 1);
  EXPECT_EQ(e->first_timestamp, clock_.Now());
  EXPECT_EQ(e->last_timestamp, clock_.Now());
  EXPECT_EQ(e->resource_version, 2);
}

TEST_F(EventsTest, RepeatedEventIsCounted) {
  api::Object a = MustCreate(MakeSandbox("a"));
  auto first = store_->RecordEvent(a, "Warning", "BackOff", "restarting");
  clock_.Advance(std::chrono::seconds(30));
  auto second = store_->RecordEvent(a, "Warning", "BackOff", "restarting");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->name, first->name);
  EXPECT_EQ(second->count, 2);
  EXPECT_EQ(second->first_timestamp, first->first_timestamp);
  EXPECT_EQ(second->last_timestamp, clock_.Now());
  EXPECT_GT(second->resource_version, first->resource_version);

  auto other = store_->RecordEvent(a, "Warning", "BackOff", "restarting again");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->name, first->name);

  auto listed = store_->ListEvents("default", a.metadata.uid);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].count, 2);
  EXPECT_EQ((*listed)[1].message, "restarting again");
}

TEST_F(EventsTest, ListEventsByObjectOrWholeNamespace) {
  api::Object a = MustCreate(MakeSandbox("a"));
  api::Object b = MustCreate(MakeSandbox("b"));
  api::Object c = MustCreate(MakeSandbox("c", "other"));
  ASSERT_TRUE(store_->RecordEvent(a, "Normal", "Started", "x").ok());
  ASSERT_TRUE(store_->RecordEvent(b, "Normal", "Started", "x").ok());
  ASSERT_TRUE(store_->RecordEvent(c, "Normal", "Started", "x").ok());

  EXPECT_EQ(store_->ListEvents("default", a.metadata.uid)->size(), 1u);
  EXPECT_EQ(store_->ListEvents("default", "")->size(), 2u);
  EXPECT_EQ(store_->ListEvents("other", "")->size(), 1u);
}

TEST_F(EventsTest, ToObjectIsACoreV1Event) {
  api::Object a = MustCreate(MakeSandbox("a"));
  auto e = store_->RecordEvent(a, "Normal", "Created", "hello");
  ASSERT_TRUE(e.ok());
  api::Json j = e->ToObject().ToJson();
  EXPECT_EQ(j["apiVersion"], "v1");
  EXPECT_EQ(j["kind"], "Event");
  EXPECT_EQ(j["metadata"]["name"], e->name);
  EXPECT_EQ(j["metadata"]["namespace"], "default");
  EXPECT_EQ(j["metadata"]["resourceVersion"], std::to_string(e->resource_version));
  EXPECT_EQ(j["involvedObject"]["kind"], "Sandbox");
  EXPECT_EQ(j["involvedObject"]["uid"], a.metadata.uid);
  EXPECT_EQ(j["reason"], "Created");
  EXPECT_EQ(j["message"], "hello");
  EXPECT_EQ(j["type"], "Normal");
  EXPECT_EQ(j["count"], 1);
  EXPECT_EQ(j["source"]["component"], "sbxd");
  EXPECT_EQ(j["firstTimestamp"], "2026-11-26T06:00:00Z");
  EXPECT_EQ(j["lastTimestamp"], "2026-11-26T06:00:00Z");
}

TEST_F(EventsTest, EventsAreServedAndWatchedAsObjects) {
  api::Object a = MustCreate(MakeSandbox("a"));
  auto e = store_->RecordEvent(a, "Normal", "Created", "hello");
  ASSERT_TRUE(e.ok());

  auto list = store_->List("", "Event", {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].metadata.name, e->name);

  auto got = store_->Get(ObjectKey{"", "Event", "default", e->name});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body["reason"], "Created");

  auto watched = store_->EventsSince(1, "", "Event");
  ASSERT_TRUE(watched.ok());
  ASSERT_EQ(watched->size(), 1u);
  EXPECT_EQ((*watched)[0].type, WatchEventType::kAdded);

  EXPECT_EQ(store_->Delete(ObjectKey{"", "Event", "default", e->name}).status().code(),
            Code::kInvalidArgument);
}

TEST_F(EventsTest, EventsOfDeletedObjectsGoAfterAnHour) {
  api::Object gone = MustCreate(MakeSandbox("gone"));
  api::Object live = MustCreate(MakeSandbox("live"));
  ASSERT_TRUE(store_->RecordEvent(gone, "Normal", "Created", "x").ok());
  ASSERT_TRUE(store_->RecordEvent(live, "Normal", "Created", "x").ok());
  ASSERT_TRUE(store_->Delete(SandboxKey("gone")).ok());

  clock_.Advance(std::chrono::minutes(30));
  ASSERT_TRUE(store_->RecordEvent(live, "Normal", "Ping", "1").ok());
  EXPECT_EQ(store_->ListEvents("default", gone.metadata.uid)->size(), 1u);

  clock_.Advance(std::chrono::minutes(45));
  ASSERT_TRUE(store_->RecordEvent(live, "Normal", "Ping", "2").ok());
  EXPECT_EQ(store_->ListEvents("default", gone.metadata.uid)->size(), 0u);
  // Old events of an object that still exists stay.
  EXPECT_EQ(store_->ListEvents("default", live.metadata.uid)->size(), 3u);
}

TEST_F(EventsTest, EventsOfClusterScopedObjectsLiveInDefault) {
  api::Object ns;
  ns.api_version = "v1";
  ns.kind = "Namespace";
  ns.metadata.name = "team";
  api::Object created = MustCreate(ns);
  auto e = store_->RecordEvent(created, "Normal", "Created", "x");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->namespace_, "default");
  EXPECT_EQ(e->involved.namespace_, "");
}

}  // namespace
}  // namespace sbx::store
