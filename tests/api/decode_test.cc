// DecodeObject, ValidateUpdate and Sandbox version conversion.
#include "api/decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "common/fs.h"

namespace sbx::api {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Json Yaml(const std::string& text) {
  auto docs = ParseDocuments(text, "test.yaml");
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  if (!docs.ok() || docs->size() != 1) return Json();
  return (*docs)[0];
}

// A valid v1beta1 Sandbox; `spec_extra` is appended under spec (4-space
// indented lines), `container_extra` under the first container (8 spaces).
std::string SandboxYaml(const std::string& container_extra = "", const std::string& spec_extra = "",
                        const std::string& name = "sb", const std::string& version = "v1beta1") {
  return "apiVersion: agents.x-k8s.io/" + version +
         "\n"
         "kind: Sandbox\n"
         "metadata:\n"
         "  name: " +
         name +
         "\n"
         "  namespace: default\n"
         "spec:\n"
         "  podTemplate:\n"
         "    spec:\n"
         "      containers:\n"
         "      - name: main\n"
         "        image: busybox\n" +
         container_extra + spec_extra;
}

Result<Object> DecodeYaml(const std::string& text) { return DecodeObject(Yaml(text)); }

TEST(DecodeObjectTest, DecodesMinimalSandboxWithUpstreamDefaults) {
  auto obj = DecodeYaml(SandboxYaml("        ports:\n        - containerPort: 80\n"));
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->api_version, "agents.x-k8s.io/v1beta1");
  EXPECT_EQ(obj->kind, "Sandbox");
  EXPECT_EQ(obj->metadata.name, "sb");
  EXPECT_EQ(obj->metadata.namespace_, "default");
  const Json& spec = obj->body["spec"];
  EXPECT_EQ(spec["shutdownPolicy"], "Retain");
  EXPECT_EQ(spec["operatingMode"], "Running");
  EXPECT_EQ(spec["podTemplate"]["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
  EXPECT_FALSE(spec.contains("service"));
}

TEST(DecodeObjectTest, NullFieldsAreDroppedThenDefaulted) {
  auto obj = DecodeYaml(SandboxYaml("", "  service: null\n  operatingMode: null\n"));
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_FALSE(obj->body["spec"].contains("service"));
  EXPECT_EQ(obj->body["spec"]["operatingMode"], "Running");
}

TEST(DecodeObjectTest, DefaultsOnlyFillObjectsThatArePresent) {
  const char* pool =
      "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxWarmPool\n"
      "metadata: {name: p}\nspec:\n  sandboxTemplateRef: {name: t}\n";
  auto obj = DecodeYaml(pool);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->body["spec"]["replicas"], 1);
  EXPECT_FALSE(obj->body["spec"].contains("updateStrategy"));

  auto with_strategy = DecodeYaml(std::string(pool) + "  updateStrategy: {}\n");
  ASSERT_TRUE(with_strategy.ok()) << with_strategy.status().ToString();
  EXPECT_EQ(with_strategy->body["spec"]["updateStrategy"]["type"], "OnReplenish");
}

TEST(DecodeObjectTest, TimestampsAreStoredAsUtcSeconds) {
  auto obj = DecodeYaml(SandboxYaml("", "  shutdownTime: \"2026-01-01T02:00:00.5+02:00\"\n"));
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->body["spec"]["shutdownTime"], "2026-01-01T00:00:00Z");
}

TEST(DecodeObjectTest, IntOrStringFieldsAcceptBoth) {
  auto obj =
      DecodeYaml(SandboxYaml("        resources:\n"
                             "          limits: {cpu: 1, memory: 128Mi}\n"
                             "          requests: {cpu: \"500m\"}\n"
                             "        livenessProbe:\n"
                             "          httpGet: {port: http, path: /}\n"
                             "        readinessProbe:\n"
                             "          tcpSocket: {port: 8080}\n"));
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
}

// ---- strict decoding ----

struct UnknownFieldCase {
  const char* name;
  std::string text;
  std::vector<std::string> unknown;
};

class UnknownFieldTest : public ::testing::TestWithParam<UnknownFieldCase> {};

