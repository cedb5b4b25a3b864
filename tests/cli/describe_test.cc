#include <gtest/gtest.h>

#include "cli/commands.h"
#include "cli/printer.h"
#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

TimePoint Now() { return *ParseRfc3339("2026-01-01T01:00:00Z"); }

TEST(TabwriteTest, AlignsEachRunOfLinesSeparately) {
  EXPECT_EQ(Tabwrite("Name:\tsb1\nNamespace:\tdefault\nSpec:\n  Image:\tbusybox\n", 0, 2),
            "Name:       sb1\n"
            "Namespace:  default\n"
            "Spec:\n"
            "  Image:  busybox\n");
  // A continuation line (empty first cell) belongs to the block above.
  EXPECT_EQ(Tabwrite("Labels:\ta=b\n\tc=d\nAnnotations:\t<none>\n", 0, 2),
            "Labels:       a=b\n"
            "              c=d\n"
            "Annotations:  <none>\n");
}

Json SandboxWithEverything() {
  return Json::parse(R"({
    "apiVersion": "agents.x-k8s.io/v1beta1",
    "kind": "Sandbox",
    "metadata": {
      "name": "sb1", "namespace": "default", "uid": "1234-abcd", "generation": 2,
      "resourceVersion": "17", "creationTimestamp": "2026-01-01T00:00:00Z",
      "labels": {"app": "agent", "tier": "sandbox"},
      "finalizers": ["sbx.dev/runtime"]
    },
    "spec": {
      "operatingMode": "Running",
      "podTemplate": {
        "spec": {
          "runtimeClassName": "gvisor",
          "containers": [{
            "name": "main", "image": "busybox",
            "command": ["sh", "-c"], "args": ["sleep 3600"],
            "env": [
              {"name": "MODE", "value": "fast"},
              {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
              {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}}
            ]
          }]
        }
      }
    },
    "status": {
      "podIPs": ["10.88.0.2"],
      "conditions": [
        {"type": "Ready", "status": "True", "reason": "DependenciesReady", "message": "",
         "lastTransitionTime": "2026-01-01T00:00:03Z", "observedGeneration": 2}
      ],
      "containerStatuses": [
        {"name": "main", "ready": true, "restartCount": 1,
         "state": {"running": {"startedAt": "2026-01-01T00:00:03Z"}},
         "lastState": {"terminated": {"exitCode": 137, "reason": "Error"}}}
      ]
    }
  })");
}

Json Events() {
  return Json::parse(R"({"kind": "EventList", "items": [
    {"type": "Warning", "reason": "BackOff", "message": "Back-off restarting container main",
     "count": 4, "firstTimestamp": "2026-01-01T00:10:00Z", "lastTimestamp": "2026-01-01T00:59:00Z",
     "source": {"component": "sbxd"}},
    {"type": "Normal", "reason": "Started", "message": "Started container main",
     "count": 1, "firstTimestamp": "2026-01-01T00:00:03Z", "lastTimestamp": "2026-01-01T00:00:03Z",
     "source": {"component": "sbxd"}}
  ]})");
}

