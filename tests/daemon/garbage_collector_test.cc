// The garbage collector and delete propagation against a real store: owner
// references between SandboxWarmPools, SandboxClaims, Sandboxes (with the
// runtime finalizer the sandbox controller would remove) and ConfigMaps.
#include "daemon/garbage_collector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/time.h"
#include "daemon/resource_service.h"
#include "daemon/sandbox_controller.h"
#include "store/store.h"

namespace sbx::daemon {
namespace {

using namespace std::chrono_literals;

constexpr char kAgents[] = "agents.x-k8s.io";
constexpr char kExtensions[] = "extensions.agents.x-k8s.io";

api::Object MakeObject(const std::string& group, const std::string& kind, const std::string& name) {
  api::Object o;
  o.api_version = group.empty() ? "v1" : group + "/v1beta1";
  o.kind = kind;
  o.metadata.name = name;
  o.metadata.namespace_ = "default";
  return o;
}

api::Object Pool(const std::string& name) {
  api::Object o = MakeObject(kExtensions, "SandboxWarmPool", name);
  o.body["spec"] = {{"replicas", 1}, {"sandboxTemplateRef", {{"name", "tpl"}}}};
  return o;
}

api::Object Claim(const std::string& name) {
  api::Object o = MakeObject(kExtensions, "SandboxClaim", name);
  o.body["spec"] = {{"warmPoolRef", {{"name", "pool"}}}};
  return o;
}

// A Sandbox as ResourceService stores it: with the runtime finalizer.
api::Object Sandbox(const std::string& name, std::vector<api::OwnerReference> owners = {}) {
  api::Object o = MakeObject(kAgents, "Sandbox", name);
  o.body["spec"] = {
      {"podTemplate", {{"spec", {{"containers", {{{"name", "main"}, {"image", "busybox"}}}}}}}}};
  o.metadata.finalizers = {kRuntimeFinalizer};
  o.metadata.owner_references = std::move(owners);
  return o;
}

api::Object ConfigMap(const std::string& name, std::vector<api::OwnerReference> owners = {}) {
  api::Object o = MakeObject("", "ConfigMap", name);
  o.body["data"] = {{"k", "v"}};
  o.metadata.owner_references = std::move(owners);
  return o;
}

// As controllerutil.SetControllerReference makes them (blockOwnerDeletion on).
api::OwnerReference ControllerRef(const api::Object& owner, bool block = true) {
  return api::OwnerReference{owner.api_version,  owner.kind,          owner.metadata.name,
                             owner.metadata.uid, /*controller=*/true, block};
}

api::OwnerReference PlainRef(const api::Object& owner) {
  return api::OwnerReference{owner.api_version,  owner.kind,           owner.metadata.name,
                             owner.metadata.uid, /*controller=*/false, /*block=*/false};
}

store::ObjectKey KeyOf(const api::Object& o) {
  std::string group;
  if (auto slash = o.api_version.find('/'); slash != std::string::npos) {
    group = o.api_version.substr(0, slash);
  }
  return {group, o.kind, o.metadata.namespace_, o.metadata.name};
}

bool HasFinalizer(const api::Object& o, const std::string& f) {
  return std::find(o.metadata.finalizers.begin(), o.metadata.finalizers.end(), f) !=
         o.metadata.finalizers.end();
}

class GarbageCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-gc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::Store::Open(dir_ + "/sbx.db", &clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    gc_.reset();
    store_.reset();
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }

  void StartGc() {
    gc_ = std::make_unique<GarbageCollector>(*store_);
    ASSERT_TRUE(gc_->Start().ok());
  }
  void StopGc() {
    ASSERT_TRUE(gc_->WaitIdle(10s));
    gc_.reset();
  }
  void Idle() { ASSERT_TRUE(gc_->WaitIdle(10s)); }