TEST_P(UnknownFieldTest, IsRejectedWithItsPath) {
  const auto& c = GetParam();
  auto obj = DecodeYaml(c.text);
  ASSERT_FALSE(obj.ok());
  EXPECT_EQ(obj.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(obj.status().message(), HasSubstr("strict decoding error"));
  for (const auto& u : c.unknown) {
    EXPECT_THAT(obj.status().message(), HasSubstr("unknown field \"" + u + "\""));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, UnknownFieldTest,
    ::testing::Values(
        UnknownFieldCase{"TopLevel", SandboxYaml() + "extra: 1\n", {"extra"}},
        UnknownFieldCase{"InSpec", SandboxYaml("", "  replicas: 1\n"), {"spec.replicas"}},
        UnknownFieldCase{"InContainer",
                         SandboxYaml("        foo: bar\n"),
                         {"spec.podTemplate.spec.containers[0].foo"}},
        UnknownFieldCase{
            "InSecondContainerAndSpecTogether",
            SandboxYaml("      - name: side\n        image: x\n        bar: 1\n", "  baz: true\n"),
            {"spec.podTemplate.spec.containers[1].bar", "spec.baz"}},
        UnknownFieldCase{"NestedListItem",
                         SandboxYaml("        env:\n        - name: A\n          valu: x\n"),
                         {"spec.podTemplate.spec.containers[0].env[0].valu"}},
        UnknownFieldCase{"PodTemplateMetadataOnlyHasLabelsAndAnnotations",
                         "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\n"
                         "metadata: {name: a}\nspec:\n  podTemplate:\n"
                         "    metadata: {name: x}\n"
                         "    spec: {containers: [{name: c, image: i}]}\n",
                         {"spec.podTemplate.metadata.name"}},
        UnknownFieldCase{"InObjectMeta",
                         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, nme: x}\n",
                         {"metadata.nme"}},
        UnknownFieldCase{"InSecret",
                         "apiVersion: v1\nkind: Secret\nmetadata: {name: s, labelz: {}}\n"
                         "datas: {}\n",
                         {"datas", "metadata.labelz"}},
        UnknownFieldCase{
            "V1alpha1FieldInV1beta1", SandboxYaml("", "  replicas: 0\n"), {"spec.replicas"}},
        UnknownFieldCase{"V1beta1FieldInV1alpha1",
                         SandboxYaml("", "  operatingMode: Running\n", "sb", "v1alpha1"),
                         {"spec.operatingMode"}}),
    [](const auto& info) { return info.param.name; });

TEST(DecodeObjectTest, UnknownFieldMessageIsKubectlStrictStyle) {
  auto obj = DecodeYaml(SandboxYaml("        foo: bar\n"));
  ASSERT_FALSE(obj.ok());
  EXPECT_EQ(obj.status().message(),
            "Sandbox in version \"v1beta1\" cannot be handled as a Sandbox: strict decoding "
            "error: unknown field \"spec.podTemplate.spec.containers[0].foo\"");
}

TEST(DecodeObjectTest, StandardObjectMetaFieldsAreAccepted) {
  auto obj = DecodeYaml(
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  uid: u\n"
      "  resourceVersion: \"5\"\n  generation: 1\n  creationTimestamp: null\n"
      "  selfLink: /x\n  managedFields: [{manager: kubectl, operation: Apply}]\n"
      "  finalizers: [example.com/f]\n"
      "  ownerReferences: [{apiVersion: v1, kind: X, name: n, uid: u1, controller: true}]\n");
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->metadata.owner_references.size(), 1u);
}

// ---- field errors ----

struct InvalidCase {
  const char* name;
  std::string text;
  std::vector<std::string> errors;  // each a substring of the message
};

class InvalidFieldTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidFieldTest, IsRejectedWithFieldErrors) {
  const auto& c = GetParam();
  auto obj = DecodeYaml(c.text);
  ASSERT_FALSE(obj.ok());
  EXPECT_EQ(obj.status().code(), Code::kInvalid) << obj.status().ToString();
  for (const auto& e : c.errors) EXPECT_THAT(obj.status().message(), HasSubstr(e));
}