TEST(DescribeObjectTest, SandboxGolden) {
  EXPECT_EQ(DescribeObject(SandboxWithEverything(), Events(), Now()),
            R"(Name:         sb1
Namespace:    default
Labels:       app=agent
              tier=sandbox
Annotations:  <none>
API Version:  agents.x-k8s.io/v1beta1
Kind:         Sandbox
Metadata:
  Creation Timestamp:  2026-01-01T00:00:00Z
  Finalizers:
    sbx.dev/runtime
  Generation:        2
  Resource Version:  17
  UID:               1234-abcd
Spec:
  Operating Mode:  Running
  Pod Template:
    Labels:       <none>
    Annotations:  <none>
    Containers:
      main:
        Image:  busybox
        Command:
          sh
          -c
        Args:
          sleep 3600
        Environment:
          MODE:          fast
          TOKEN:         <set to the key 'token' in secret 'creds'>
          LEVEL:         <set to the key 'level' of config map 'cfg'>
    Runtime Class Name:  gvisor
Status:
  Conditions:
    Type   Status  Reason             Message  Last Transition Time
    ----   ------  ------             -------  --------------------
    Ready  True    DependenciesReady           2026-01-01T00:00:03Z
  Container Statuses:
    main:
      State:          Running
        Started:      2026-01-01T00:00:03Z
      Last State:     Terminated
        Reason:       Error
        Exit Code:    137
      Ready:          true
      Restart Count:  1
  Pod IPs:
    10.88.0.2
Events:
  Type     Reason   Age                From  Message
  ----     ------   ----               ----  -------
  Normal   Started  59m                sbxd  Started container main
  Warning  BackOff  60s (x4 over 50m)  sbxd  Back-off restarting container main
)");
}

TEST(DescribeObjectTest, SecretShowsSizesNeverValues) {
  Json secret = Json::parse(R"({
    "apiVersion": "v1", "kind": "Secret",
    "metadata": {"name": "creds", "namespace": "default"},
    "type": "Opaque",
    "data": {"token": "c2VjcmV0LXZhbHVl", "empty": ""}
  })");
  std::string text = DescribeObject(secret, Json(), Now());
  EXPECT_EQ(text.find("c2VjcmV0LXZhbHVl"), std::string::npos);
  EXPECT_EQ(text.find("secret-value"), std::string::npos);
  EXPECT_NE(text.find("token:  12 bytes\n"), std::string::npos) << text;
  EXPECT_NE(text.find("empty:  0 bytes\n"), std::string::npos) << text;
  EXPECT_EQ(text,
            "Name:         creds\n"
            "Namespace:    default\n"
            "Labels:       <none>\n"
            "Annotations:  <none>\n"
            "\n"
            "Type:  Opaque\n"
            "\n"
            "Data\n"
            "====\n"
            "empty:  0 bytes\n"
            "token:  12 bytes\n");
}

TEST(DescribeObjectTest, ConfigMapShowsDataAndEvents) {
  Json cm = Json::parse(R"({
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "cfg", "namespace": "default", "labels": {"a": "b"}},
    "data": {"level": "debug", "script": "echo one\necho two"},
    "binaryData": {"blob": "AAEC"}
  })");
  EXPECT_EQ(DescribeObject(cm, Json(), Now()),
            "Name:         cfg\n"
            "Namespace:    default\n"
            "Labels:       a=b\n"
            "Annotations:  <none>\n"
            "\n"
            "Data\n"
            "====\n"
            "level:\n"
            "----\n"
            "debug\n"
            "script:\n"
            "----\n"
            "echo one\n"
            "echo two\n"
            "\n"
            "BinaryData\n"
            "====\n"
            "blob:  <binary>\n"
            "\n"
            "Events:  <none>\n");
}

TEST(DescribeCommandTest, FetchesTheObjectAndItsEvents) {
  Routes routes;
  routes.Json("GET /apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/sb1", 200,
              SandboxWithEverything());
  routes.Json("GET /api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3D1234-abcd",
              200, Events());
  FakeServer server(routes.Handler());
  FakeClock clock(Now());
  auto r = RunCli({"describe", "sandbox", "sb1"}, server.socket_path(), "", &clock);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, DescribeObject(SandboxWithEverything(), Events(), Now()));
}

TEST(DescribeCommandTest, MissingObjectIsNotFound) {
  Routes routes;
  routes.Status("GET /apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/x", 404, "NotFound",
                "sandboxes.agents.x-k8s.io \"x\" not found");
  FakeServer server(routes.Handler());
  auto r = RunCli({"describe", "sandbox", "x"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error from server (NotFound): sandboxes.agents.x-k8s.io \"x\" not found\n");
}

}  // namespace
}  // namespace sbx::cli
