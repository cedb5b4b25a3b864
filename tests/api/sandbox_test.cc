// Typed Sandbox view and condition helpers.
#include "api/sandbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/decode.h"

namespace sbx::api {
namespace {

using std::chrono::seconds;

Object DecodedSandbox(const std::string& yaml) {
  auto docs = ParseDocuments(yaml, "sb.yaml");
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  auto obj = DecodeObject((*docs)[0]);
  EXPECT_TRUE(obj.ok()) << obj.status().ToString();
  return *obj;
}

const char kFullSandbox[] = R"(
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata:
  name: sb
  namespace: default
  labels: {team: a}
spec:
  service: true
  shutdownTime: "2030-01-01T00:00:00Z"
  shutdownPolicy: Delete
  operatingMode: Suspended
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce]}
  podTemplate:
    metadata:
      labels: {app: x}
      annotations: {note: y}
    spec:
      runtimeClassName: gvisor
      restartPolicy: OnFailure
      hostname: box
      dnsPolicy: None
      initContainers:
      - name: init
        image: busybox
        command: [sh, -c, "true"]
      containers:
      - name: main
        image: python:3.12
        workingDir: /work
        imagePullPolicy: IfNotPresent
        command: [python]
        args: [-m, http.server]
        tty: true
        stdin: true
        ports: [{containerPort: 8000}]
        volumeMounts: [{name: data, mountPath: /data}]
        env:
        - {name: LITERAL, value: v}
        - {name: EMPTY, value: ""}
        - name: FROM_SECRET
          valueFrom: {secretKeyRef: {name: s, key: k, optional: true}}
        - name: FROM_CM
          valueFrom: {configMapKeyRef: {name: c, key: k}}
        - name: FROM_FIELD
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: FROM_FILE
          valueFrom: {fileKeyRef: {volumeName: data, path: p, key: k}}
status:
  serviceFQDN: sb.default.svc.cluster.local
  service: sb
  selector: agents.x-k8s.io/sandbox-name-hash=abc
  nodeName: local
  podIPs: [10.0.0.2]
  conditions:
  - type: Ready
    status: "False"
    reason: SandboxSuspended
    message: suspended
    observedGeneration: 2
    lastTransitionTime: "2029-01-01T00:00:00Z"
  containerStatuses:
  - name: main
    ready: false
    restartCount: 1
    state: {terminated: {exitCode: 3}}
)";

TEST(SandboxTest, FromObjectReadsEveryField) {
  auto sb = Sandbox::FromObject(DecodedSandbox(kFullSandbox));
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  EXPECT_EQ(sb->metadata.name, "sb");
  EXPECT_EQ(sb->spec.service, true);
  EXPECT_EQ(FormatRfc3339(*sb->spec.shutdown_time), "2030-01-01T00:00:00Z");
  EXPECT_EQ(sb->spec.shutdown_policy, "Delete");
  EXPECT_EQ(sb->spec.operating_mode, kOperatingModeSuspended);
  EXPECT_EQ(sb->spec.volume_claim_templates.size(), 1u);
  const PodTemplate& pt = sb->spec.pod_template;
  EXPECT_EQ(pt.labels.at("app"), "x");
  EXPECT_EQ(pt.annotations.at("note"), "y");
  EXPECT_EQ(pt.spec.runtime_class_name, "gvisor");
  EXPECT_EQ(pt.spec.restart_policy, "OnFailure");
  EXPECT_EQ(pt.spec.hostname, "box");
  ASSERT_EQ(pt.spec.init_containers.size(), 1u);
  EXPECT_EQ(pt.spec.init_containers[0].command, (std::vector<std::string>{"sh", "-c", "true"}));
  ASSERT_EQ(pt.spec.containers.size(), 1u);
  const Container& c = pt.spec.containers[0];
  EXPECT_EQ(c.name, "main");
  EXPECT_EQ(c.image, "python:3.12");
  EXPECT_EQ(c.working_dir, "/work");
  EXPECT_EQ(c.image_pull_policy, "IfNotPresent");
  EXPECT_EQ(c.args, (std::vector<std::string>{"-m", "http.server"}));
  EXPECT_TRUE(c.tty);
  EXPECT_TRUE(c.stdin);
  EXPECT_EQ(c.raw["ports"][0]["protocol"], "TCP");
  ASSERT_EQ(c.env.size(), 6u);
  EXPECT_EQ(c.env[0].value, "v");
  EXPECT_EQ(c.env[1].value, "");
  EXPECT_EQ(c.env[2].value, std::nullopt);
  EXPECT_EQ(c.env[2].value_from->secret_key_ref, (KeySelector{"s", "k", true}));
  EXPECT_EQ(c.env[3].value_from->config_map_key_ref, (KeySelector{"c", "k", false}));
  EXPECT_EQ(c.env[4].value_from->field_ref["fieldPath"], "metadata.name");
  EXPECT_EQ(sb->status.service_fqdn, "sb.default.svc.cluster.local");
  EXPECT_EQ(sb->status.service, "sb");
  EXPECT_EQ(sb->status.node_name, "local");
  EXPECT_EQ(sb->status.pod_ips, (std::vector<std::string>{"10.0.0.2"}));
  ASSERT_EQ(sb->status.conditions.size(), 1u);
  EXPECT_EQ(sb->status.conditions[0].reason, kReasonSandboxSuspended);
  EXPECT_EQ(sb->status.conditions[0].observed_generation, 2);
  EXPECT_EQ(sb->status.container_statuses[0]["state"]["terminated"]["exitCode"], 3);
}

