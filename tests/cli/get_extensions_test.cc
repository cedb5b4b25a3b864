// sbx get of SandboxTemplate, SandboxWarmPool and SandboxClaim: upstream's
// printer columns (the CRDs' additionalPrinterColumns), -o wide extras, and
// the kind names kubectl accepts for them.
#include <gtest/gtest.h>

#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

const std::string kExt = "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/";

Json Meta(const std::string& name) {
  return {{"name", name},
          {"namespace", "default"},
          {"resourceVersion", "5"},
          {"creationTimestamp", "2026-01-01T00:00:00Z"}};
}

Json List(const std::string& kind, std::vector<Json> items) {
  return {{"kind", kind + "List"},
          {"apiVersion", "extensions.agents.x-k8s.io/v1beta1"},
          {"metadata", {{"resourceVersion", "42"}}},
          {"items", std::move(items)}};
}

Json Template(const std::string& name, const std::string& image) {
  return {
      {"kind", "SandboxTemplate"},
      {"metadata", Meta(name)},
      {"spec",
       {{"podTemplate", {{"spec", {{"containers", {{{"name", "main"}, {"image", image}}}}}}}}}}};
}

// strategy "": no spec.updateStrategy.
Json Pool(const std::string& name, int desired, Json status, const std::string& strategy = "") {
  Json o = {{"kind", "SandboxWarmPool"},
            {"metadata", Meta(name)},
            {"spec", {{"replicas", desired}, {"sandboxTemplateRef", {{"name", "tmpl"}}}}}};
  if (!status.is_null()) o["status"] = std::move(status);
  if (!strategy.empty()) o["spec"]["updateStrategy"]["type"] = strategy;
  return o;
}

Json Claim(const std::string& name, const std::string& ready, const std::string& reason,
           const std::string& sandbox) {
  Json o = {{"kind", "SandboxClaim"},
            {"metadata", Meta(name)},
            {"spec", {{"warmPoolRef", {{"name", "pool"}}}}}};
  if (!ready.empty()) {
    o["status"]["conditions"] = {{{"type", "Ready"}, {"status", ready}, {"reason", reason}}};
  }
  if (!sandbox.empty()) {
    o["status"]["sandbox"] = {{"name", sandbox}, {"podIPs", {"10.0.0.5"}}};
  }
  return o;
}

class GetExtensionsTest : public ::testing::Test {
 protected:
  FakeClock clock_{*ParseRfc3339("2026-01-01T00:03:02Z")};
};

TEST_F(GetExtensionsTest, TemplatesShowNameAndAgeWideAddsImages) {
  Routes routes;
  routes.Json("GET " + kExt + "sandboxtemplates", 200,
              List("SandboxTemplate",
                   {Template("hermes-agent", "hermes:1"), Template("aider", "aider:0.8")}));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandboxtemplates"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME           AGE\n"
            "hermes-agent   3m2s\n"
            "aider          3m2s\n");
  r = RunCli({"get", "sandboxtemplate", "-o", "wide"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME           AGE    IMAGE\n"
            "hermes-agent   3m2s   hermes:1\n"
            "aider          3m2s   aider:0.8\n");
}

TEST_F(GetExtensionsTest, WarmPoolsShowReadyAndDesiredWideAddsCurrentTemplateStrategy) {
  Routes routes;
  routes.Json(
      "GET " + kExt + "sandboxwarmpools", 200,
      List("SandboxWarmPool", {Pool("hermes-pool", 3, {{"replicas", 3}, {"readyReplicas", 2}}),
                               Pool("fresh", 1, Json(), "Recreate")}));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "swp"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  // A pool the controller has not reported on yet has an empty READY cell,
  // as kubectl prints a missing JSONPath. Without an updateStrategy the
  // strategy is upstream's default.
  EXPECT_EQ(r.out,
            "NAME          READY   DESIRED   AGE\n"
            "hermes-pool   2       3         3m2s\n"
            "fresh                 1         3m2s\n");
  r = RunCli({"get", "sandboxwarmpools", "-o", "wide"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME          READY   DESIRED   AGE    CURRENT   TEMPLATE   STRATEGY\n"
            "hermes-pool   2       3         3m2s   3         tmpl       OnReplenish\n"
            "fresh                 1         3m2s             tmpl       Recreate\n");
}

TEST_F(GetExtensionsTest, ClaimsShowReadySandboxReasonWideAddsPoolAndIPs) {
  Routes routes;
  routes.Json(
      "GET " + kExt + "sandboxclaims", 200,
      List("SandboxClaim", {Claim("claim-alice", "True", "DependenciesReady", "hermes-pool-x7k2p"),
                            Claim("claim-rejected", "False", "EnvVarsInjectionRejected", ""),
                            Claim("new", "", "", "")}));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandboxclaims"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME             READY   SANDBOX             REASON                     AGE\n"
            "claim-alice      True    hermes-pool-x7k2p   DependenciesReady          3m2s\n"
            "claim-rejected   False                       EnvVarsInjectionRejected   3m2s\n"
            "new                                                                     3m2s\n");
  routes.Json("GET " + kExt + "sandboxclaims/claim-alice", 200,
              Claim("claim-alice", "True", "DependenciesReady", "hermes-pool-x7k2p"));
  r = RunCli({"get", "sandboxclaim", "claim-alice", "-o", "wide"}, server.socket_path(), "",
             &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "NAME          READY   SANDBOX             REASON              AGE    WARMPOOL   POD IPS\n"
      "claim-alice   True    hermes-pool-x7k2p   DependenciesReady   3m2s   pool       10.0.0.5\n");
}

TEST_F(GetExtensionsTest, QualifiedKindNamesAndNameOutput) {
  Routes routes;
  routes.Json("GET " + kExt + "sandboxwarmpools/hermes-pool", 200, Pool("hermes-pool", 3, Json()));
  FakeServer server(routes.Handler());
  for (const char* kind :
       {"swp/hermes-pool", "sandboxwarmpool/hermes-pool", "SandboxWarmPool/hermes-pool",
        "sandboxwarmpools.extensions.agents.x-k8s.io/hermes-pool"}) {
    auto r = RunCli({"get", kind, "-o", "name"}, server.socket_path(), "", &clock_);
    EXPECT_EQ(r.rc, 0) << kind << ": " << r.err;
    EXPECT_EQ(r.out, "sandboxwarmpool.extensions.agents.x-k8s.io/hermes-pool\n") << kind;
  }
}

TEST_F(GetExtensionsTest, EmptyListSaysNoResources) {
  Routes routes;
  routes.Json("GET " + kExt + "sandboxclaims", 200, List("SandboxClaim", {}));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandboxclaims"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "No resources found in default namespace.\n");
}

}  // namespace
}  // namespace sbx::cli
