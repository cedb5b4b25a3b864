// SandboxIndex against a real store: members per owner in creation order,
// the first adoptable one, and the count of pool members still starting.
#include "daemon/sandbox_index.h"

#include <gtest/gtest.h>

#include "api/extensions.h"
#include "tests/store/store_fixture.h"

namespace sbx::daemon {
namespace {

class SandboxIndexTest : public store::storetest::StoreTest {
 protected:
  void TearDown() override {
    index_.reset();
    StoreTest::TearDown();
  }
  void StartIndex() {
    index_ = std::make_unique<SandboxIndex>(*store_);
    ASSERT_TRUE(index_->Start().ok());
  }
  api::Object Member(const std::string& name, const std::string& owner_kind,
                     const std::string& owner_uid) {
    api::Object o;
    o.api_version = "agents.x-k8s.io/v1beta1";
    o.kind = api::kSandboxKind;
    o.metadata.name = name;
    o.metadata.namespace_ = "default";
    o.metadata.owner_references.push_back(
        {"extensions.agents.x-k8s.io/v1beta1", owner_kind, "p", owner_uid, true, true});
    o.body["spec"] = {{"podTemplate", {{"spec", {{"containers", {{{"name", "c"}, {"image", "i"}}}}}}}}};
    auto created = store_->Create(o);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : o;
  }
  void SetReady(api::Object& o, bool ready) {
    api::Json cond = {{"type", "Ready"},
                      {"status", ready ? "True" : "False"},
                      {"reason", ready ? "DependenciesReady" : "ContainerCreating"},
                      {"lastTransitionTime", "2026-11-26T06:00:00Z"}};
    o.body["status"] = api::Json::object();
    o.body["status"]["conditions"] = api::Json::array({cond});
    auto r = store_->UpdateStatus(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    o = *r;
  }
  std::vector<std::string> Names(const std::string& owner_uid) {
    std::vector<std::string> out;
    for (const auto& s : index_->OwnedBy(owner_uid)) out.push_back(s->name);
    return out;
  }

  std::unique_ptr<SandboxIndex> index_;
};

TEST_F(SandboxIndexTest, KeepsMembersPerOwnerInCreationOrderAndCountsStartingOnes) {
  api::Object early = Member("z-early", api::kWarmPoolKind, "pool-1");
  StartIndex();  // one loaded by the initial list, the others from commits
  api::Object b = Member("b", api::kWarmPoolKind, "pool-1");
  api::Object a = Member("a", api::kWarmPoolKind, "pool-1");
  api::Object other = Member("c", api::kClaimKind, "claim-1");
  // Same creation second: creation order, not names.
  EXPECT_EQ(Names("pool-1"), (std::vector<std::string>{"z-early", "b", "a"}));
  EXPECT_EQ(Names("claim-1"), (std::vector<std::string>{"c"}));
  EXPECT_EQ(index_->StartingPoolMembers(), 3u);

  auto ready = [](const SandboxSummary& s) { return s.ready; };
  EXPECT_FALSE(index_->FirstOwned("pool-1", ready));
  SetReady(a, true);
  SetReady(b, true);
  EXPECT_EQ(index_->StartingPoolMembers(), 1u);
  auto first = index_->FirstOwned("pool-1", ready);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->name, "b");
  first = index_->FirstOwned("pool-1", [](const SandboxSummary& s) { return s.ready && s.name != "b"; });
  ASSERT_TRUE(first);
  EXPECT_EQ(first->name, "a");

  // A member changing hands moves to its new owner, keeping its place in time.
  b.metadata.owner_references = {{"extensions.agents.x-k8s.io/v1beta1", api::kClaimKind, "x",
                                  "claim-1", true, true}};
  ASSERT_TRUE(store_->Update(b).ok());
  EXPECT_EQ(Names("pool-1"), (std::vector<std::string>{"z-early", "a"}));
  EXPECT_EQ(Names("claim-1"), (std::vector<std::string>{"b", "c"}));

  SetReady(a, false);
  EXPECT_EQ(index_->StartingPoolMembers(), 2u);
  ASSERT_TRUE(store_->Delete({"agents.x-k8s.io", api::kSandboxKind, "default", "a"}).ok());
  ASSERT_TRUE(store_->Delete({"agents.x-k8s.io", api::kSandboxKind, "default", "z-early"}).ok());
  EXPECT_EQ(index_->StartingPoolMembers(), 0u);
  EXPECT_TRUE(Names("pool-1").empty());
  EXPECT_FALSE(index_->Get(early.metadata.uid));
  EXPECT_TRUE(index_->Get(other.metadata.uid));
}

}  // namespace
}  // namespace sbx::daemon