const std::string kLong64(64, 'a');

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidFieldTest,
    ::testing::Values(
        InvalidCase{"EnumValue",
                    SandboxYaml("", "  operatingMode: Paused\n"),
                    {"spec.operatingMode: Unsupported value: \"Paused\": supported values: "
                     "\"Running\", \"Suspended\""}},
        InvalidCase{"MissingImage",
                    "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: a}\n"
                    "spec:\n  podTemplate:\n    spec:\n      containers:\n      - name: c\n",
                    {"spec.podTemplate.spec.containers[0].image: Required value"}},
        InvalidCase{"MissingPodTemplate",
                    "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: a}\n"
                    "spec: {}\n",
                    {"spec.podTemplate: Required value"}},
        InvalidCase{"ReplicasAboveMaximum",
                    SandboxYaml("", "  replicas: 2\n", "sb", "v1alpha1"),
                    {"spec.replicas: Invalid value: 2: must be less than or equal to 1"}},
        InvalidCase{"NegativeWarmPoolReplicas",
                    "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxWarmPool\n"
                    "metadata: {name: p}\nspec:\n  replicas: -1\n  sandboxTemplateRef: {name: t}\n",
                    {"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
        InvalidCase{"WrongType",
                    SandboxYaml("", "  service: \"yes\"\n"),
                    {"spec.service: Invalid value: \"string\": spec.service in body must be of "
                     "type boolean: \"string\""}},
        InvalidCase{"IntOrStringGetsBoolean",
                    SandboxYaml("        readinessProbe:\n          tcpSocket: {port: true}\n"),
                    {"spec.podTemplate.spec.containers[0].readinessProbe.tcpSocket.port: "
                     "Invalid value: \"boolean\""}},
        InvalidCase{"BadQuantity",
                    SandboxYaml("        resources:\n          limits: {cpu: lots}\n"),
                    {"spec.podTemplate.spec.containers[0].resources.limits[cpu]: Invalid value: "
                     "\"lots\""}},
        InvalidCase{"BadTimestamp",
                    SandboxYaml("", "  shutdownTime: tomorrow\n"),
                    {"spec.shutdownTime: Invalid value: \"tomorrow\""}},
        InvalidCase{"Int32Overflow",
                    SandboxYaml("        ports:\n        - containerPort: 4294967296\n"),
                    {"containers[0].ports[0].containerPort: Invalid value: 4294967296"}},
        InvalidCase{"MissingName",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: default}\n",
                    {"metadata.name: Required value: name or generateName is required"}},
        InvalidCase{"SandboxNameIsDnsLabel",
                    SandboxYaml("", "", "a.b"),
                    {"metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label"}},
        InvalidCase{"SandboxNameTooLong",
                    SandboxYaml("", "", kLong64),
                    {"metadata.name: Invalid value: \"" + kLong64 +
                     "\": must be no more than 63 characters"}},
        InvalidCase{"UppercaseName",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
                    {"metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 "
                     "subdomain"}},
        InvalidCase{"BadLabelKeyAndValue",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n"
                    "    \"-bad\": ok\n    good: \"" +
                        kLong64 + "\"\n",
                    {"metadata.labels: Invalid value: \"-bad\": name part must consist of",
                     "metadata.labels: Invalid value: \"" + kLong64 +
                         "\": must be no more than 63 characters"}},
        InvalidCase{"BadAnnotationKey",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n"
                    "    \"a/b/c\": x\n",
                    {"metadata.annotations: Invalid value: \"a/b/c\": a qualified name"}},
        InvalidCase{"AnnotationsTooLarge",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n"
                    "    big: \"" +
                        std::string(256 * 1024, 'x') + "\"\n",
                    {"metadata.annotations: Too long: must have at most 262144 bytes"}},
        InvalidCase{"DuplicateContainerNames",
                    SandboxYaml("      - name: main\n        image: x\n"),
                    {"spec.podTemplate.spec.containers[1]: Duplicate value: {\"name\":\"main\"}"}},
        InvalidCase{
            "InitContainerNameClash",
            SandboxYaml("", "      initContainers:\n      - name: main\n        image: x\n"),
            {"containers[0].name: Duplicate value: \"main\""}},
        InvalidCase{"ContainerNameNotLabel",
                    SandboxYaml("      - name: Side_Car\n        image: x\n"),
                    {"spec.podTemplate.spec.containers[1].name: Invalid value: \"Side_Car\""}},
        InvalidCase{"EnvVarName",
                    SandboxYaml("        env:\n        - {name: 1BAD, value: x}\n"),
                    {"spec.podTemplate.spec.containers[0].env[0].name: Invalid value: \"1BAD\": "
                     "a valid environment variable name"}},
        InvalidCase{"EnvValueAndValueFrom",
                    SandboxYaml("        env:\n        - name: A\n          value: x\n"
                                "          valueFrom: {secretKeyRef: {name: s, key: k}}\n"),
                    {"env[0].valueFrom: Invalid value: \"\": may not be specified when `value` "
                     "is not empty"}},
        InvalidCase{"EnvValueFromEmpty",
                    SandboxYaml("        env:\n        - name: A\n          valueFrom: {}\n"),
                    {"env[0].valueFrom: Invalid value: \"\": must specify one of"}},
        InvalidCase{"EnvValueFromTwoSources",
                    SandboxYaml("        env:\n        - name: A\n          valueFrom:\n"
                                "            secretKeyRef: {name: s, key: k}\n"
                                "            configMapKeyRef: {name: c, key: k}\n"),
                    {"env[0].valueFrom: Invalid value: \"\": may not have more than one field"}},
        InvalidCase{"SecretKeyRefWithoutName",
                    SandboxYaml("        env:\n        - name: A\n          valueFrom:\n"
                                "            secretKeyRef: {key: k}\n"),
                    {"env[0].valueFrom.secretKeyRef.name: Required value"}},
        InvalidCase{"RestartPolicy",
                    SandboxYaml("", "      restartPolicy: Sometimes\n"),
                    {"spec.podTemplate.spec.restartPolicy: Unsupported value: \"Sometimes\""}},
        InvalidCase{"MountOfUnknownVolume",
                    SandboxYaml("        volumeMounts: [{name: data, mountPath: /d}]\n"),
                    {"containers[0].volumeMounts[0].name: Not found: \"data\""}},
        InvalidCase{"SecretBadBase64",
                    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: \"!!!\"}\n",
                    {"data[k]: Invalid value: illegal base64 data at input byte 0"}},
        InvalidCase{"SecretBadKey",
                    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {\"a b\": x}\n",
                    {"data[a b]: Invalid value: \"a b\": a valid config key"}},
        InvalidCase{"TlsSecretNeedsKeys",
                    "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\n",
                    {"data[tls.crt]: Required value", "data[tls.key]: Required value"}},
        InvalidCase{"ConfigMapKeyInBoth",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: x}\n"
                    "binaryData: {k: eA==}\n",
                    {"data[k]: Invalid value: \"k\": duplicate of key present in binaryData"}},
        InvalidCase{"ClaimNeedsPool",
                    "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxClaim\n"
                    "metadata: {name: c}\nspec: {}\n",
                    {"spec.warmPoolRef: Required value"}}),
    [](const auto& info) { return info.param.name; });