  api::Object Create(const api::Object& o) {
    auto r = store_->Create(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : api::Object{};
  }
  std::optional<api::Object> Get(const api::Object& o) {
    auto r = store_->Get(KeyOf(o));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
      return std::nullopt;
    }
    if (r->metadata.uid != o.metadata.uid) return std::nullopt;
    return *r;
  }
  bool Gone(const api::Object& o) { return !Get(o).has_value(); }
  bool Deleting(const api::Object& o) {
    auto cur = Get(o);
    return cur && cur->metadata.deletion_timestamp.has_value();
  }
  void Delete(const api::Object& o, PropagationPolicy policy = PropagationPolicy::kBackground) {
    DeleteOptions opts;
    opts.propagation = policy;
    auto r = DeleteWithPropagation(*store_, KeyOf(o), opts);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // What the sandbox controller does once the runtime is torn down.
  void FinishRuntimeTeardown(const api::Object& o) {
    for (int i = 0; i < 10; ++i) {
      auto cur = Get(o);
      ASSERT_TRUE(cur.has_value());
      std::erase(cur->metadata.finalizers, std::string(kRuntimeFinalizer));
      auto up = store_->Update(*cur);
      if (up.ok()) return;
      ASSERT_EQ(up.status().code(), Code::kConflict) << up.status().ToString();
    }
    FAIL() << "too many conflicts";
  }
  bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(2ms);
    }
    return pred();
  }

  FakeClock clock_{std::chrono::sys_days{std::chrono::year{2026} / 3 / 1}};
  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<GarbageCollector> gc_;
};

TEST_F(GarbageCollectorTest, DeletingAClaimDeletesItsSandboxInTheBackground) {
  StartGc();
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim)}));
  api::Object other = Create(Sandbox("other"));

  Delete(claim);
  EXPECT_TRUE(Gone(claim)) << "background deletion does not wait for dependents";
  ASSERT_TRUE(Eventually([&] { return Deleting(sb); }));
  FinishRuntimeTeardown(sb);
  EXPECT_TRUE(Gone(sb));
  Idle();
  EXPECT_FALSE(Deleting(other));
  EXPECT_FALSE(Gone(other));
}

TEST_F(GarbageCollectorTest, DeletingAPoolDeletesOnlyItsUnclaimedMembers) {
  StartGc();
  api::Object pool = Create(Pool("pool"));
  api::Object claim = Create(Claim("c"));
  api::Object unclaimed = Create(Sandbox("pool-aaaaa", {ControllerRef(pool)}));
  api::Object adopted = Create(Sandbox("pool-bbbbb", {ControllerRef(pool)}));
  // Adoption replaces the pool's reference by the claim's.
  adopted.metadata.owner_references = {ControllerRef(claim)};
  auto up = store_->Update(adopted);
  ASSERT_TRUE(up.ok()) << up.status().ToString();

  Delete(pool);
  ASSERT_TRUE(Eventually([&] { return Deleting(unclaimed); }));
  Idle();
  EXPECT_FALSE(Deleting(adopted));
  EXPECT_EQ(Get(adopted)->metadata.owner_references, std::vector{ControllerRef(claim)});
}

TEST_F(GarbageCollectorTest, DependentWithAnotherLivingOwnerLosesOnlyTheDeadReference) {
  StartGc();
  api::Object pool = Create(Pool("pool"));
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("s", {ControllerRef(claim), PlainRef(pool)}));

  Delete(claim);
  ASSERT_TRUE(Eventually([&] { return Get(sb)->metadata.owner_references.size() == 1; }));
  Idle();
  EXPECT_FALSE(Deleting(sb));
  EXPECT_EQ(Get(sb)->metadata.owner_references, std::vector{PlainRef(pool)});

  // The survivor's own deletion now takes it.
  Delete(pool);
  EXPECT_TRUE(Eventually([&] { return Deleting(sb); }));
}

TEST_F(GarbageCollectorTest, ForegroundKeepsTheOwnerUntilBlockingDependentsAreGone) {
  StartGc();
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim)}));

  Delete(claim, PropagationPolicy::kForeground);
  ASSERT_TRUE(Eventually([&] { return Deleting(sb); }));
  Idle();
  // The sandbox waits for its runtime; so does the claim.
  auto held = Get(claim);
  ASSERT_TRUE(held.has_value());
  EXPECT_TRUE(held->metadata.deletion_timestamp.has_value());
  EXPECT_TRUE(HasFinalizer(*held, kForegroundDeletionFinalizer));

  FinishRuntimeTeardown(sb);
  EXPECT_TRUE(Gone(sb));
  EXPECT_TRUE(Eventually([&] { return Gone(claim); }));
}

