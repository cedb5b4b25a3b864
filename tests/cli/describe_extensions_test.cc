// sbx describe of SandboxClaim, SandboxWarmPool and SandboxTemplate: the
// fields users look for first (bound sandbox, replicas, policies with their
// upstream defaults), conditions and events.
#include <gtest/gtest.h>

#include "cli/commands.h"
#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

TimePoint Now() { return *ParseRfc3339("2026-01-01T01:00:00Z"); }

Json Claim() {
  return Json::parse(R"({
    "apiVersion": "extensions.agents.x-k8s.io/v1beta1",
    "kind": "SandboxClaim",
    "metadata": {
      "name": "claim-alice", "namespace": "hermes-demo", "uid": "c-1", "generation": 1,
      "resourceVersion": "40", "creationTimestamp": "2026-01-01T00:00:00Z",
      "annotations": {"agents.x-k8s.io/sandbox-name": "hermes-pool-x7k2p"}
    },
    "spec": {
      "warmPoolRef": {"name": "hermes-pool"},
      "lifecycle": {"shutdownTime": "2026-01-01T02:00:00Z", "shutdownPolicy": "Delete"},
      "additionalPodMetadata": {"labels": {"team": "alice"}}
    },
    "status": {
      "sandbox": {"name": "hermes-pool-x7k2p", "podIPs": ["10.0.0.5", "fd00::5"]},
      "conditions": [
        {"type": "Ready", "status": "True", "reason": "DependenciesReady", "message": "",
         "lastTransitionTime": "2026-01-01T00:00:01Z", "observedGeneration": 1}
      ]
    }
  })");
}

Json ClaimEvents() {
  return Json::parse(R"({"kind": "EventList", "items": [
    {"type": "Normal", "reason": "SandboxAdopted", "message": "Adopted warm sandbox hermes-pool-x7k2p",
     "count": 1, "firstTimestamp": "2026-01-01T00:00:01Z", "lastTimestamp": "2026-01-01T00:00:01Z",
     "source": {"component": "sbxd"}}
  ]})");
}

TEST(DescribeClaimTest, WarmClaimShowsPoolBoundSandboxLifecycleConditionsAndEvents) {
  EXPECT_EQ(DescribeObject(Claim(), ClaimEvents(), Now()),
            R"(Name:         claim-alice
Namespace:    hermes-demo
Labels:       <none>
Annotations:  agents.x-k8s.io/sandbox-name=hermes-pool-x7k2p
API Version:  extensions.agents.x-k8s.io/v1beta1
Kind:         SandboxClaim
Metadata:
  Creation Timestamp:  2026-01-01T00:00:00Z
  Generation:          1
  Resource Version:    40
  UID:                 c-1
Warm Pool:             hermes-pool
Sandbox:               hermes-pool-x7k2p
Pod IPs:               10.0.0.5,fd00::5
Lifecycle:
  Shutdown Time:               2026-01-01T02:00:00Z (in 60m)
  Shutdown Policy:             Delete
  TTL Seconds After Finished:  <unset>
Additional Pod Metadata:
  Labels:       team=alice
  Annotations:  <none>
Conditions:
  Type   Status  Reason             Message  Last Transition Time
  ----   ------  ------             -------  --------------------
  Ready  True    DependenciesReady           2026-01-01T00:00:01Z
Events:
  Type    Reason          Age   From  Message
  ----    ------          ----  ----  -------
  Normal  SandboxAdopted  59m   sbxd  Adopted warm sandbox hermes-pool-x7k2p
)");
}

Json ColdClaim() {
  return Json::parse(R"({
    "apiVersion": "extensions.agents.x-k8s.io/v1beta1",
    "kind": "SandboxClaim",
    "metadata": {"name": "claim-bob", "namespace": "default"},
    "spec": {
      "warmPoolRef": {"name": "pool"},
      "lifecycle": {"shutdownPolicy": "Retain", "ttlSecondsAfterFinished": 30,
                    "shutdownTime": "2026-01-01T00:30:00Z"},
      "env": [{"name": "USER", "value": "bob"}, {"name": "MODE", "value": "fast", "containerName": "agent"}],
      "volumeClaimTemplates": [{"metadata": {"name": "workspace"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "6Gi"}}}}]
    }
  })");
}

