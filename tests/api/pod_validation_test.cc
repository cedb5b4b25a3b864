// ValidatePodSpec: one bad case per rule against a pod spec that uses every
// supported feature, and the upstream example manifests.
#include "api/pod_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <regex>
#include <set>

#include "api/decode.h"
#include "common/fs.h"

namespace sbx::api {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPath[] = "spec.podTemplate.spec";
constexpr char kVctPath[] = "spec.volumeClaimTemplates";

// Uses every supported feature once; modes are decimal (JSON has no octal):
// 420 = 0644, 292 = 0444, 256 = 0400.
Json ValidPodSpec() {
  return Json::parse(R"({
    "volumes": [
      {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
      {"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 292,
                                    "items": [{"key": "a", "path": "conf/a.txt", "mode": 420}]}},
      {"name": "creds", "secret": {"secretName": "app-secret", "defaultMode": 256}},
      {"name": "host", "hostPath": {"path": "/srv/data/app", "type": "Directory"}}
    ],
    "initContainers": [
      {"name": "init", "image": "busybox", "command": ["true"]},
      {"name": "sidecar", "image": "busybox", "restartPolicy": "Always",
       "readinessProbe": {"exec": {"command": ["true"]}}}
    ],
    "containers": [{
      "name": "app", "image": "busybox",
      "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
      "env": [
        {"name": "A", "value": "1"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "key"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                           "divisor": "1Mi"}}}
      ],
      "envFrom": [{"configMapRef": {"name": "app-config"}, "prefix": "CFG_"}],
      "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                    "limits": {"cpu": 1, "memory": "128Mi", "ephemeral-storage": "1Gi"}},
      "volumeMounts": [
        {"name": "cache", "mountPath": "/cache"},
        {"name": "data", "mountPath": "/data", "subPath": "app"},
        {"name": "cfg", "mountPath": "/etc/app", "readOnly": true}
      ],
      "securityContext": {
        "runAsUser": 1000, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/app.json"}
      },
      "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30, "periodSeconds": 1},
      "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
      "readinessProbe": {"tcpSocket": {"port": 8080}, "successThreshold": 2}
    }],
    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                        "supplementalGroups": [2000],
                        "seccompProfile": {"type": "RuntimeDefault"}},
    "restartPolicy": "Always"
  })");
}

Json ValidClaimTemplates() {
  return Json::parse(R"([{"metadata": {"name": "data"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}])");
}

PodPolicy AllowSrvData() { return PodPolicy{{"/srv/data"}}; }

Status Validate(const Json& spec, const Json& vcts, const PodPolicy& policy = AllowSrvData()) {
  return ValidatePodSpec(spec, vcts, kPath, kVctPath, policy);
}

TEST(PodValidationTest, SpecUsingEverySupportedFeatureIsValid) {
  Status s = Validate(ValidPodSpec(), ValidClaimTemplates());
  EXPECT_TRUE(s.ok()) << s.ToString();
}

struct BadCase {
  const char* name;
  std::function<void(Json& spec, Json& vcts)> mutate;
  // The whole message starts with this, and it is the only error.
  const char* error;
};

class PodValidationBadCaseTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(PodValidationBadCaseTest, ReportsOneFieldError) {
  Json spec = ValidPodSpec();
  Json vcts = ValidClaimTemplates();
  GetParam().mutate(spec, vcts);
  Status s = Validate(spec, vcts);
  ASSERT_EQ(s.code(), Code::kInvalid) << s.ToString();
  EXPECT_THAT(s.message(), StartsWith(GetParam().error));
  EXPECT_EQ(s.message().find("; "), std::string::npos) << "more than one error: " << s.message();
}

Json& App(Json& spec) { return spec["containers"][0]; }

#define P "spec.podTemplate.spec"
#define APP P ".containers[0]"

