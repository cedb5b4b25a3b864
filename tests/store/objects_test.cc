// Object semantics: create, get, list, update, status, delete, as the
// Kubernetes API server stores them.
#include <gtest/gtest.h>

#include "store/store.h"
#include "tests/store/store_fixture.h"

namespace sbx::store {
namespace {

using storetest::MakeConfigMap;
using storetest::MakeSandbox;
using storetest::Rv;
using storetest::SandboxKey;
using storetest::StoreTest;

using ObjectsTest = StoreTest;

TEST_F(ObjectsTest, CreateSetsServerManagedMetadata) {
  api::Object in = MakeSandbox("a");
  in.metadata.uid = "client-uid";
  in.metadata.resource_version = "999";
  in.metadata.generation = 7;
  in.metadata.deletion_timestamp = clock_.Now();
  in.metadata.labels = {{"app", "x"}};
  in.body["status"] = {{"replicas", 1}};

  api::Object out = MustCreate(in);

  EXPECT_EQ(out.metadata.name, "a");
  EXPECT_EQ(out.metadata.namespace_, "default");
  EXPECT_EQ(out.metadata.uid.size(), 36u);
  EXPECT_NE(out.metadata.uid, "client-uid");
  EXPECT_EQ(out.metadata.resource_version, "1");
  EXPECT_EQ(out.metadata.generation, 1);
  EXPECT_EQ(out.metadata.creation_timestamp, clock_.Now());
  EXPECT_FALSE(out.metadata.deletion_timestamp.has_value());
  EXPECT_EQ(out.metadata.labels.at("app"), "x");
  EXPECT_FALSE(out.body.contains("status"));
  EXPECT_TRUE(out.body.contains("spec"));
}

TEST_F(ObjectsTest, GetReturnsWhatCreateReturned) {
  api::Object created = MustCreate(MakeSandbox("a"));
  auto got = store_->Get(SandboxKey("a"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ToJson(), created.ToJson());
}

TEST_F(ObjectsTest, GetMissingIsNotFoundWithKubernetesMessage) {
  auto got = store_->Get(SandboxKey("nope"));
  ASSERT_EQ(got.status().code(), Code::kNotFound);
  EXPECT_EQ(got.status().message(), "sandboxes.agents.x-k8s.io \"nope\" not found");

  auto cm = store_->Get(ObjectKey{"", "ConfigMap", "default", "nope"});
  EXPECT_EQ(cm.status().message(), "configmaps \"nope\" not found");
}

TEST_F(ObjectsTest, CreateTwiceIsAlreadyExists) {
  MustCreate(MakeSandbox("a"));
  auto again = store_->Create(MakeSandbox("a"));
  ASSERT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "sandboxes.agents.x-k8s.io \"a\" already exists");
  // The same name in another namespace is another object.
  MustCreate(MakeSandbox("a", "other"));
}

TEST_F(ObjectsTest, CreateWithGenerateNameAppendsSuffix) {
  api::Object in = MakeSandbox("");
  in.metadata.generate_name = "job-";
  api::Object a = MustCreate(in);
  api::Object b = MustCreate(in);
  EXPECT_EQ(a.metadata.name.size(), 9u);
  EXPECT_EQ(a.metadata.name.rfind("job-", 0), 0u);
  EXPECT_EQ(a.metadata.generate_name, "job-");
  EXPECT_NE(a.metadata.name, b.metadata.name);
}

TEST_F(ObjectsTest, CreateRejectsMissingNameNamespaceAndUnknownKinds) {
  struct Case {
    const char* what;
    api::Object obj;
    Code code;
  };
  api::Object no_name = MakeSandbox("");
  api::Object no_ns = MakeSandbox("a", "");
  api::Object unknown = MakeSandbox("a");
  unknown.kind = "Pod";
  api::Object old_version = MakeSandbox("a");
  old_version.api_version = "agents.x-k8s.io/v1alpha1";
  api::Object event = MakeConfigMap("e");
  event.kind = "Event";
  const Case cases[] = {
      {"no name", no_name, Code::kInvalid},
      {"no namespace", no_ns, Code::kInvalid},
      {"unknown kind", unknown, Code::kInvalidArgument},
      {"unconverted version", old_version, Code::kInvalidArgument},
      {"event", event, Code::kInvalidArgument},
  };
  for (const auto& c : cases) {
    auto r = store_->Create(c.obj);
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().ToString();
  }
  EXPECT_EQ(store_->Create(no_name).status().message(),
            "metadata.name: Required value: name or generateName is required");
  EXPECT_EQ(store_->CurrentResourceVersion(), 0);
}

TEST_F(ObjectsTest, ClusterScopedKindsDropTheNamespace) {
  api::Object ns;
  ns.api_version = "v1";
  ns.kind = "Namespace";
  ns.metadata.name = "team";
  ns.metadata.namespace_ = "ignored";
  api::Object out = MustCreate(ns);
  EXPECT_EQ(out.metadata.namespace_, "");
  EXPECT_TRUE(store_->Get(ObjectKey{"", "Namespace", "", "team"}).ok());
}

TEST_F(ObjectsTest, ListFiltersByNamespaceAndPredicateInKeyOrder) {
  MustCreate(MakeSandbox("b"));
  MustCreate(MakeSandbox("a"));
  MustCreate(MakeSandbox("c", "other"));
  MustCreate(MakeConfigMap("a"));

  auto all = store_->List("agents.x-k8s.io", "Sandbox", {});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->items.size(), 3u);
  EXPECT_EQ(all->items[0].Key(), "default/a");
  EXPECT_EQ(all->items[1].Key(), "default/b");
  EXPECT_EQ(all->items[2].Key(), "other/c");
  EXPECT_EQ(all->resource_version, 4);

