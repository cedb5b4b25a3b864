// Container env as the kubelet builds it: envFrom, env, valueFrom sources,
// $(VAR) expansion, and the errors for missing objects and keys.
#include "daemon/container_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "common/base64.h"

namespace sbx::daemon {
namespace {

using api::Json;
using ::testing::ElementsAre;
using ::testing::Pair;
using Env = std::vector<std::pair<std::string, std::string>>;

constexpr char kPath[] = "spec.podTemplate.spec.containers[0]";

std::optional<std::string> Lookup(const std::map<std::string, std::string>& vars,
                                  std::string_view name) {
  auto it = vars.find(std::string(name));
  if (it == vars.end()) return std::nullopt;
  return it->second;
}

TEST(ExpandVarTest, KubeletSemantics) {
  const std::map<std::string, std::string> vars = {
      {"A", "a"}, {"B", "b"}, {"EMPTY", ""}, {"A$(B", "odd"}, {"DOLLAR", "$(A)"}};
  auto lookup = [&](std::string_view n) { return Lookup(vars, n); };
  struct Case {
    const char* in;
    const char* want;
  } cases[] = {
      {"", ""},
      {"plain", "plain"},
      {"$(A)", "a"},
      {"x$(A)y$(B)z", "xaybz"},
      {"$(A)$(A)", "aa"},
      {"$(EMPTY)|", "|"},
      {"$(MISSING)", "$(MISSING)"},  // unresolved: kept verbatim
      {"$$(A)", "$(A)"},             // escaped
      {"$$$(A)", "$a"},              // escaped "$", then a reference
      {"$$$$(A)", "$$(A)"},          // two escapes
      {"$(A", "$(A"},                // unterminated
      {"$(A$(B)", "odd"},            // references do not nest: the name is "A$(B"
      {"$(A$(B))", "odd)"},
      {"$(X$(B))", "$(X$(B))"},  // unresolved, kept whole
      {"$A", "$A"},              // no parenthesis
      {"$", "$"},                // trailing operator
      {"a$", "a$"},
      {"$()", "$()"},         // empty name never resolves
      {"$(DOLLAR)", "$(A)"},  // values are not expanded again
      {"100$", "100$"},
      {"$)", "$)"},
  };
  for (const Case& c : cases) EXPECT_EQ(ExpandVar(c.in, lookup), c.want) << c.in;
}

TEST(ExpandVarsTest, CommandAndArgsAgainstTheEnv) {
  Env env = {{"GREETING", "hello"}, {"WHO", "world"}, {"GREETING", "hi"}};
  EXPECT_THAT(ExpandVars({"echo", "$(GREETING) $(WHO)", "$$(WHO)", "$(NOPE)"}, env),
              ElementsAre("echo", "hi world", "$(WHO)", "$(NOPE)"));
}

class ContainerEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sb_.metadata.name = "sb";
    sb_.metadata.namespace_ = "ns";
    sb_.metadata.uid = "0b7c-uid";
    sb_.spec.pod_template.labels = {{"app", "web"}};
    sb_.spec.pod_template.annotations = {{"team", "blue"}};
    sb_.spec.pod_template.spec.raw = {{"serviceAccountName", "robot"}};
    sb_.status.node_name = "node-1";

    Add("ConfigMap", "settings",
        {{"MODE", "fast"}, {"LEVEL", "3"}, {"1BAD", "x"}, {"has space", "y"}});
    Add("Secret", "creds", {{"user", "alice"}, {"password", "s3cret"}});

    sources_.get = [this](const std::string& kind, const std::string& name) -> Result<api::Object> {
      ++gets_;
      auto it = objects_.find({kind, name});
      if (it == objects_.end()) return NotFound(kind + " not stored");
      return it->second;
    };
    sources_.resource_field = [](const Json& ref, const std::string& path) -> Result<std::string> {
      if (ref.value("resource", "") == "limits.memory") return std::string("1073741824");
      return Invalid(path + ".resource: bad");
    };
    sources_.pod_ip = "10.0.0.7";
    sources_.host_ip = "192.168.1.2";
  }

  // Stores a ConfigMap or Secret (data base64-encoded, as stored) in namespace ns.
  void Add(const std::string& kind, const std::string& name,
           const std::map<std::string, std::string>& data) {
    api::Object o;
    o.api_version = "v1";
    o.kind = kind;
    o.metadata.name = name;
    o.metadata.namespace_ = "ns";
    for (const auto& [k, v] : data) o.body["data"][k] = kind == "Secret" ? Base64Encode(v) : v;
    objects_[{kind, name}] = o;
  }