TEST(SandboxTest, RoundTripIsFaithful) {
  for (const char* yaml :
       {kFullSandbox,
        "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: a}\n"
        "spec:\n  podTemplate:\n    metadata: {}\n    spec:\n"
        "      containers: [{name: c, image: i, command: [], workingDir: \"\"}]\n"}) {
    Object obj = DecodedSandbox(yaml);
    auto sb = Sandbox::FromObject(obj);
    ASSERT_TRUE(sb.ok()) << sb.status().ToString();
    EXPECT_EQ(sb->ToObject().ToJson(), obj.ToJson());
  }
}

TEST(SandboxTest, TypedChangesOverrideRawFields) {
  auto sb = Sandbox::FromObject(DecodedSandbox(kFullSandbox));
  ASSERT_TRUE(sb.ok());
  Container& c = sb->spec.pod_template.spec.containers[0];
  c.image = "busybox";
  c.working_dir.clear();
  c.env[2].value_from->secret_key_ref->optional = false;
  c.env.pop_back();
  c.env.push_back({"NEW", "1", std::nullopt});
  sb->spec.operating_mode = kOperatingModeRunning;
  sb->status = SandboxStatus();
  Json j = sb->ToObject().ToJson();
  const Json& cj = j["spec"]["podTemplate"]["spec"]["containers"][0];
  EXPECT_EQ(cj["image"], "busybox");
  EXPECT_EQ(cj["workingDir"], "");
  EXPECT_EQ(cj["env"][2]["valueFrom"]["secretKeyRef"]["optional"], false);
  EXPECT_EQ(cj["env"][5], Json::parse(R"({"name":"NEW","value":"1"})"));
  EXPECT_EQ(cj["ports"][0]["containerPort"], 8000);  // untyped fields survive
  EXPECT_EQ(j["spec"]["podTemplate"]["spec"]["dnsPolicy"], "None");
  EXPECT_EQ(j["spec"]["operatingMode"], "Running");
  EXPECT_FALSE(j.contains("status"));
  // What ToObject writes is itself a valid Sandbox.
  EXPECT_TRUE(DecodeObject(j).ok()) << DecodeObject(j).status().ToString();
}

TEST(SandboxTest, FromObjectRefusesOtherKinds) {
  Object o;
  o.api_version = "v1";
  o.kind = "Secret";
  EXPECT_EQ(Sandbox::FromObject(o).status().code(), Code::kInvalidArgument);
}

TEST(SandboxTest, NameHashIsFnv1a32) {
  EXPECT_EQ(NameHash(""), "811c9dc5");
  EXPECT_EQ(NameHash("a"), "e40c292c");
  EXPECT_EQ(NameHash("foobar"), "bf9cf968");
}

TEST(ConditionsTest, SetAddsThenUpdatesAndKeepsTransitionTimeUnlessStatusChanges) {
  const TimePoint t0 = TimePoint(seconds(1000)), t1 = t0 + seconds(10), t2 = t1 + seconds(10);
  std::vector<Condition> conds;
  Condition ready{kConditionReady, kConditionFalse, kReasonDependenciesNotReady, "no pod", 1, {}};
  EXPECT_TRUE(SetCondition(&conds, ready, t0));
  ASSERT_EQ(conds.size(), 1u);
  EXPECT_EQ(conds[0].last_transition_time, t0);

  EXPECT_FALSE(SetCondition(&conds, ready, t1));  // identical: no change

  ready.message = "Pod is Running but not Ready";
  EXPECT_TRUE(SetCondition(&conds, ready, t1));
  EXPECT_EQ(conds[0].last_transition_time, t0);  // same status keeps the time
  EXPECT_EQ(conds[0].message, "Pod is Running but not Ready");

  ready.status = kConditionTrue;
  ready.reason = kReasonDependenciesReady;
  EXPECT_TRUE(SetCondition(&conds, ready, t2));
  EXPECT_EQ(conds[0].last_transition_time, t2);

  Condition explicit_time{kConditionSuspended, kConditionFalse, kReasonNotSuspended, "", 1, t0};
  EXPECT_TRUE(SetCondition(&conds, explicit_time, t2));
  EXPECT_EQ(FindCondition(conds, kConditionSuspended)->last_transition_time, t0);
}

TEST(ConditionsTest, FindAndRemove) {
  std::vector<Condition> conds;
  SetCondition(&conds, {kConditionReady, kConditionTrue, kReasonDependenciesReady, "", 1, {}},
               TimePoint());
  SetCondition(&conds, {kConditionFinished, kConditionTrue, kReasonPodSucceeded, "", 1, {}},
               TimePoint());
  EXPECT_EQ(FindCondition(conds, kConditionFinished)->reason, kReasonPodSucceeded);
  EXPECT_EQ(FindCondition(conds, kConditionSuspended), nullptr);
  EXPECT_TRUE(RemoveCondition(&conds, kConditionFinished));
  EXPECT_FALSE(RemoveCondition(&conds, kConditionFinished));
  EXPECT_EQ(FindCondition(conds, kConditionFinished), nullptr);
  EXPECT_EQ(conds.size(), 1u);
}

TEST(ConditionsTest, JsonRoundTrip) {
  Condition c{kConditionReady,
              kConditionFalse,
              kReasonPodFailed,
              "exit 1",
              3,
              TimePoint(seconds(1700000000))};
  Json j = ConditionToJson(c);
  EXPECT_EQ(j["lastTransitionTime"], "2023-11-14T22:13:20Z");
  auto back = ConditionFromJson(j, "c");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, c);
}

}  // namespace
}  // namespace sbx::api