  ListOptions in_default_opts;
  in_default_opts.namespace_ = "default";
  auto in_default = store_->List("agents.x-k8s.io", "Sandbox", in_default_opts);
  ASSERT_TRUE(in_default.ok());
  EXPECT_EQ(in_default->items.size(), 2u);

  ListOptions only_b;
  only_b.filter = [](const api::Object& o) { return o.metadata.name == "b"; };
  auto b = store_->List("agents.x-k8s.io", "Sandbox", only_b);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->items.size(), 1u);
  EXPECT_EQ(b->items[0].metadata.name, "b");
}

TEST_F(ObjectsTest, UpdateWithStaleResourceVersionIsConflict) {
  api::Object v1 = MustCreate(MakeSandbox("a"));
  api::Object first = v1;
  first.metadata.labels["x"] = "1";
  ASSERT_TRUE(store_->Update(first).ok());

  api::Object stale = v1;
  stale.metadata.labels["x"] = "2";
  auto r = store_->Update(stale);
  ASSERT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(),
            "Operation cannot be fulfilled on sandboxes.agents.x-k8s.io \"a\": the object has "
            "been modified; please apply your changes to the latest version and try again");
}

TEST_F(ObjectsTest, UpdateWithoutResourceVersionOverwrites) {
  MustCreate(MakeSandbox("a"));
  api::Object blind = MakeSandbox("a");
  blind.metadata.labels["x"] = "1";
  auto r = store_->Update(blind);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metadata.labels.at("x"), "1");
}

TEST_F(ObjectsTest, UpdateWithWrongUidIsConflict) {
  api::Object v1 = MustCreate(MakeSandbox("a"));
  v1.metadata.uid = "other";
  v1.metadata.labels["x"] = "1";
  EXPECT_EQ(store_->Update(v1).status().code(), Code::kConflict);
}

TEST_F(ObjectsTest, UpdateOfMissingObjectIsNotFound) {
  EXPECT_EQ(store_->Update(MakeSandbox("a")).status().code(), Code::kNotFound);
}

TEST_F(ObjectsTest, GenerationCountsSpecChangesOnly) {
  api::Object v1 = MustCreate(MakeSandbox("a"));

  api::Object labelled = v1;
  labelled.metadata.labels["x"] = "1";
  auto v2 = store_->Update(labelled);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->metadata.generation, 1);
  EXPECT_GT(Rv(*v2), Rv(v1));

  api::Object respec = *v2;
  respec.body["spec"]["replicas"] = 0;
  auto v3 = store_->Update(respec);
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->metadata.generation, 2);

  api::Object with_status = *v3;
  with_status.body["status"] = {{"replicas", 1}};
  auto v4 = store_->UpdateStatus(with_status);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->metadata.generation, 2);
}

TEST_F(ObjectsTest, GenerationCountsAnyBodyChangeForKindsWithoutStatus) {
  api::Object v1 = MustCreate(MakeConfigMap("c"));
  api::Object changed = v1;
  changed.body["data"]["k"] = "other";
  auto v2 = store_->Update(changed);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->metadata.generation, 2);
}

TEST_F(ObjectsTest, UpdateKeepsStoredStatusAndServerFields) {
  api::Object v1 = MustCreate(MakeSandbox("a"));
  api::Object st = v1;
  st.body["status"] = {{"replicas", 1}};
  api::Object v2 = *store_->UpdateStatus(st);

  api::Object upd = v2;
  upd.body["status"] = {{"replicas", 99}};
  upd.metadata.creation_timestamp = clock_.Now() + std::chrono::hours(1);
  upd.metadata.labels["x"] = "1";
  auto v3 = store_->Update(upd);
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->body["status"]["replicas"], 1);
  EXPECT_EQ(v3->metadata.uid, v1.metadata.uid);
  EXPECT_EQ(v3->metadata.creation_timestamp, v1.metadata.creation_timestamp);
}

TEST_F(ObjectsTest, UpdateStatusChangesOnlyStatus) {
  api::Object v1 = MustCreate(MakeSandbox("a"));
  api::Object st = v1;
  st.body["status"] = {{"replicas", 1}};
  st.body["spec"]["replicas"] = 5;
  st.metadata.labels["ignored"] = "yes";
  auto v2 = store_->UpdateStatus(st);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(v2->body["status"]["replicas"], 1);
  EXPECT_FALSE(v2->body["spec"].contains("replicas"));
  EXPECT_TRUE(v2->metadata.labels.empty());

  auto stale = store_->UpdateStatus(st);
  EXPECT_EQ(stale.status().code(), Code::kConflict);
}