TEST_F(GarbageCollectorTest, ForegroundDoesNotWaitForDependentsThatDoNotBlock) {
  StartGc();
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim, /*block=*/false)}));

  Delete(claim, PropagationPolicy::kForeground);
  EXPECT_TRUE(Eventually([&] { return Gone(claim); }));
  EXPECT_TRUE(Eventually([&] { return Deleting(sb); }));
}

TEST_F(GarbageCollectorTest, ForegroundDeletesAChainBottomUp) {
  StartGc();
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim)}));
  api::Object cm = Create(ConfigMap("c-config", {ControllerRef(sb)}));

  // When the sandbox held foregroundDeletion, and when the ConfigMap went.
  std::mutex mu;
  int64_t sb_foreground_from = 0, sb_foreground_until = 0, cm_deleted = 0;
  uint64_t sub = store_->Subscribe([&](const store::WatchEvent& ev) {
    std::lock_guard<std::mutex> l(mu);
    if (ev.object.metadata.uid == sb.metadata.uid) {
      bool fg = HasFinalizer(ev.object, kForegroundDeletionFinalizer);
      if (fg && sb_foreground_from == 0) sb_foreground_from = ev.resource_version;
      if (!fg && sb_foreground_from != 0 && sb_foreground_until == 0) {
        sb_foreground_until = ev.resource_version;
      }
    }
    if (ev.object.metadata.uid == cm.metadata.uid && ev.type == store::WatchEventType::kDeleted) {
      cm_deleted = ev.resource_version;
    }
  });

  Delete(claim, PropagationPolicy::kForeground);
  ASSERT_TRUE(Eventually([&] { return Gone(cm); }));
  Idle();
  ASSERT_TRUE(Deleting(sb));
  EXPECT_TRUE(Deleting(claim));
  FinishRuntimeTeardown(sb);
  EXPECT_TRUE(Gone(sb));
  EXPECT_TRUE(Eventually([&] { return Gone(claim); }));
  store_->Unsubscribe(sub);
  // The sandbox has a dependent of its own, so it was deleted in the
  // foreground too, and let go only after its ConfigMap was gone.
  std::lock_guard<std::mutex> l(mu);
  EXPECT_GT(sb_foreground_from, 0);
  EXPECT_GT(cm_deleted, sb_foreground_from);
  EXPECT_GT(sb_foreground_until, cm_deleted);
}

TEST_F(GarbageCollectorTest, OrphanRemovesTheReferencesAndKeepsTheDependents) {
  StartGc();
  api::Object pool = Create(Pool("pool"));
  api::Object a = Create(Sandbox("pool-aaaaa", {ControllerRef(pool)}));
  api::Object b = Create(Sandbox("pool-bbbbb", {ControllerRef(pool)}));

  Delete(pool, PropagationPolicy::kOrphan);
  ASSERT_TRUE(Eventually([&] { return Gone(pool); }));
  Idle();
  for (const auto& sb : {a, b}) {
    auto cur = Get(sb);
    ASSERT_TRUE(cur.has_value()) << sb.metadata.name;
    EXPECT_FALSE(cur->metadata.deletion_timestamp.has_value()) << sb.metadata.name;
    EXPECT_TRUE(cur->metadata.owner_references.empty()) << sb.metadata.name;
  }
}

TEST_F(GarbageCollectorTest, StartDeletesDependentsOfOwnersDeletedWhileItWasDown) {
  StartGc();
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim)}));
  StopGc();

  Delete(claim);  // sbxd killed before the collector saw it
  ASSERT_TRUE(Gone(claim));
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(Deleting(sb));

  StartGc();
  EXPECT_TRUE(Eventually([&] { return Deleting(sb); }));
}

TEST_F(GarbageCollectorTest, StartTreatsAnOwnerRecreatedUnderTheSameNameAsGone) {
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim)}));
  Delete(claim);
  api::Object again = Create(Claim("c"));
  ASSERT_NE(again.metadata.uid, claim.metadata.uid);

  StartGc();
  EXPECT_TRUE(Eventually([&] { return Deleting(sb); }));
  Idle();
  EXPECT_FALSE(Gone(again));
}