TEST(DescribeClaimTest, UnboundClaimShowsOverridesDefaultsAndNoConditions) {
  EXPECT_EQ(DescribeObject(ColdClaim(), Json(), Now()),
            R"(Name:         claim-bob
Namespace:    default
Labels:       <none>
Annotations:  <none>
API Version:  extensions.agents.x-k8s.io/v1beta1
Kind:         SandboxClaim
Warm Pool:    pool
Sandbox:      <none>
Pod IPs:      <none>
Lifecycle:
  Shutdown Time:               2026-01-01T00:30:00Z (30m ago)
  Shutdown Policy:             Retain
  TTL Seconds After Finished:  30
Environment:
  USER:  bob
  MODE:  fast  (container agent)
Volume Claim Templates:
  workspace:
    Access Modes:     ReadWriteOnce
    Storage Class:    <unset>
    Storage Request:  6Gi
Conditions:           <none>
Events:               <none>
)");
}

TEST(DescribeClaimTest, LifecycleDefaultsWhenUnset) {
  Json claim = ColdClaim();
  claim["spec"].erase("lifecycle");
  std::string text = DescribeObject(claim, Json(), Now());
  EXPECT_NE(text.find("Lifecycle:\n"
                      "  Shutdown Time:               <unset>\n"
                      "  Shutdown Policy:             Retain\n"
                      "  TTL Seconds After Finished:  <unset>\n"),
            std::string::npos)
      << text;
}