TEST_F(ObjectsTest, UpdateStatusOfKindWithoutStatusIsNotFound) {
  api::Object cm = MustCreate(MakeConfigMap("c"));
  cm.body["status"] = {{"x", 1}};
  EXPECT_EQ(store_->UpdateStatus(cm).status().code(), Code::kNotFound);
}

TEST_F(ObjectsTest, NoOpUpdateKeepsResourceVersion) {
  api::Object v1 = MustCreate(MakeSandbox("a"));
  auto same = store_->Update(v1);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->metadata.resource_version, v1.metadata.resource_version);
  auto same_status = store_->UpdateStatus(v1);
  ASSERT_TRUE(same_status.ok());
  EXPECT_EQ(same_status->metadata.resource_version, v1.metadata.resource_version);
  EXPECT_EQ(store_->CurrentResourceVersion(), 1);
}

TEST_F(ObjectsTest, DeleteWithoutFinalizersRemovesAtOnce) {
  MustCreate(MakeSandbox("a"));
  auto gone = store_->Delete(SandboxKey("a"));
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->metadata.resource_version, "2");
  EXPECT_EQ(store_->Get(SandboxKey("a")).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Delete(SandboxKey("a")).status().code(), Code::kNotFound);
}

TEST_F(ObjectsTest, DeleteWithWrongUidPreconditionIsConflict) {
  MustCreate(MakeSandbox("a"));
  EXPECT_EQ(store_->Delete(SandboxKey("a"), "wrong").status().code(), Code::kConflict);
  EXPECT_TRUE(store_->Get(SandboxKey("a")).ok());
}

TEST_F(ObjectsTest, DeleteWithFinalizerIsTwoPhase) {
  api::Object in = MakeSandbox("a");
  in.metadata.finalizers = {"sbx.dev/runtime"};
  api::Object v1 = MustCreate(in);

  clock_.Advance(std::chrono::seconds(5));
  auto marked = store_->Delete(SandboxKey("a"), v1.metadata.uid);
  ASSERT_TRUE(marked.ok());
  ASSERT_TRUE(marked->metadata.deletion_timestamp.has_value());
  EXPECT_EQ(*marked->metadata.deletion_timestamp, clock_.Now());
  EXPECT_GT(Rv(*marked), Rv(v1));

  // A second delete changes nothing.
  clock_.Advance(std::chrono::seconds(5));
  auto again = store_->Delete(SandboxKey("a"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->metadata.resource_version, marked->metadata.resource_version);
  EXPECT_EQ(again->metadata.deletion_timestamp, marked->metadata.deletion_timestamp);

  // Status may still be written while the runtime is torn down.
  api::Object st = *marked;
  st.body["status"] = {{"replicas", 0}};
  auto with_status = store_->UpdateStatus(st);
  ASSERT_TRUE(with_status.ok());

  // New finalizers are refused.
  api::Object more = *with_status;
  more.metadata.finalizers.push_back("other");
  auto refused = store_->Update(more);
  EXPECT_EQ(refused.status().code(), Code::kInvalid);

  // Removing the last finalizer removes the object.
  api::Object done = *with_status;
  done.metadata.finalizers.clear();
  auto removed = store_->Update(done);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(store_->Get(SandboxKey("a")).status().code(), Code::kNotFound);
}

TEST_F(ObjectsTest, TransactRollbackLeavesNothing) {
  MustCreate(MakeSandbox("keep"));
  int64_t rv_before = store_->CurrentResourceVersion();
  Status s = store_->Transact([&](Txn& txn) -> Status {
    SBX_RETURN_IF_ERROR(txn.Create(MakeSandbox("a")).status());
    SBX_RETURN_IF_ERROR(txn.Delete(SandboxKey("keep")).status());
    // Reads inside see the transaction's own writes.
    EXPECT_TRUE(txn.Get(SandboxKey("a")).ok());
    EXPECT_EQ(txn.Get(SandboxKey("keep")).status().code(), Code::kNotFound);
    return Conflict("give up");
  });
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(store_->Get(SandboxKey("a")).status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->Get(SandboxKey("keep")).ok());
  EXPECT_EQ(store_->CurrentResourceVersion(), rv_before);
}

TEST_F(ObjectsTest, FailedOperationInsideTransactIsUndoneAlone) {
  MustCreate(MakeSandbox("exists"));
  Status s = store_->Transact([&](Txn& txn) -> Status {
    SBX_RETURN_IF_ERROR(txn.Create(MakeSandbox("a")).status());
    EXPECT_EQ(txn.Create(MakeSandbox("exists")).status().code(), Code::kAlreadyExists);
    return txn.Create(MakeSandbox("b")).status();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto a = store_->Get(SandboxKey("a"));
  auto b = store_->Get(SandboxKey("b"));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Rv(*b), Rv(*a) + 1);
}

}  // namespace
}  // namespace sbx::store
