// The warm pool and claim controllers against a real store, without runsc:
// the test plays the sandbox controller's part by writing members' status.
#include "daemon/warm_pool_controller.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <thread>

#include "api/decode.h"
#include "api/extensions.h"
#include "common/fs.h"
#include "daemon/claim_controller.h"

namespace sbx::daemon {
namespace {

using namespace std::chrono_literals;

api::Object Decode(const std::string& yaml) {
  auto docs = api::ParseDocuments(yaml, "x.yaml");
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  auto obj = api::DecodeObject((*docs)[0]);
  EXPECT_TRUE(obj.ok()) << obj.status().ToString();
  return *obj;
}

std::string TemplateYaml(const std::string& image) {
  return "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxTemplate\n"
         "metadata: {name: t, namespace: default}\nspec:\n  podTemplate:\n    spec:\n"
         "      containers: [{name: c, image: " + image + "}]\n";
}

class WarmPoolControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-pool-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::Store::Open(dir_ + "/sbx.db", &clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    api::Object ns;
    ns.api_version = "v1";
    ns.kind = "Namespace";
    ns.metadata.name = "default";
    ASSERT_TRUE(store_->Create(ns).ok());
  }
  void TearDown() override {
    claims_.reset();
    pools_.reset();
    index_.reset();
    store_.reset();
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }
  void Start(WarmPoolOptions options) {
    index_ = std::make_unique<SandboxIndex>(*store_);
    pools_ = std::make_unique<WarmPoolController>(*store_, *index_, clock_, options);
    ClaimOptions co;
    co.warm_wait = 0ms;
    claims_ = std::make_unique<ClaimController>(*store_, *index_, clock_, co);
    ASSERT_TRUE(index_->Start().ok());
    pools_->Start();
    claims_->Start();
  }
  void Apply(const std::string& yaml) {
    api::Object o = Decode(yaml);
    auto cur = store_->Get({api::kExtensionsGroup, o.kind, "default", o.metadata.name});
    if (cur.ok()) {
      o.metadata.resource_version = cur->metadata.resource_version;
      ASSERT_TRUE(store_->Update(o).ok());
    } else {
      ASSERT_TRUE(store_->Create(o).ok());
    }
  }
  std::vector<api::Object> Members() {
    auto list = store_->List("agents.x-k8s.io", "Sandbox", {});
    std::vector<api::Object> out;
    for (auto& o : list->items) {
      const api::OwnerReference* owner = api::ControllerOf(o.metadata);
      if (owner && owner->kind == "SandboxWarmPool") out.push_back(o);
    }
    return out;
  }
  // What the sandbox controller would write.
  void SetStatus(api::Object sb, const std::string& ready, const std::string& reason) {
    api::Condition c;
    c.type = "Ready";
    c.status = ready;
    c.reason = reason;
    c.observed_generation = sb.metadata.generation;
    c.last_transition_time = clock_.Now();
    sb.body["status"] = {{"conditions", {api::ConditionToJson(c)}}};
    ASSERT_TRUE(store_->UpdateStatus(sb).ok());
  }
  // The sandbox controller's teardown: deleted sandboxes lose their finalizer.
  void Settle() {
    std::this_thread::sleep_for(400ms);
    auto list = store_->List("agents.x-k8s.io", "Sandbox", {});
    bool reaped = false;
    for (auto& o : list->items) {
      if (!o.metadata.deletion_timestamp) continue;
      o.metadata.finalizers.clear();
      ASSERT_TRUE(store_->Update(o).ok());
      reaped = true;
    }
    if (reaped) std::this_thread::sleep_for(400ms);
  }
  api::Json PoolStatus() {
    return store_->Get({api::kExtensionsGroup, "SandboxWarmPool", "default", "p"})->body["status"];
  }