Json Pool() {
  return Json::parse(R"({
    "apiVersion": "extensions.agents.x-k8s.io/v1beta1",
    "kind": "SandboxWarmPool",
    "metadata": {"name": "hermes-pool", "namespace": "hermes-demo", "uid": "p-1",
                 "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"replicas": 3, "sandboxTemplateRef": {"name": "hermes-agent"},
             "updateStrategy": {"type": "Recreate"}},
    "status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 1,
               "selector": "agents.x-k8s.io/warm-pool-sandbox=1a2b3c4d",
               "conditions": [{"type": "Ready", "status": "False", "reason": "TemplateNotFound",
                               "message": "SandboxTemplate \"hermes-agent\" not found",
                               "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
  })");
}

TEST(DescribeWarmPoolTest, ShowsTemplateStrategyReplicasSelectorAndWhyNotReady) {
  EXPECT_EQ(DescribeObject(Pool(), Json(), Now()),
            R"(Name:         hermes-pool
Namespace:    hermes-demo
Labels:       <none>
Annotations:  <none>
API Version:  extensions.agents.x-k8s.io/v1beta1
Kind:         SandboxWarmPool
Metadata:
  Creation Timestamp:  2026-01-01T00:00:00Z
  UID:                 p-1
Template:              hermes-agent
Update Strategy:       Recreate
Replicas:              3 desired | 2 current | 1 ready
Selector:              agents.x-k8s.io/warm-pool-sandbox=1a2b3c4d
Conditions:
  Type   Status  Reason            Message                                   Last Transition Time
  ----   ------  ------            -------                                   --------------------
  Ready  False   TemplateNotFound  SandboxTemplate "hermes-agent" not found  2026-01-01T00:00:00Z
Events:  <none>
)");
}

TEST(DescribeWarmPoolTest, NewPoolWithoutStatusShowsDefaults) {
  Json pool = Pool();
  pool.erase("status");
  pool["spec"].erase("updateStrategy");
  std::string text = DescribeObject(pool, Json(), Now());
  EXPECT_NE(text.find("Update Strategy:       OnReplenish\n"
                      "Replicas:              3 desired | 0 current | 0 ready\n"
                      "Selector:              <none>\n"
                      "Conditions:            <none>\n"),
            std::string::npos)
      << text;
}

Json Template() {
  return Json::parse(R"({
    "apiVersion": "extensions.agents.x-k8s.io/v1beta1",
    "kind": "SandboxTemplate",
    "metadata": {"name": "secure-datascience-template", "namespace": "default"},
    "spec": {
      "podTemplate": {"spec": {"containers": [{"name": "my-container", "image": "busybox",
        "command": ["/bin/sh", "-c", "sleep 36000"]}]}},
      "volumeClaimTemplatesPolicy": "Overrides",
      "volumeClaimTemplates": [{"metadata": {"name": "workspace"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    }
  })");
}

TEST(DescribeTemplateTest, ShowsPoliciesWithDefaultsContainersAndVolumeClaimTemplates) {
  EXPECT_EQ(DescribeObject(Template(), Json(), Now()),
            R"(Name:                           secure-datascience-template
Namespace:                      default
Labels:                         <none>
Annotations:                    <none>
API Version:                    extensions.agents.x-k8s.io/v1beta1
Kind:                           SandboxTemplate
Env Vars Injection Policy:      Disallowed
Volume Claim Templates Policy:  Overrides
Network Policy Management:      Managed
Network Policy:                 <default>
Service:                        false
Pod Template:
  Labels:       <none>
  Annotations:  <none>
  Containers:
    my-container:
      Image:  busybox
      Command:
        /bin/sh
        -c
        sleep 36000
      Environment:  <none>
Volume Claim Templates:
  workspace:
    Access Modes:     ReadWriteOnce
    Storage Class:    <unset>
    Storage Request:  1Gi
Events:               <none>
)");
}

TEST(DescribeTemplateTest, NetworkPolicyAndExplicitPolicies) {
  Json tmpl = Template();
  tmpl["spec"]["envVarsInjectionPolicy"] = "Overrides";
  tmpl["spec"]["service"] = true;
  tmpl["spec"].erase("volumeClaimTemplates");
  std::string unmanaged = [&] {
    Json t = tmpl;
    t["spec"]["networkPolicyManagement"] = "Unmanaged";
    return DescribeObject(t, Json(), Now());
  }();
  EXPECT_NE(unmanaged.find("Env Vars Injection Policy:      Overrides\n"), std::string::npos)
      << unmanaged;
  EXPECT_NE(unmanaged.find("Network Policy Management:      Unmanaged\n"
                           "Network Policy:                 <none>\n"
                           "Service:                        true\n"),
            std::string::npos)
      << unmanaged;
  EXPECT_NE(unmanaged.find("Volume Claim Templates:  <none>\n"), std::string::npos) << unmanaged;

  tmpl["spec"]["networkPolicy"] =
      Json::parse(R"({"egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})");
  std::string custom = DescribeObject(tmpl, Json(), Now());
  EXPECT_NE(custom.find("Network Policy:\n"
                        "  Egress:\n"
                        "    Ports:\n"
                        "      Port:      53\n"
                        "      Protocol:  UDP\n"),
            std::string::npos)
      << custom;
}

TEST(DescribeCommandTest, ClaimByShortFormFetchesItsEvents) {
  Routes routes;
  routes.Json(
      "GET /apis/extensions.agents.x-k8s.io/v1beta1/namespaces/hermes-demo/sandboxclaims/"
      "claim-alice",
      200, Claim());
  routes.Json("GET /api/v1/namespaces/hermes-demo/events?fieldSelector=involvedObject.uid%3Dc-1",
              200, ClaimEvents());
  FakeServer server(routes.Handler());
  FakeClock clock(Now());
  auto r = RunCli({"describe", "sandboxclaim/claim-alice", "-n", "hermes-demo"},
                  server.socket_path(), "", &clock);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, DescribeObject(Claim(), ClaimEvents(), Now()));
}

TEST(DescribeCommandTest, EveryWarmPoolOfANamespace) {
  Routes routes;
  Json other = Pool();
  other["metadata"]["name"] = "second";
  other["metadata"]["uid"] = "p-2";
  routes.Json(
      "GET /apis/extensions.agents.x-k8s.io/v1beta1/namespaces/hermes-demo/sandboxwarmpools", 200,
      {{"kind", "SandboxWarmPoolList"}, {"items", {Pool(), other}}});
  FakeServer server(routes.Handler());
  FakeClock clock(Now());
  auto r = RunCli({"describe", "swp", "-n", "hermes-demo"}, server.socket_path(), "", &clock);
  EXPECT_EQ(r.rc, 0) << r.err;
  // Events are best effort: the fake server has none (404) and both pools are still described.
  EXPECT_EQ(r.out,
            DescribeObject(Pool(), Json(), Now()) + "\n\n" + DescribeObject(other, Json(), Now()));
}

}  // namespace
}  // namespace sbx::cli