  Result<Env> Resolve(const Json& container, std::vector<std::string>* warnings = nullptr) {
    return ResolveContainerEnv(sb_, container, kPath, sources_, warnings);
  }

  Env MustResolve(const Json& container) {
    auto got = Resolve(container);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : Env{};
  }

  api::Sandbox sb_;
  EnvSources sources_;
  std::map<std::pair<std::string, std::string>, api::Object> objects_;
  int gets_ = 0;
};

TEST_F(ContainerEnvTest, EnvFromThenEnvInOrderWithExpansion) {
  Json c = Json::parse(R"json({
    "name": "main",
    "envFrom": [
      {"configMapRef": {"name": "settings"}},
      {"secretRef": {"name": "creds"}, "prefix": "DB_"}
    ],
    "env": [
      {"name": "URL", "value": "https://$(DB_user):$(DB_password)@db/$(MODE)"},
      {"name": "MODE", "value": "slow-$(MODE)"},
      {"name": "LATER", "value": "$(AFTER)"},
      {"name": "AFTER", "value": "x"},
      {"name": "EMPTY"},
      {"name": "ESCAPED", "value": "$$(MODE)"},
      {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
      {"name": "NOT_EXPANDED", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "1BAD"}}}
    ]})json");
  std::vector<std::string> warnings;
  auto got = Resolve(c, &warnings);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_THAT(*got,
              ElementsAre(Pair("LEVEL", "3"), Pair("MODE", "slow-fast"),
                          Pair("DB_password", "s3cret"), Pair("DB_user", "alice"),
                          Pair("URL", "https://alice:s3cret@db/fast"), Pair("LATER", "$(AFTER)"),
                          Pair("AFTER", "x"), Pair("EMPTY", ""), Pair("ESCAPED", "$(MODE)"),
                          Pair("FROM_SECRET", "alice"), Pair("NOT_EXPANDED", "x")));
  EXPECT_THAT(warnings, ElementsAre("Keys [1BAD, has space] from the EnvFrom configmap "
                                    "ns/settings were skipped since they are considered invalid "
                                    "environment variable names."));
  // Each object is read once.
  EXPECT_EQ(gets_, 2);
}