INSTANTIATE_TEST_SUITE_P(
    Table, PodValidationBadCaseTest,
    ::testing::Values(
        // containers
        BadCase{"NoContainers", [](Json& s, Json&) { s["containers"] = Json::array(); },
                P ".containers: Required value"},
        BadCase{"ContainerNameNotDnsLabel", [](Json& s, Json&) { App(s)["name"] = "App_1"; },
                APP ".name: Invalid value: \"App_1\": a lowercase RFC 1123 label"},
        BadCase{"ContainerNameDuplicatesInitContainer",
                [](Json& s, Json&) { App(s)["name"] = "init"; },
                APP ".name: Duplicate value: \"init\""},
        BadCase{"ImageRequired", [](Json& s, Json&) { App(s).erase("image"); },
                APP ".image: Required value"},
        // volumes
        BadCase{"VolumeNameNotDnsLabel",
                [](Json& s, Json&) {
                  s["volumes"].push_back({{"name", "Scratch"}, {"emptyDir", Json::object()}});
                },
                P ".volumes[4].name: Invalid value: \"Scratch\""},
        BadCase{"VolumeNameDuplicate",
                [](Json& s, Json&) {
                  s["volumes"].push_back({{"name", "cache"}, {"emptyDir", Json::object()}});
                },
                P ".volumes[4].name: Duplicate value: \"cache\""},
        BadCase{"VolumeWithoutSource",
                [](Json& s, Json&) { s["volumes"].push_back({{"name", "x"}}); },
                P ".volumes[4]: Required value: must specify a volume type"},
        BadCase{"VolumeWithTwoSources",
                [](Json& s, Json&) { s["volumes"][0]["configMap"] = {{"name", "c"}}; },
                P ".volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"},
        BadCase{"PersistentVolumeClaimPointsToClaimTemplates",
                [](Json& s, Json&) {
                  s["volumes"].push_back(
                      {{"name", "pvc"}, {"persistentVolumeClaim", {{"claimName", "x"}}}});
                },
                P ".volumes[4].persistentVolumeClaim: Unsupported value: "
                  "\"persistentVolumeClaim\": supported values: \"configMap\", \"emptyDir\", "
                  "\"hostPath\", \"secret\" (persistent volumes are declared in "
                  "spec.volumeClaimTemplates"},
        BadCase{"NfsUnsupported",
                [](Json& s, Json&) {
                  s["volumes"].push_back({{"name", "n"}, {"nfs", {{"server", "h"}, {"path", "/"}}}});
                },
                P ".volumes[4].nfs: Unsupported value: \"nfs\": supported values: \"configMap\""},
        BadCase{"EmptyDirMedium",
                [](Json& s, Json&) { s["volumes"][0]["emptyDir"]["medium"] = "HugePages"; },
                P ".volumes[0].emptyDir.medium: Unsupported value: \"HugePages\": supported "
                  "values: \"\", \"Memory\""},
        BadCase{"EmptyDirSizeLimitQuantity",
                [](Json& s, Json&) { s["volumes"][0]["emptyDir"]["sizeLimit"] = "lots"; },
                P ".volumes[0].emptyDir.sizeLimit: Invalid value: \"lots\": must be a quantity"},
        BadCase{"ItemKeyRequired",
                [](Json& s, Json&) { s["volumes"][1]["configMap"]["items"][0].erase("key"); },
                P ".volumes[1].configMap.items[0].key: Required value"},
        BadCase{"ItemPathAbsolute",
                [](Json& s, Json&) { s["volumes"][1]["configMap"]["items"][0]["path"] = "/etc/a"; },
                P ".volumes[1].configMap.items[0].path: Invalid value: \"/etc/a\": must be a "
                  "relative path"},
        BadCase{"ItemPathBackstep",
                [](Json& s, Json&) {
                  s["volumes"][1]["configMap"]["items"][0]["path"] = "a/../../b";
                },
                P ".volumes[1].configMap.items[0].path: Invalid value: \"a/../../b\": must not "
                  "contain '..'"},
        BadCase{"ItemMode",
                [](Json& s, Json&) { s["volumes"][1]["configMap"]["items"][0]["mode"] = 512; },
                P ".volumes[1].configMap.items[0].mode: Invalid value: 512: must be a number "
                  "between 0 and 0777 (octal), both inclusive"},
        BadCase{"SecretDefaultMode",
                [](Json& s, Json&) { s["volumes"][2]["secret"]["defaultMode"] = -1; },
                P ".volumes[2].secret.defaultMode: Invalid value: -1: must be a number"},
        BadCase{"SecretNameRequired",
                [](Json& s, Json&) { s["volumes"][2]["secret"].erase("secretName"); },
                P ".volumes[2].secret.secretName: Required value"},
        BadCase{"ConfigMapNameRequired",
                [](Json& s, Json&) { s["volumes"][1]["configMap"].erase("name"); },
                P ".volumes[1].configMap.name: Required value"},
        BadCase{"HostPathOutsideAllowedPrefixes",
                [](Json& s, Json&) { s["volumes"][3]["hostPath"]["path"] = "/etc"; },
                P ".volumes[3].hostPath.path: Forbidden: \"/etc\" is not under a host path"},
        BadCase{"HostPathPrefixMatchesWholeComponents",
                [](Json& s, Json&) { s["volumes"][3]["hostPath"]["path"] = "/srv/database"; },
                P ".volumes[3].hostPath.path: Forbidden: \"/srv/database\" is not under"},
        BadCase{"HostPathBackstep",
                [](Json& s, Json&) { s["volumes"][3]["hostPath"]["path"] = "/srv/data/../../etc"; },
                P ".volumes[3].hostPath.path: Invalid value: \"/srv/data/../../etc\": must not "
                  "contain '..'"},
        BadCase{"HostPathType",
                [](Json& s, Json&) { s["volumes"][3]["hostPath"]["type"] = "Pipe"; },
                P ".volumes[3].hostPath.type: Unsupported value: \"Pipe\""},
        // volumeClaimTemplates
        BadCase{"ClaimTemplateNameNotDnsLabel",
                [](Json&, Json& v) {
                  v.push_back(v[0]);
                  v[1]["metadata"]["name"] = "Data2";
                },
                "spec.volumeClaimTemplates[1].metadata.name: Invalid value: \"Data2\""},
        BadCase{"ClaimTemplateNameDuplicate", [](Json&, Json& v) { v.push_back(v[0]); },
                "spec.volumeClaimTemplates[1].metadata.name: Duplicate value: \"data\""},
        BadCase{"ClaimTemplateNameClashesWithVolume",
                [](Json&, Json& v) {
                  v.push_back(v[0]);
                  v[1]["metadata"]["name"] = "cache";
                },
                "spec.volumeClaimTemplates[1].metadata.name: Duplicate value: \"cache\": also "
                "the name of " P ".volumes[0].name"},
        BadCase{"ClaimTemplateStorageRequired",
                [](Json&, Json& v) { v[0]["spec"]["resources"]["requests"].erase("storage"); },
                "spec.volumeClaimTemplates[0].spec.resources.requests.storage: Required value"},
        BadCase{"ClaimTemplateStorageQuantity",
                [](Json&, Json& v) { v[0]["spec"]["resources"]["requests"]["storage"] = "10 GB"; },
                "spec.volumeClaimTemplates[0].spec.resources.requests.storage: Invalid value: "
                "\"10 GB\": must be a quantity"},
        BadCase{"ClaimTemplateStoragePositive",
                [](Json&, Json& v) { v[0]["spec"]["resources"]["requests"]["storage"] = "0"; },
                "spec.volumeClaimTemplates[0].spec.resources.requests.storage: Invalid value: "
                "\"0\": must be greater than zero"},
        BadCase{"ClaimTemplateBlockMode",
                [](Json&, Json& v) { v[0]["spec"]["volumeMode"] = "Block"; },
                "spec.volumeClaimTemplates[0].spec.volumeMode: Unsupported value: \"Block\""},
        // volumeMounts
        BadCase{"MountOfUnknownVolume",
                [](Json& s, Json&) { App(s)["volumeMounts"][0]["name"] = "nope"; },
                APP ".volumeMounts[0].name: Not found: \"nope\""},
        BadCase{"MountPathRelative",
                [](Json& s, Json&) { App(s)["volumeMounts"][0]["mountPath"] = "cache"; },
                APP ".volumeMounts[0].mountPath: Invalid value: \"cache\": must be an absolute "
                    "path"},
        BadCase{"MountPathDuplicateAfterCleaning",
                [](Json& s, Json&) {
                  App(s)["volumeMounts"].push_back({{"name", "creds"}, {"mountPath", "/cache/"}});
                },
                APP ".volumeMounts[3].mountPath: Duplicate value: \"/cache/\""},
        BadCase{"MountPathReservedForSbx",
                [](Json& s, Json&) { App(s)["volumeMounts"][0]["mountPath"] = "/.sbx/x"; },
                APP ".volumeMounts[0].mountPath: Forbidden: /.sbx is reserved for sbx"},
        BadCase{"SubPathBackstep",
                [](Json& s, Json&) { App(s)["volumeMounts"][1]["subPath"] = "../other"; },
                APP ".volumeMounts[1].subPath: Invalid value: \"../other\": must not contain "
                    "'..'"},
        BadCase{"SubPathAbsolute",
                [](Json& s, Json&) { App(s)["volumeMounts"][1]["subPath"] = "/app"; },
                APP ".volumeMounts[1].subPath: Invalid value: \"/app\": must be a relative path"},
        BadCase{"SubPathExprUnsupported",
                [](Json& s, Json&) { App(s)["volumeMounts"][1]["subPathExpr"] = "$(POD)"; },
                APP ".volumeMounts[1].subPathExpr: Unsupported value: \"$(POD)\""},
        // resources
        BadCase{"ResourceNameUnsupported",
                [](Json& s, Json&) { App(s)["resources"]["limits"]["nvidia.com/gpu"] = 1; },
                APP ".resources.limits[nvidia.com/gpu]: Unsupported value: \"nvidia.com/gpu\": "
                    "supported values: \"cpu\", \"ephemeral-storage\", \"memory\""},
        BadCase{"ResourceQuantityInvalid",
                [](Json& s, Json&) { App(s)["resources"]["requests"]["memory"] = "64MB?"; },
                APP ".resources.requests[memory]: Invalid value: \"64MB?\": must be a quantity"},
        BadCase{"ResourceQuantityNegative",
                [](Json& s, Json&) { App(s)["resources"]["requests"]["memory"] = "-1Mi"; },
                APP ".resources.requests[memory]: Invalid value: \"-1Mi\": must be greater than "
                    "or equal to 0"},
        BadCase{"RequestAboveLimit",
                [](Json& s, Json&) { App(s)["resources"]["requests"]["cpu"] = "1500m"; },
                APP ".resources.requests[cpu]: Invalid value: \"1500m\": must be less than or "
                    "equal to cpu limit of 1"},
        // securityContext
        BadCase{"PrivilegedForbidden",
                [](Json& s, Json&) { App(s)["securityContext"]["privileged"] = true; },
                APP ".securityContext.privileged: Forbidden: privileged containers are not "
                    "supported"},
        BadCase{"CapabilityName",
                [](Json& s, Json&) {
                  App(s)["securityContext"]["capabilities"]["add"][0] = "NET ADMIN";
                },
                APP ".securityContext.capabilities.add[0]: Invalid value: \"NET ADMIN\""},
        BadCase{"NoPrivilegeEscalationWithSysAdmin",
                [](Json& s, Json&) {
                  App(s)["securityContext"]["capabilities"]["add"][0] = "CAP_SYS_ADMIN";
                },
                APP ".securityContext: Invalid value: \"\": cannot set `allowPrivilegeEscalation`"},
        BadCase{"SeccompType",
                [](Json& s, Json&) { s["securityContext"]["seccompProfile"]["type"] = "Custom"; },
                P ".securityContext.seccompProfile.type: Unsupported value: \"Custom\""},
        BadCase{"SeccompLocalhostNeedsProfile",
                [](Json& s, Json&) {
                  App(s)["securityContext"]["seccompProfile"].erase("localhostProfile");
                },
                APP ".securityContext.seccompProfile.localhostProfile: Required value: must be "
                    "set when seccomp type is Localhost"},
        BadCase{"SeccompProfileBackstep",
                [](Json& s, Json&) {
                  App(s)["securityContext"]["seccompProfile"]["localhostProfile"] = "../x.json";
                },
                APP ".securityContext.seccompProfile.localhostProfile: Invalid value: "
                    "\"../x.json\": must not contain '..'"},
        BadCase{"SeccompProfileOnlyForLocalhost",
                [](Json& s, Json&) {
                  s["securityContext"]["seccompProfile"]["localhostProfile"] = "p.json";
                },
                P ".securityContext.seccompProfile.localhostProfile: Invalid value: \"p.json\": "
                  "can only be set when seccomp type is Localhost"},
        BadCase{"RunAsUserNegative",
                [](Json& s, Json&) { App(s)["securityContext"]["runAsUser"] = -1; },
                APP ".securityContext.runAsUser: Invalid value: -1: must be between 0 and "
                    "2147483647, inclusive"},
        BadCase{"RunAsGroupNegative",
                [](Json& s, Json&) { s["securityContext"]["runAsGroup"] = -5; },
                P ".securityContext.runAsGroup: Invalid value: -5"},
        BadCase{"FsGroupNegative", [](Json& s, Json&) { s["securityContext"]["fsGroup"] = -1; },
                P ".securityContext.fsGroup: Invalid value: -1"},
        BadCase{"SupplementalGroupNegative",
                [](Json& s, Json&) { s["securityContext"]["supplementalGroups"][0] = -2; },
                P ".securityContext.supplementalGroups[0]: Invalid value: -2"},
        // restartPolicy
        BadCase{"RestartPolicyOnRegularContainer",
                [](Json& s, Json&) { App(s)["restartPolicy"] = "Always"; },
                APP ".restartPolicy: Forbidden: may not be set for non init containers"},
        BadCase{"InitContainerRestartPolicyOnlyAlways",
                [](Json& s, Json&) { s["initContainers"][0]["restartPolicy"] = "OnFailure"; },
                P ".initContainers[0].restartPolicy: Unsupported value: \"OnFailure\": supported "
                  "values: \"Always\""},
        BadCase{"PodRestartPolicy", [](Json& s, Json&) { s["restartPolicy"] = "Sometimes"; },
                P ".restartPolicy: Unsupported value: \"Sometimes\""},
        // probes
        BadCase{"ProbeWithoutHandler",
                [](Json& s, Json&) { App(s)["startupProbe"].erase("exec"); },
                APP ".startupProbe: Required value: must specify a handler type"},
        BadCase{"ProbeWithTwoHandlers",
                [](Json& s, Json&) { App(s)["readinessProbe"]["exec"] = {{"command", {"true"}}}; },
                APP ".readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler "
                    "type"},
        BadCase{"GrpcProbeUnsupported",
                [](Json& s, Json&) {
                  App(s)["readinessProbe"] = {{"grpc", {{"port", 9000}}}};
                },
                APP ".readinessProbe.grpc: Unsupported value: \"grpc\": supported values: "
                    "\"exec\", \"httpGet\", \"tcpSocket\""},
        BadCase{"ExecProbeNeedsCommand",
                [](Json& s, Json&) { App(s)["startupProbe"]["exec"]["command"] = Json::array(); },
                APP ".startupProbe.exec.command: Required value"},
        BadCase{"ProbePeriodAtLeastOne",
                [](Json& s, Json&) { App(s)["livenessProbe"]["periodSeconds"] = 0; },
                APP ".livenessProbe.periodSeconds: Invalid value: 0: must be greater than or "
                    "equal to 1"},
        BadCase{"ProbeTimeoutAtLeastOne",
                [](Json& s, Json&) { App(s)["livenessProbe"]["timeoutSeconds"] = -1; },
                APP ".livenessProbe.timeoutSeconds: Invalid value: -1"},
        BadCase{"ProbeFailureThresholdAtLeastOne",
                [](Json& s, Json&) { App(s)["startupProbe"]["failureThreshold"] = 0; },
                APP ".startupProbe.failureThreshold: Invalid value: 0"},
        BadCase{"ProbeInitialDelayNonNegative",
                [](Json& s, Json&) { App(s)["readinessProbe"]["initialDelaySeconds"] = -1; },
                APP ".readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater "
                    "than or equal to 0"},
        BadCase{"LivenessSuccessThresholdIsOne",
                [](Json& s, Json&) { App(s)["livenessProbe"]["successThreshold"] = 2; },
                APP ".livenessProbe.successThreshold: Invalid value: 2: must be 1"},
        BadCase{"StartupSuccessThresholdIsOne",
                [](Json& s, Json&) { App(s)["startupProbe"]["successThreshold"] = 3; },
                APP ".startupProbe.successThreshold: Invalid value: 3: must be 1"},
        BadCase{"ProbeOnRunToCompletionInitContainer",
                [](Json& s, Json&) {
                  s["initContainers"][0]["livenessProbe"] = {{"exec", {{"command", {"true"}}}}};
                },
                P ".initContainers[0].livenessProbe: Forbidden: may not be set for init "
                  "containers without restartPolicy=Always"},
        BadCase{"ProbeNamedPortUnknown",
                [](Json& s, Json&) { App(s)["livenessProbe"]["httpGet"]["port"] = "admin"; },
                APP ".livenessProbe.httpGet.port: Invalid value: \"admin\": must be the name of "
                    "one of the container's ports"},
        BadCase{"ProbePortRange",
                [](Json& s, Json&) { App(s)["readinessProbe"]["tcpSocket"]["port"] = 0; },
                APP ".readinessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and "
                    "65535, inclusive"},
        BadCase{"ProbeScheme",
                [](Json& s, Json&) { App(s)["livenessProbe"]["httpGet"]["scheme"] = "FTP"; },
                APP ".livenessProbe.httpGet.scheme: Unsupported value: \"FTP\""},
        // env
        BadCase{"EnvName", [](Json& s, Json&) { App(s)["env"][0]["name"] = "1A"; },
                APP ".env[0].name: Invalid value: \"1A\": a valid environment variable name"},
        BadCase{"EnvValueAndValueFrom", [](Json& s, Json&) { App(s)["env"][1]["value"] = "x"; },
                APP ".env[1].valueFrom: Invalid value: \"\": may not be specified when `value` "
                    "is not empty"},
        BadCase{"EnvValueFromWithoutSource",
                [](Json& s, Json&) { App(s)["env"][1]["valueFrom"] = Json::object(); },
                APP ".env[1].valueFrom: Invalid value: \"\": must specify one of"},
        BadCase{"EnvValueFromTwoSources",
                [](Json& s, Json&) {
                  App(s)["env"][3]["valueFrom"]["configMapKeyRef"] = {{"name", "c"},
                                                                       {"key", "k"}};
                },
                APP ".env[3].valueFrom: Invalid value: \"\": may not have more than one field"},
        BadCase{"EnvFieldPathUnsupported",
                [](Json& s, Json&) {
                  App(s)["env"][1]["valueFrom"]["fieldRef"]["fieldPath"] = "spec.hostname";
                },
                APP ".env[1].valueFrom.fieldRef.fieldPath: Unsupported value: "
                    "\"spec.hostname\": supported values: \"metadata.annotations['<KEY>']\""},
        BadCase{"EnvFieldPathWholeLabelMap",
                [](Json& s, Json&) {
                  App(s)["env"][1]["valueFrom"]["fieldRef"]["fieldPath"] = "metadata.labels";
                },
                APP ".env[1].valueFrom.fieldRef.fieldPath: Unsupported value: "
                    "\"metadata.labels\""},
        BadCase{"EnvFieldPathLabelKey",
                [](Json& s, Json&) {
                  App(s)["env"][2]["valueFrom"]["fieldRef"]["fieldPath"] =
                      "metadata.labels['-bad-']";
                },
                APP ".env[2].valueFrom.fieldRef.fieldPath: Invalid value: "
                    "\"metadata.labels['-bad-']\""},
        BadCase{"EnvResourceFieldRef",
                [](Json& s, Json&) {
                  App(s)["env"][4]["valueFrom"]["resourceFieldRef"]["resource"] = "limits.gpu";
                },
                APP ".env[4].valueFrom.resourceFieldRef.resource: Unsupported value: "
                    "\"limits.gpu\""},
        BadCase{"EnvSecretKeyRequired",
                [](Json& s, Json&) { App(s)["env"][3]["valueFrom"]["secretKeyRef"].erase("key"); },
                APP ".env[3].valueFrom.secretKeyRef.key: Required value"},
        BadCase{"EnvFromWithoutSource",
                [](Json& s, Json&) { App(s)["envFrom"][0].erase("configMapRef"); },
                APP ".envFrom[0]: Invalid value: \"\": must specify one of: `configMapRef` or "
                    "`secretRef`"},
        BadCase{"EnvFromTwoSources",
                [](Json& s, Json&) { App(s)["envFrom"][0]["secretRef"] = {{"name", "s"}}; },
                APP ".envFrom[0]: Forbidden: may not have more than one field specified"},
        BadCase{"EnvFromPrefix", [](Json& s, Json&) { App(s)["envFrom"][0]["prefix"] = "9_"; },
                APP ".envFrom[0].prefix: Invalid value: \"9_\""},
        // ports
        BadCase{"ContainerPortRange",
                [](Json& s, Json&) { App(s)["ports"][0]["containerPort"] = 70000; },
                APP ".ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, "
                    "inclusive"},
        BadCase{"HostPortRange", [](Json& s, Json&) { App(s)["ports"][0]["hostPort"] = 65536; },
                APP ".ports[0].hostPort: Invalid value: 65536: must be between 1 and 65535, inclusive"},
        BadCase{"HostIP", [](Json& s, Json&) { App(s)["ports"][0]["hostIP"] = "localhost"; },
                APP ".ports[0].hostIP: Invalid value: \"localhost\": must be a valid IP address"},
        BadCase{"PortNameDuplicate",
                [](Json& s, Json&) {
                  App(s)["ports"].push_back({{"name", "http"}, {"containerPort", 8081}});
                },
                APP ".ports[1].name: Duplicate value: \"http\""},
        BadCase{"PortNameSyntax",
                [](Json& s, Json&) {
                  App(s)["ports"].push_back({{"name", "8081"}, {"containerPort", 8081}});
                },
                APP ".ports[1].name: Invalid value: \"8081\": must contain at least one letter"}),
    [](const auto& info) { return std::string(info.param.name); });