TEST(DecodeObjectTest, InvalidMessageNamesObjectAndJoinsAllErrors) {
  auto obj = DecodeYaml(
      "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: bad}\n"
      "spec:\n  operatingMode: Paused\n  podTemplate:\n    spec:\n      containers:\n"
      "      - name: c\n");
  ASSERT_FALSE(obj.ok());
  EXPECT_EQ(obj.status().message(),
            "Sandbox.agents.x-k8s.io \"bad\" is invalid: spec.operatingMode: Unsupported value: "
            "\"Paused\": supported values: \"Running\", \"Suspended\"");
  auto obj2 = DecodeYaml(
      "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: bad}\n"
      "spec:\n  podTemplate:\n    spec:\n      containers:\n      - name: c\n");
  ASSERT_FALSE(obj2.ok());
  EXPECT_EQ(obj2.status().message(),
            "Sandbox.agents.x-k8s.io \"bad\" is invalid: "
            "spec.podTemplate.spec.containers[0].image: Required value");
  auto cm =
      DecodeYaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad}\ndata: {\"a b\": x}\n");
  ASSERT_FALSE(cm.ok());
  EXPECT_THAT(cm.status().message(), HasSubstr("ConfigMap \"Bad\" is invalid: metadata.name: "));
  EXPECT_THAT(cm.status().message(), HasSubstr("; data[a b]: Invalid value"));
}