TEST_F(ContainerEnvTest, EnvFromPrefixCanMakeKeysValidAndOptionalSkipsMissing) {
  Json c = {{"envFrom", Json::parse(R"([
      {"configMapRef": {"name": "settings"}, "prefix": "CM_"},
      {"configMapRef": {"name": "absent", "optional": true}},
      {"secretRef": {"name": "absent", "optional": true}}])")}};
  std::vector<std::string> warnings;
  auto got = Resolve(c, &warnings);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_THAT(*got,
              ElementsAre(Pair("CM_1BAD", "x"), Pair("CM_LEVEL", "3"), Pair("CM_MODE", "fast")));
  EXPECT_THAT(warnings, ElementsAre(::testing::HasSubstr("Keys [CM_has space]")));
}

TEST_F(ContainerEnvTest, OptionalKeyRefsLeaveTheVariableOut) {
  Json c = {{"envFrom", {{{"configMapRef", {{"name", "settings"}}}}}}, {"env", Json::parse(R"([
      {"name": "A", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": true}}},
      {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nokey", "optional": true}}},
      {"name": "B", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nokey", "optional": true}}}])")}};
  // MODE keeps the envFrom value, as in the kubelet.
  EXPECT_THAT(MustResolve(c), ElementsAre(Pair("LEVEL", "3"), Pair("MODE", "fast")));
}

TEST_F(ContainerEnvTest, FieldRefs) {
  struct Case {
    std::string field, want;
  } cases[] = {
      {"metadata.name", "sb"},
      {"metadata.namespace", "ns"},
      {"metadata.uid", "0b7c-uid"},
      {"metadata.labels['app']", "web"},
      {"metadata.labels['missing']", ""},
      {"metadata.labels['agents.x-k8s.io/sandbox-name-hash']", api::NameHash("sb")},
      {"metadata.annotations['team']", "blue"},
      {"spec.nodeName", "node-1"},
      {"spec.serviceAccountName", "robot"},
      {"status.podIP", "10.0.0.7"},
      {"status.podIPs", "10.0.0.7"},
      {"status.hostIP", "192.168.1.2"},
      {"status.hostIPs", "192.168.1.2"},
  };
  for (const Case& c : cases) {
    Json container = {
        {"env", {{{"name", "V"}, {"valueFrom", {{"fieldRef", {{"fieldPath", c.field}}}}}}}}};
    EXPECT_THAT(MustResolve(container), ElementsAre(Pair("V", c.want))) << c.field;
  }

  sb_.metadata.annotations[api::kPodNameAnnotation] = "sb-pod";
  sb_.spec.pod_template.spec.raw = Json::object();
  Json names = {{"env", Json::parse(R"([
      {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}},
      {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}])")}};
  EXPECT_THAT(MustResolve(names), ElementsAre(Pair("POD", "sb-pod"), Pair("SA", "default")));
}

TEST_F(ContainerEnvTest, ResourceFieldRefGoesToTheSource) {
  Json c = {{"env", Json::parse(R"([{"name": "MEM", "valueFrom": {"resourceFieldRef":
      {"resource": "limits.memory"}}}])")}};
  EXPECT_THAT(MustResolve(c), ElementsAre(Pair("MEM", "1073741824")));
  c = {{"env", Json::parse(R"([{"name": "X", "valueFrom": {"resourceFieldRef":
      {"resource": "limits.gpu"}}}])")}};
  auto got = Resolve(c);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(),
            std::string(kPath) + ".env[0].valueFrom.resourceFieldRef.resource: bad");
}

TEST_F(ContainerEnvTest, ErrorsNameTheFieldAndWhatIsMissing) {
  struct Case {
    const char* container;
    Code code;
    std::string want;
  } cases[] = {
      {R"({"env": [{"name": "A", "value": "1"},
           {"name": "B", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]})",
       Code::kNotFound, ".env[1].valueFrom.secretKeyRef: secret \"x\" not found"},
      {R"({"env": [{"name": "B", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]})",
       Code::kNotFound, ".env[0].valueFrom.secretKeyRef: couldn't find key k in Secret ns/creds"},
      {R"({"env": [{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}]})",
       Code::kNotFound, ".env[0].valueFrom.configMapKeyRef: configmap \"x\" not found"},
      {R"({"env": [{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}}]})",
       Code::kNotFound,
       ".env[0].valueFrom.configMapKeyRef: couldn't find key k in ConfigMap ns/settings"},
      {R"({"envFrom": [{"secretRef": {"name": "x"}}]})", Code::kNotFound,
       ".envFrom[0].secretRef: secret \"x\" not found"},
      {R"({"envFrom": [{"configMapRef": {"name": "x"}}]})", Code::kNotFound,
       ".envFrom[0].configMapRef: configmap \"x\" not found"},
      {R"({"envFrom": [{"prefix": "P_"}]})", Code::kInvalid,
       ".envFrom[0]: must specify one of: `configMapRef` or `secretRef`"},
      {R"({"env": [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}]})",
       Code::kInvalid,
       ".env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"metadata.labels\""},
      {R"({"env": [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]})",
       Code::kInvalid,
       ".env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.hostname\""},
      {R"({"env": [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name",
           "apiVersion": "v2"}}}]})",
       Code::kInvalid, ".env[0].valueFrom.fieldRef.apiVersion: Unsupported value: \"v2\""},
      {R"({"env": [{"name": "B", "valueFrom": {}}]})", Code::kInvalid,
       ".env[0].valueFrom: Invalid value: \"\": must specify one of"},
      {R"({"env": [{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"},
           "secretKeyRef": {"name": "creds", "key": "user"}}}]})",
       Code::kInvalid, ".env[0].valueFrom: Invalid value: \"\": may not have more than one field"},
      {R"({"env": [{"value": "1"}]})", Code::kInvalid, ".env[0].name: Required value"},
      {R"({"env": [{"name": "B", "valueFrom": {"secretKeyRef": {"name": "creds"}}}]})",
       Code::kInvalid, ".env[0].valueFrom.secretKeyRef.key: Required value"},
  };
  for (const Case& c : cases) {
    auto got = Resolve(Json::parse(c.container));
    ASSERT_FALSE(got.ok()) << c.container;
    EXPECT_EQ(got.status().code(), c.code) << got.status().ToString();
    EXPECT_EQ(got.status().message().substr(0, std::string(kPath).size()), kPath);
    EXPECT_THAT(got.status().message(), ::testing::HasSubstr(c.want)) << c.container;
  }
}

TEST_F(ContainerEnvTest, SourceFailuresOtherThanNotFoundPassThrough) {
  sources_.get = [](const std::string&, const std::string&) -> Result<api::Object> {
    return Unavailable("store is closed");
  };
  auto got = Resolve(Json::parse(
      R"({"env": [{"name": "B", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k", "optional": true}}}]})"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_EQ(got.status().message(),
            std::string(kPath) + ".env[0].valueFrom.secretKeyRef: store is closed");
}

}  // namespace
}  // namespace sbx::daemon