#undef APP
#undef P

TEST(PodValidationTest, HostPathRefusedWithoutPolicy) {
  Status s = Validate(ValidPodSpec(), ValidClaimTemplates(), PodPolicy{});
  ASSERT_EQ(s.code(), Code::kInvalid);
  EXPECT_EQ(s.message(),
            "spec.podTemplate.spec.volumes[3].hostPath: Forbidden: hostPath volumes are not "
            "allowed by the daemon's configuration");
}

TEST(PodValidationTest, RootPrefixAllowsAnyHostPath) {
  Json spec = ValidPodSpec();
  spec["volumes"][3]["hostPath"]["path"] = "/var/lib/x";
  EXPECT_TRUE(Validate(spec, ValidClaimTemplates(), PodPolicy{{"/"}}).ok());
}

TEST(PodValidationTest, ReportsEveryProblemAtOnce) {
  Json spec = ValidPodSpec();
  spec["containers"][0]["securityContext"]["privileged"] = true;
  spec["containers"][0]["volumeMounts"][0]["name"] = "nope";
  Json vcts = ValidClaimTemplates();
  vcts[0]["spec"]["resources"]["requests"]["storage"] = "x";
  Status s = Validate(spec, vcts);
  ASSERT_EQ(s.code(), Code::kInvalid);
  EXPECT_THAT(s.message(), HasSubstr("securityContext.privileged: Forbidden"));
  EXPECT_THAT(s.message(), HasSubstr("volumeMounts[0].name: Not found: \"nope\""));
  EXPECT_THAT(s.message(), HasSubstr("requests.storage: Invalid value: \"x\""));
}