TEST(DecodeObjectTest, NamespaceMustBeDnsLabel) {
  Json doc = Yaml(SandboxYaml());
  doc["metadata"]["namespace"] = "Not.OK";
  auto obj = DecodeObject(doc);
  ASSERT_FALSE(obj.ok());
  EXPECT_THAT(obj.status().message(), HasSubstr("metadata.namespace: Invalid value: \"Not.OK\""));
}

TEST(DecodeObjectTest, GenerateNameMayEndInDash) {
  Json doc = Yaml(SandboxYaml());
  doc["metadata"].erase("name");
  doc["metadata"]["generateName"] = "sb-";
  auto obj = DecodeObject(doc);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->metadata.generate_name, "sb-");
}

TEST(DecodeObjectTest, ClusterScopedKindDropsNamespace) {
  auto obj = DecodeYaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: x}\n");
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->metadata.namespace_, "");
}

struct TypeErrorCase {
  const char* name;
  const char* text;
  const char* want;
};

class TypeErrorTest : public ::testing::TestWithParam<TypeErrorCase> {};

TEST_P(TypeErrorTest, IsInvalidArgumentNamingTheField) {
  auto obj = DecodeObject(Yaml(GetParam().text));
  ASSERT_FALSE(obj.ok());
  EXPECT_EQ(obj.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(obj.status().message(), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, TypeErrorTest,
    ::testing::Values(
        TypeErrorCase{"MissingApiVersion", "kind: Sandbox\n", "apiVersion not set"},
        TypeErrorCase{"MissingKind", "apiVersion: v1\n", "kind not set"},
        TypeErrorCase{"MissingBoth", "metadata: {name: a}\n", "apiVersion not set, kind not set"},
        TypeErrorCase{"NonStringKind", "apiVersion: v1\nkind: 3\n", "kind must be a string"},
        TypeErrorCase{"UnknownKind", "apiVersion: x/v1\nkind: Foo\n",
                      "no kind \"Foo\" is registered for version \"x/v1\""},
        TypeErrorCase{"UnknownVersion", "apiVersion: agents.x-k8s.io/v2\nkind: Sandbox\n",
                      "no kind \"Sandbox\" is registered for version \"agents.x-k8s.io/v2\""},
        TypeErrorCase{"WrongGroup", "apiVersion: v1\nkind: Sandbox\n",
                      "no kind \"Sandbox\" is registered for version \"v1\""}),
    [](const auto& info) { return info.param.name; });

// ---- Secrets ----

TEST(DecodeObjectTest, SecretStringDataIsMergedIntoData) {
  auto obj = DecodeYaml(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n"
      "data:\n  a: b2xk\n  b: Yg==\nstringData:\n  a: hello\n  c: \"\"\n");
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_FALSE(obj->body.contains("stringData"));
  EXPECT_EQ(obj->body["data"], Json::parse(R"({"a":"aGVsbG8=","b":"Yg==","c":""})"));
  EXPECT_EQ(obj->body["type"], "Opaque");
}

// ---- conversion ----

TEST(ConversionTest, V1alpha1ReplicasBecomeOperatingMode) {
  struct Case {
    std::string replicas_line;
    const char* mode;
  } cases[] = {{"  replicas: 0\n", "Suspended"}, {"  replicas: 1\n", "Running"}, {"", "Running"}};
  for (const auto& c : cases) {
    auto obj = DecodeYaml(SandboxYaml("", c.replicas_line, "sb", "v1alpha1"));
    ASSERT_TRUE(obj.ok()) << obj.status().ToString();
    EXPECT_EQ(obj->api_version, "agents.x-k8s.io/v1beta1");
    EXPECT_EQ(obj->body["spec"]["operatingMode"], c.mode) << c.replicas_line;
    EXPECT_FALSE(obj->body["spec"].contains("replicas"));
    EXPECT_EQ(obj->body["spec"]["shutdownPolicy"], "Retain");
  }
}

TEST(ConversionTest, SandboxServedAsV1alpha1) {
  Json running = Yaml(SandboxYaml("", "  operatingMode: Running\n"));
  running["status"] = {{"nodeName", "n"}, {"podIPs", {"10.0.0.2"}}};
  Json a = ConvertSandboxToVersion(running, "v1alpha1");
  EXPECT_EQ(a["apiVersion"], "agents.x-k8s.io/v1alpha1");
  EXPECT_EQ(a["spec"]["replicas"], 1);
  EXPECT_FALSE(a["spec"].contains("operatingMode"));
  EXPECT_FALSE(a["status"].contains("nodeName"));
  EXPECT_EQ(a["status"]["replicas"], 1);

  Json suspended = Yaml(SandboxYaml("", "  operatingMode: Suspended\n"));
  Json b = ConvertSandboxToVersion(suspended, "v1alpha1");
  EXPECT_EQ(b["spec"]["replicas"], 0);

  EXPECT_EQ(ConvertSandboxToVersion(suspended, "v1beta1"), suspended);
}

TEST(ConversionTest, V1alpha1RoundTrip) {
  for (const char* replicas : {"0", "1"}) {
    Json alpha =
        Yaml(SandboxYaml("", std::string("  replicas: ") + replicas + "\n", "sb", "v1alpha1"));
    auto obj = DecodeObject(alpha);
    ASSERT_TRUE(obj.ok()) << obj.status().ToString();
    Json back = ConvertSandboxToVersion(obj->ToJson(), "v1alpha1");
    EXPECT_EQ(back["spec"]["replicas"], std::stoi(replicas));
    // And the v1alpha1 rendering decodes again.
    auto again = DecodeObject(back);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->body["spec"], obj->body["spec"]);
  }
}

std::string ClaimV1alpha1(const std::string& warmpool_line) {
  return "apiVersion: extensions.agents.x-k8s.io/v1alpha1\nkind: SandboxClaim\n"
         "metadata: {name: c, namespace: default}\n"
         "spec:\n  sandboxTemplateRef: {name: tmpl}\n" +
         warmpool_line;
}

TEST(ConversionTest, V1alpha1ClaimNamedPoolBecomesWarmPoolRef) {
  auto obj = DecodeYaml(ClaimV1alpha1("  warmpool: pool-a\n"));
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->api_version, "extensions.agents.x-k8s.io/v1beta1");
  EXPECT_EQ(obj->body["spec"], Json::parse(R"({"warmPoolRef":{"name":"pool-a"}})"));
}