TEST_F(GarbageCollectorTest, StartResumesForegroundAndOrphanDeletions) {
  api::Object claim = Create(Claim("c"));
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim)}));
  api::Object pool = Create(Pool("pool"));
  api::Object member = Create(Sandbox("pool-aaaaa", {ControllerRef(pool)}));
  Delete(claim, PropagationPolicy::kForeground);
  Delete(pool, PropagationPolicy::kOrphan);
  ASSERT_TRUE(Deleting(claim));
  ASSERT_TRUE(Deleting(pool));

  StartGc();
  ASSERT_TRUE(Eventually([&] { return Deleting(sb); }));
  EXPECT_TRUE(Eventually([&] { return Gone(pool); }));
  FinishRuntimeTeardown(sb);
  EXPECT_TRUE(Eventually([&] { return Gone(claim); }));
  Idle();
  EXPECT_FALSE(Deleting(member));
  EXPECT_TRUE(Get(member)->metadata.owner_references.empty());
}

TEST_F(GarbageCollectorTest, DependentCreatedAfterItsOwnerWentIsDeleted) {
  StartGc();
  api::Object claim = Create(Claim("c"));
  Delete(claim);
  // A controller that read the claim before it went creates its sandbox.
  api::Object sb = Create(Sandbox("c", {ControllerRef(claim)}));
  EXPECT_TRUE(Eventually([&] { return Deleting(sb); }));
}

TEST_F(GarbageCollectorTest, ReferencesToUnknownKindsAreLeftAlone) {
  StartGc();
  api::OwnerReference foreign{"apps/v1", "Deployment", "web", "1234", true, true};
  api::Object sb = Create(Sandbox("s", {foreign}));
  Idle();
  EXPECT_FALSE(Deleting(sb));
  EXPECT_EQ(Get(sb)->metadata.owner_references, std::vector{foreign});
}

TEST_F(GarbageCollectorTest, ThousandClaimDeletionsCascadeQuickly) {
  constexpr int kClaims = 1000;
  std::vector<api::Object> claims, sandboxes;
  ASSERT_TRUE(store_
                  ->Transact([&](store::Txn& txn) -> Status {
                    for (int i = 0; i < kClaims; ++i) {
                      std::string name = "c" + std::to_string(i);
                      SBX_ASSIGN_OR_RETURN(api::Object c, txn.Create(Claim(name)));
                      SBX_ASSIGN_OR_RETURN(api::Object s,
                                           txn.Create(Sandbox(name, {ControllerRef(c)})));
                      claims.push_back(c);
                      sandboxes.push_back(s);
                    }
                    return Status::Ok();
                  })
                  .ok());
  StartGc();
  auto start = std::chrono::steady_clock::now();
  for (const auto& c : claims) Delete(c);
  Idle();
  auto took = std::chrono::steady_clock::now() - start;
  for (const auto& s : sandboxes) ASSERT_TRUE(Deleting(s)) << s.metadata.name;
  std::cout << "deleted " << kClaims << " claims and marked their sandboxes in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  // Generous for a shared 2-core machine; a list per deletion takes minutes.
  EXPECT_LT(took, 30s);
}

// DeleteWithPropagation itself, without the collector.

TEST_F(GarbageCollectorTest, ForegroundAndOrphanMarkTheObjectInOneStep) {
  api::Object claim = Create(Claim("c"));
  api::Object pool = Create(Pool("p"));
  std::vector<store::WatchEvent> seen;
  std::mutex mu;
  uint64_t sub = store_->Subscribe([&](const store::WatchEvent& ev) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(ev);
  });
  Delete(claim, PropagationPolicy::kForeground);
  Delete(pool, PropagationPolicy::kOrphan);
  store_->Unsubscribe(sub);

  auto c = Get(claim);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->metadata.deletion_timestamp.has_value());
  EXPECT_EQ(c->metadata.finalizers, std::vector<std::string>{kForegroundDeletionFinalizer});
  auto p = Get(pool);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->metadata.deletion_timestamp.has_value());
  EXPECT_EQ(p->metadata.finalizers, std::vector<std::string>{kOrphanFinalizer});
  // Each delete is the finalizer and the mark, written together.
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[1].resource_version, seen[0].resource_version + 1);
  EXPECT_EQ(seen[3].resource_version, seen[2].resource_version + 1);
}