TEST(PodValidationTest, QuantitiesMayBeBareNumbers) {
  Json spec = ValidPodSpec();
  spec["containers"][0]["resources"] = {{"requests", {{"cpu", 0.5}, {"memory", 1048576}}},
                                        {"limits", {{"cpu", 2}}}};
  Json vcts = ValidClaimTemplates();
  vcts[0]["spec"]["resources"]["requests"]["storage"] = 1073741824;
  Status s = Validate(spec, vcts);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(PodValidationTest, WithoutClaimTemplatesTheirMountsAreUnknown) {
  Status s = Validate(ValidPodSpec(), Json());
  ASSERT_EQ(s.code(), Code::kInvalid);
  EXPECT_EQ(s.message(),
            "spec.podTemplate.spec.containers[0].volumeMounts[1].name: Not found: \"data\"");
}

// The pod specs of the upstream examples (Sandboxes and SandboxTemplates),
// decoded as the API server would, pass.
TEST(PodValidationTest, UpstreamExamplesPass) {
  std::string dir = std::string(SBX_TEST_SOURCE_DIR) + "/tests/api/testdata/agent-sandbox-examples";
  std::set<std::string> checked;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    auto text = ReadFile(entry.path().string());
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    std::string t = std::regex_replace(*text, std::regex(R"(\$\{[A-Z_]+\})"), "placeholder");
    auto docs = ParseDocuments(t, entry.path().filename().string());
    ASSERT_TRUE(docs.ok()) << docs.status().ToString();
    for (const auto& doc : *docs) {
      std::string kind = doc.value("kind", "");
      if (kind != "Sandbox" && kind != "SandboxTemplate") continue;
      auto obj = DecodeObject(doc);
      ASSERT_TRUE(obj.ok()) << entry.path().filename() << ": " << obj.status().ToString();
      const Json& spec = obj->body["spec"];
      Status s =
          ValidatePodSpec(spec["podTemplate"]["spec"], spec.value("volumeClaimTemplates", Json()),
                          "spec.podTemplate.spec", "spec.volumeClaimTemplates", PodPolicy{});
      EXPECT_TRUE(s.ok()) << entry.path().filename() << ": " << s.ToString();
      checked.insert(entry.path().filename().string());
    }
  }
  for (const char* f :
       {"jupyterlab__jupyterlab.yaml", "mcp-server-sandbox__sandbox.yaml",
        "hermes-agents-as-a-service__10-sandboxtemplate.yaml", "aider-sandbox__template.yaml",
        "envd-sandbox__sandbox-envd.yaml", "hello-world-sandbox__hello-world.yaml"}) {
    EXPECT_TRUE(checked.count(f)) << f << " was not checked";
  }
}

}  // namespace
}  // namespace sbx::api