TEST(ConversionTest, V1alpha1ColdClaimUsesShadowPool) {
  auto obj = DecodeYaml(ClaimV1alpha1("  warmpool: none\n"));
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_EQ(obj->body["spec"]["warmPoolRef"]["name"], "shadow-pool-tmpl");
}

TEST(ConversionTest, V1alpha1ClaimWithDefaultPoolIsRefused) {
  for (const char* line : {"", "  warmpool: default\n"}) {
    auto obj = DecodeYaml(ClaimV1alpha1(line));
    ASSERT_FALSE(obj.ok());
    EXPECT_EQ(obj.status().code(), Code::kInvalid);
    EXPECT_THAT(obj.status().message(),
                HasSubstr("spec.warmpool: Invalid value: \"default\": cannot be converted"));
  }
}

TEST(ConversionTest, V1alpha1TemplateAndPoolConvertFieldForField) {
  auto tmpl = DecodeYaml(
      "apiVersion: extensions.agents.x-k8s.io/v1alpha1\nkind: SandboxTemplate\n"
      "metadata: {name: t}\nspec:\n  podTemplate:\n    spec:\n"
      "      containers: [{name: c, image: i}]\n  networkPolicyManagement: Unmanaged\n");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  EXPECT_EQ(tmpl->api_version, "extensions.agents.x-k8s.io/v1beta1");
  EXPECT_EQ(tmpl->body["spec"]["networkPolicyManagement"], "Unmanaged");

  auto pool = DecodeYaml(
      "apiVersion: extensions.agents.x-k8s.io/v1alpha1\nkind: SandboxWarmPool\n"
      "metadata: {name: p}\nspec: {replicas: 3, sandboxTemplateRef: {name: t}}\n");
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  EXPECT_EQ(pool->api_version, "extensions.agents.x-k8s.io/v1beta1");
  EXPECT_EQ(pool->body["spec"]["replicas"], 3);
}

// ---- upstream examples ----