TEST_F(GarbageCollectorTest, ADeletionUnderWayKeepsItsPolicyUnlessBackgroundIsAsked) {
  api::Object claim = Create(Claim("c"));
  Delete(claim, PropagationPolicy::kForeground);
  // Orphan cannot add its finalizer to an object being deleted, and must not
  // drop foregroundDeletion either (that would cascade in the background).
  Delete(claim, PropagationPolicy::kOrphan);
  auto cur = Get(claim);
  ASSERT_TRUE(cur.has_value());
  EXPECT_EQ(cur->metadata.finalizers, std::vector<std::string>{kForegroundDeletionFinalizer});
  // Background drops it: nothing holds the claim any more.
  Delete(claim, PropagationPolicy::kBackground);
  EXPECT_TRUE(Gone(claim));
}

TEST_F(GarbageCollectorTest, PreconditionsThatDoNotMatchChangeNothing) {
  api::Object claim = Create(Claim("c"));
  struct Case {
    std::string uid, rv, want;
  } cases[] = {
      {"other-uid", "",
       "Precondition failed: UID in precondition: other-uid, UID in object meta: " +
           claim.metadata.uid},
      {"", "999",
       "Precondition failed: ResourceVersion in precondition: 999, ResourceVersion in "
       "object meta: " +
           claim.metadata.resource_version},
  };
  for (const auto& c : cases) {
    DeleteOptions opts;
    opts.propagation = PropagationPolicy::kForeground;
    opts.precondition_uid = c.uid;
    opts.precondition_resource_version = c.rv;
    auto r = DeleteWithPropagation(*store_, KeyOf(claim), opts);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kConflict);
    EXPECT_EQ(r.status().message(), c.want);
    auto cur = Get(claim);
    ASSERT_TRUE(cur.has_value());
    EXPECT_EQ(cur->metadata.resource_version, claim.metadata.resource_version);
  }
  DeleteOptions ok;
  ok.precondition_uid = claim.metadata.uid;
  ok.precondition_resource_version = claim.metadata.resource_version;
  EXPECT_TRUE(DeleteWithPropagation(*store_, KeyOf(claim), ok).ok());
  EXPECT_TRUE(Gone(claim));
}

TEST_F(GarbageCollectorTest, ResourceServiceDeletesWithTheRequestedPolicy) {
  ResourceService service(*store_);
  ASSERT_TRUE(service.EnsureNamespace("default").ok());
  api::Object claim = Create(Claim("c"));
  const api::KindInfo* kind = api::FindKind("sandboxclaims");
  ASSERT_NE(kind, nullptr);
  auto opts = ParseDeleteOptions(
      R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"})", {});
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto r = service.Delete(*kind, "default", "c", *opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->metadata.deletion_timestamp.has_value());
  EXPECT_EQ(r->metadata.finalizers, std::vector<std::string>{kForegroundDeletionFinalizer});
}

// ParseDeleteOptions: the body when there is one, else the query.

struct OptionsCase {
  std::string body;
  std::vector<std::pair<std::string, std::string>> query = {};
  PropagationPolicy want = PropagationPolicy::kUnset;
  std::string uid = "";
  std::string rv = "";
};