  std::string dir_;
  FakeClock clock_{std::chrono::sys_days{std::chrono::year{2026} / 11 / 1}};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<SandboxIndex> index_;
  std::unique_ptr<WarmPoolController> pools_;
  std::unique_ptr<ClaimController> claims_;
};

const char kPool[] =
    "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxWarmPool\n"
    "metadata: {name: p, namespace: default}\nspec:\n  replicas: 5\n  sandboxTemplateRef: {name: t}\n";

TEST_F(WarmPoolControllerTest, RefillIsBoundedByMembersStartingAndNeverOverCreates) {
  WarmPoolOptions o;
  o.max_starting = 2;
  Start(o);
  Apply(TemplateYaml("img"));
  Apply(kPool);
  Settle();
  ASSERT_EQ(Members().size(), 2u);  // two start at once
  for (int round = 0; round < 5; ++round) {
    for (auto& m : Members()) {
      if (!api::ReadyConditionOf(m)) SetStatus(m, "True", "DependenciesReady");
    }
    Settle();
    EXPECT_LE(Members().size(), 5u);
  }
  EXPECT_EQ(Members().size(), 5u);
  EXPECT_EQ(PoolStatus()["readyReplicas"], 5);
  EXPECT_EQ(PoolStatus()["replicas"], 5);
  EXPECT_EQ(PoolStatus()["conditions"][0]["status"], "True");

  // A claim adopts one Ready member in one transaction; the pool refills one.
  Apply("apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxClaim\n"
        "metadata: {name: c, namespace: default}\nspec:\n  warmPoolRef: {name: p}\n");
  Settle();
  auto claim = store_->Get({api::kExtensionsGroup, "SandboxClaim", "default", "c"});
  ASSERT_TRUE(claim.ok());
  auto ready = api::ReadyConditionOf(*claim);
  ASSERT_TRUE(ready.has_value()) << claim->ToJson().dump(2);
  EXPECT_EQ(ready->status, "True");
  std::string name = claim->body["status"]["sandbox"]["name"];
  auto sb = store_->Get({"agents.x-k8s.io", "Sandbox", "default", name});
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ(api::ControllerOf(sb->metadata)->uid, claim->metadata.uid);
  ASSERT_EQ(Members().size(), 5u);  // four left plus one new, starting
  EXPECT_EQ(PoolStatus()["readyReplicas"], 4);
}

TEST_F(WarmPoolControllerTest, FailedMembersAreDeletedWithBackOff) {
  WarmPoolOptions o;
  o.max_starting = 4;
  o.backoff_initial = 1000ms;
  Start(o);
  Apply(TemplateYaml("missing"));
  Apply(kPool);
  Settle();
  ASSERT_EQ(Members().size(), 4u);
  // Every member fails: all are deleted, and nothing new until the back-off passes.
  for (auto& m : Members()) SetStatus(m, "False", "ReconcilerError");
  Settle();
  EXPECT_EQ(Members().size(), 0u);
  auto st = PoolStatus();
  EXPECT_EQ(st["conditions"][0]["reason"], "MemberFailed");
  EXPECT_NE(st["conditions"][0]["message"].get<std::string>().find("ReconcilerError"),
            std::string::npos);
  auto events = store_->ListEvents("default", "");
  ASSERT_TRUE(events.ok());
  bool warned = false;
  for (const auto& e : *events) warned |= e.reason == "WarmPoolNotProgressing";
  EXPECT_TRUE(warned);

  // Nothing is created while the back-off lasts; after it, one member is tried.
  pools_->Enqueue("default/p");
  Settle();
  EXPECT_EQ(Members().size(), 0u);
  clock_.Advance(std::chrono::seconds(2));
  pools_->Enqueue("default/p");
  Settle();
  ASSERT_EQ(Members().size(), 1u);  // one at a time after a failure
  SetStatus(Members()[0], "True", "DependenciesReady");
  Settle();
  EXPECT_EQ(Members().size(), 5u);  // healthy again: the usual batch of four more
}

}  // namespace
}  // namespace sbx::daemon