TEST(FixturesTest, UpstreamExamplesDecode) {
  const char* src = std::getenv("SBX_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "SBX_SOURCE_DIR not set";
  std::string dir = std::string(src) + "/tests/api/testdata/agent-sandbox-examples";
  int decoded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    auto text = ReadFile(entry.path().string());
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    std::string t = std::regex_replace(*text, std::regex(R"(\$\{[A-Z_]+\})"), "placeholder");
    auto docs = ParseDocuments(t, entry.path().filename().string());
    ASSERT_TRUE(docs.ok()) << docs.status().ToString();
    for (const auto& doc : *docs) {
      auto obj = DecodeObject(doc);
      if (doc.value("kind", "") == "NetworkPolicy") {
        // Not a kind sbx serves.
        ASSERT_FALSE(obj.ok());
        EXPECT_THAT(obj.status().message(), HasSubstr("no kind \"NetworkPolicy\""));
        continue;
      }
      EXPECT_TRUE(obj.ok()) << entry.path().filename() << ": " << obj.status().ToString();
      ++decoded;
    }
  }
  EXPECT_GE(decoded, 18);
}

// ---- updates ----

Object Decoded(const std::string& text) {
  auto obj = DecodeYaml(text);
  EXPECT_TRUE(obj.ok()) << obj.status().ToString();
  return obj.ok() ? *obj : Object();
}

const char kVct[] =
    "  volumeClaimTemplates:\n  - metadata: {name: data}\n"
    "    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";

TEST(ValidateUpdateTest, VolumeClaimTemplatesAreImmutable) {
  Object with = Decoded(SandboxYaml("", kVct));
  Object without = Decoded(SandboxYaml());
  Object changed = with;
  changed.body["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "other";
  for (const auto& [from, to] :
       std::vector<std::pair<Object, Object>>{{with, without}, {without, with}, {with, changed}}) {
    Status s = ValidateUpdate(from, to);
    EXPECT_EQ(s.code(), Code::kInvalid);
    EXPECT_THAT(s.message(), HasSubstr("volumeClaimTemplates is immutable"));
  }
  Object other_change = with;
  other_change.body["spec"]["operatingMode"] = "Suspended";
  EXPECT_TRUE(ValidateUpdate(with, other_change).ok());
}

TEST(ValidateUpdateTest, NameAndNamespaceAreImmutable) {
  Object a = Decoded(SandboxYaml());
  Object b = a;
  b.metadata.name = "other";
  b.metadata.namespace_ = "ns2";
  Status s = ValidateUpdate(a, b);
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_THAT(s.message(),
              HasSubstr("metadata.name: Invalid value: \"other\": field is immutable"));
  EXPECT_THAT(s.message(), HasSubstr("metadata.namespace: Invalid value: \"ns2\""));
}

TEST(ValidateUpdateTest, ImmutableSecretKeepsDataAndFlag) {
  Object s = Decoded(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: YQ==}\n"
      "immutable: true\n");
  Object changed = s;
  changed.body["data"]["a"] = "Yg==";
  EXPECT_THAT(ValidateUpdate(s, changed).message(),
              HasSubstr("data: Forbidden: field is immutable when `immutable` is set"));
  Object unflagged = s;
  unflagged.body["immutable"] = false;
  EXPECT_THAT(ValidateUpdate(s, unflagged).message(), HasSubstr("immutable: Forbidden"));
  Object same = s;
  same.metadata.labels["x"] = "y";
  EXPECT_TRUE(ValidateUpdate(s, same).ok());
}

TEST(ValidateUpdateTest, MutableSecretMayChangeDataButNotType) {
  Object s = Decoded("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: YQ==}\n");
  Object changed = s;
  changed.body["data"]["a"] = "Yg==";
  EXPECT_TRUE(ValidateUpdate(s, changed).ok());
  changed.body["type"] = "kubernetes.io/basic-auth";
  EXPECT_THAT(ValidateUpdate(s, changed).message(), HasSubstr("type: Invalid value"));
}

TEST(ValidateUpdateTest, ImmutableConfigMapKeepsBinaryData) {
  Object cm = Decoded(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
      "binaryData: {a: YQ==}\nimmutable: true\n");
  Object changed = cm;
  changed.body.erase("binaryData");
  EXPECT_THAT(ValidateUpdate(cm, changed).message(), HasSubstr("binaryData: Forbidden"));
}

}  // namespace
}  // namespace sbx::api