TEST(ParseDeleteOptionsTest, ReadsBodyOrQuery) {
  const OptionsCase cases[] = {
      {"", {}, PropagationPolicy::kUnset},
      {"  \n", {}, PropagationPolicy::kUnset},
      {"{}", {}, PropagationPolicy::kUnset},
      {R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"})",
       {},
       PropagationPolicy::kForeground},
      {R"({"apiVersion":"meta.k8s.io/v1","propagationPolicy":"Orphan"})",
       {},
       PropagationPolicy::kOrphan},
      {R"({"propagationPolicy":"Background","gracePeriodSeconds":0})",
       {},
       PropagationPolicy::kBackground},
      {R"({"orphanDependents":true})", {}, PropagationPolicy::kOrphan},
      {R"({"orphanDependents":false})", {}, PropagationPolicy::kBackground},
      {R"({"preconditions":{"uid":"u1","resourceVersion":"7"},"dryRun":[]})",
       {},
       PropagationPolicy::kUnset,
       "u1",
       "7"},
      {R"({"propagationPolicy":null,"preconditions":null})", {}, PropagationPolicy::kUnset},
      {"", {{"propagationPolicy", "Foreground"}}, PropagationPolicy::kForeground},
      {"", {{"orphanDependents", "true"}}, PropagationPolicy::kOrphan},
      {"",
       {{"gracePeriodSeconds", "30"}, {"propagationPolicy", "Orphan"}},
       PropagationPolicy::kOrphan},
      // As in Kubernetes, a body replaces the query's options.
      {R"({"propagationPolicy":"Orphan"})",
       {{"propagationPolicy", "Foreground"}},
       PropagationPolicy::kOrphan},
  };
  for (const auto& c : cases) {
    auto r = ParseDeleteOptions(c.body, c.query);
    ASSERT_TRUE(r.ok()) << c.body << ": " << r.status().ToString();
    EXPECT_EQ(r->propagation, c.want) << c.body;
    EXPECT_EQ(r->precondition_uid, c.uid) << c.body;
    EXPECT_EQ(r->precondition_resource_version, c.rv) << c.body;
  }
}

TEST(ParseDeleteOptionsTest, BadValuesNameTheField) {
  const std::pair<OptionsCase, std::string> cases[] = {
      {{R"({"propagationPolicy":"Sideways"})"},
       R"(propagationPolicy: Unsupported value: "Sideways": supported values: "Background", "Foreground", "Orphan")"},
      {{"", {{"propagationPolicy", "foreground"}}},
       R"(propagationPolicy: Unsupported value: "foreground": supported values: "Background", "Foreground", "Orphan")"},
      {{R"({"propagationPolicy":1})"}, "propagationPolicy: Invalid value: 1: must be a string"},
      {{R"({"propagationPolicy":"Orphan","orphanDependents":false})"},
       R"(propagationPolicy: Invalid value: "Orphan": orphanDependents and propagationPolicy cannot be both set)"},
      {{R"({"kind":"Status"})"},
       R"(kind: Unsupported value: "Status": supported values: "DeleteOptions")"},
      {{R"({"apiVersion":"v2"})"},
       R"(apiVersion: Unsupported value: "v2": supported values: "v1", "meta.k8s.io/v1")"},
      {{R"({"orphanDependents":"yes"})"},
       R"(orphanDependents: Invalid value: "yes": must be a boolean)"},
      {{"", {{"orphanDependents", "yes"}}},
       R"(orphanDependents: Invalid value: "yes": must be true or false)"},
      {{R"({"gracePeriodSeconds":-1})"},
       "gracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"},
      {{"", {{"gracePeriodSeconds", "soon"}}},
       R"(gracePeriodSeconds: Invalid value: "soon": must be an integer)"},
      {{R"({"preconditions":{"uid":5}})"}, "preconditions.uid: Invalid value: 5: must be a string"},
      {{R"({"preconditions":{"name":"x"}})"},
       R"(DeleteOptions cannot be handled: strict decoding error: unknown field "preconditions.name")"},
      {{R"({"cascade":"foreground"})"},
       R"(DeleteOptions cannot be handled: strict decoding error: unknown field "cascade")"},
      {{R"({"dryRun":["All"]})"},
       R"(dryRun: Unsupported value: "All": sbxd does not support dry-run deletes)"},
      {{"", {{"dryRun", "All"}}},
       R"(dryRun: Unsupported value: "All": sbxd does not support dry-run deletes)"},
      {{"{not json"}, "DeleteOptions: the request body is not valid JSON"},
      {{"[]"}, "DeleteOptions: the request body must be a JSON object"},
  };
  for (const auto& [c, want] : cases) {
    auto r = ParseDeleteOptions(c.body, c.query);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.body;  // 400 BadRequest
    EXPECT_EQ(r.status().message(), want);
  }
}

}  // namespace
}  // namespace sbx::daemon
