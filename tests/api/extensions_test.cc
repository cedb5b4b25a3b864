// Templates, warm pool members, claim sandboxes and the claim rules.
#include "api/extensions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/decode.h"

namespace sbx::api {
namespace {

using ::testing::HasSubstr;

Object Decoded(const std::string& yaml, const std::string& uid = "") {
  auto docs = ParseDocuments(yaml, "x.yaml");
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  auto obj = DecodeObject((*docs)[0]);
  EXPECT_TRUE(obj.ok()) << obj.status().ToString();
  obj->metadata.uid = uid;
  return *obj;
}

const char kTemplate[] = R"(
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata: {name: tmpl, namespace: default}
spec:
  podTemplate:
    metadata:
      labels: {team: a}
      annotations: {note: x}
    spec:
      containers:
      - name: main
        image: busybox
        env: [{name: MODE, value: template}]
      - name: side
        image: busybox
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
)";

Object Template(const std::string& extra_spec = "") {
  std::string y = kTemplate;
  if (!extra_spec.empty()) y += "  " + extra_spec + "\n";
  return Decoded(y, "tmpl-uid");
}

Object Pool(const std::string& strategy = "") {
  std::string y = R"(
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
metadata: {name: pool, namespace: default}
spec:
  replicas: 3
  sandboxTemplateRef: {name: tmpl}
)";
  if (!strategy.empty()) y += "  updateStrategy: {type: " + strategy + "}\n";
  return Decoded(y, "pool-uid");
}

Object Claim(const std::string& extra_spec = "") {
  std::string y = R"(
apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata: {name: alice, namespace: default}
spec:
  warmPoolRef: {name: pool}
)";
  return Decoded(y + extra_spec, "claim-uid");
}

TEST(ExtensionsTest, PoliciesDefaultAsUpstream) {
  TemplatePolicies p = PoliciesOf(Template());
  EXPECT_EQ(p.env_vars_injection, "Disallowed");
  EXPECT_EQ(p.volume_claim_templates, "Disallowed");
  EXPECT_EQ(p.network_policy_management, "Managed");
  EXPECT_FALSE(p.has_network_policy);
  WarmPoolSpec s = WarmPoolSpecOf(Pool());
  EXPECT_EQ(s.replicas, 3);
  EXPECT_EQ(s.template_name, "tmpl");
  EXPECT_EQ(s.update_strategy, "OnReplenish");
}

TEST(ExtensionsTest, BlueprintGetsSecureDefaults) {
  Json b = BlueprintOf(Template());
  const Json& spec = b["podTemplate"]["spec"];
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  EXPECT_EQ(spec["dnsPolicy"], "None");
  EXPECT_EQ(spec["dnsConfig"]["nameservers"], Json({"8.8.8.8", "1.1.1.1"}));
  EXPECT_EQ(b["volumeClaimTemplates"].size(), 1u);

  // A custom network policy, an unmanaged one or an explicit dnsPolicy keep DNS.
  for (const char* extra : {"networkPolicy: {egress: []}", "networkPolicyManagement: Unmanaged"}) {
    Json spec2 = BlueprintOf(Template(extra))["podTemplate"]["spec"];
    EXPECT_FALSE(spec2.contains("dnsPolicy")) << extra;
  }
}

TEST(ExtensionsTest, BlueprintHashIgnoresPodMetadataButNotTheSpec) {
  Object a = Template();
  Object labels_only = a;
  labels_only.body["spec"]["podTemplate"]["metadata"]["labels"]["team"] = "b";
  Object image = a;
  image.body["spec"]["podTemplate"]["spec"]["containers"][0]["image"] = "python";
  Object service = a;
  service.body["spec"]["service"] = true;
  EXPECT_EQ(BlueprintHash(a), BlueprintHash(labels_only));
  EXPECT_NE(BlueprintHash(a), BlueprintHash(image));
  EXPECT_NE(BlueprintHash(a), BlueprintHash(service));
  EXPECT_EQ(BlueprintHash(a).size(), 8u);
}

TEST(ExtensionsTest, WarmMemberCarriesUpstreamLabelsAndPoolOwnership) {
  Object pool = Pool(), tmpl = Template();
  Object m = NewWarmPoolMember(pool, tmpl);
  EXPECT_EQ(m.kind, "Sandbox");
  EXPECT_EQ(m.metadata.generate_name, "pool-");
  EXPECT_EQ(m.metadata.namespace_, "default");
  EXPECT_EQ(m.metadata.labels.at(kWarmPoolSandboxLabel), NameHash("pool"));
  EXPECT_EQ(m.metadata.labels.at(kTemplateRefHashLabel), NameHash("tmpl"));
  EXPECT_EQ(m.metadata.labels.at(kTemplateHashLabel), BlueprintHash(tmpl));
  EXPECT_EQ(m.metadata.labels.at(kLaunchTypeLabel), "warm");
  EXPECT_EQ(m.metadata.labels.at(kCreatedByLabel), "controller");
  EXPECT_EQ(m.metadata.annotations.at(kTemplateRefAnnotation), "tmpl");
  ASSERT_EQ(m.metadata.owner_references.size(), 1u);
  EXPECT_EQ(m.metadata.owner_references[0].uid, "pool-uid");
  EXPECT_EQ(m.metadata.owner_references[0].kind, "SandboxWarmPool");
  EXPECT_TRUE(m.metadata.owner_references[0].controller);
  const Json& meta = m.body["spec"]["podTemplate"]["metadata"];
  EXPECT_EQ(meta["labels"]["team"], "a");
  EXPECT_EQ(meta["labels"][kWarmPoolSandboxLabel], NameHash("pool"));
  EXPECT_EQ(meta["annotations"][kSafeToEvictAnnotation], "true");
  // The member decodes as a valid Sandbox once named.
  m.metadata.name = "pool-abcde";
  auto again = DecodeObject(m.ToJson());
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(ExtensionsTest, AdoptionMovesOwnershipAndRelabels) {
  Object pool = Pool(), tmpl = Template();
  Object claim = Claim("  additionalPodMetadata: {labels: {sandbox.users.io/user: alice}}\n");
  Object m = NewWarmPoolMember(pool, tmpl);
  m.metadata.name = "pool-abcde";
  Json pod_spec_before = m.body["spec"]["podTemplate"]["spec"];
  AdoptWarmMember(claim, tmpl, &m);
  EXPECT_FALSE(m.metadata.labels.contains(kWarmPoolSandboxLabel));
  EXPECT_FALSE(m.metadata.labels.contains(kTemplateHashLabel));
  EXPECT_EQ(m.metadata.labels.at(kClaimUidLabel), "claim-uid");
  EXPECT_EQ(m.metadata.labels.at(kLaunchTypeLabel), "warm");
  EXPECT_EQ(m.metadata.annotations.at(kPodNameAnnotation), "pool-abcde");
  ASSERT_EQ(m.metadata.owner_references.size(), 1u);
  EXPECT_EQ(m.metadata.owner_references[0].uid, "claim-uid");
  EXPECT_EQ(m.metadata.owner_references[0].kind, "SandboxClaim");
  const Json& meta = m.body["spec"]["podTemplate"]["metadata"];
  EXPECT_EQ(meta["labels"]["sandbox.users.io/user"], "alice");
  EXPECT_EQ(meta["labels"]["team"], "a");
  EXPECT_EQ(meta["labels"][kClaimUidLabel], "claim-uid");
  EXPECT_FALSE(meta["labels"].contains(kWarmPoolSandboxLabel));
  EXPECT_FALSE(meta["annotations"].contains(kSafeToEvictAnnotation));
  EXPECT_EQ(m.body["spec"]["podTemplate"]["spec"], pod_spec_before);
  // Nothing left to sync afterwards.
  EXPECT_FALSE(SyncClaimPodMetadata(claim, tmpl, &m));
  Object edited = claim;
  edited.body["spec"]["additionalPodMetadata"]["labels"]["sandbox.users.io/user"] = "bob";
  EXPECT_TRUE(SyncClaimPodMetadata(edited, tmpl, &m));
  EXPECT_EQ(m.body["spec"]["podTemplate"]["metadata"]["labels"]["sandbox.users.io/user"], "bob");
}

TEST(ExtensionsTest, AdditionalPodMetadataIsValidatedAsUpstream) {
  const std::vector<std::string> domains = {"sandbox.users.io"};
  struct Case {
    const char* metadata;
    const char* want;  // "" = accepted
  } cases[] = {
      {"{labels: {sandbox.users.io/user: alice}}", ""},
      {"{labels: {team.sandbox.users.io/x: y}}", ""},
      {"{labels: {user: alice}}", "domain prefix"},
      {"{labels: {evil.io/user: alice}}", "domain prefix"},
      {"{labels: {xsandbox.users.io/user: alice}}", "domain prefix"},
      {"{annotations: {example.com/note: x}}", ""},
      {"{annotations: {cluster-autoscaler.kubernetes.io/safe-to-evict: 'false'}}", ""},
      {"{annotations: {kubernetes.io/x: y}}", "reserved"},
      {"{annotations: {foo.k8s.io/x: y}}", "reserved"},
      {"{annotations: {agents.x-k8s.io/pod-name: y}}", "reserved"},
      {"{annotations: {note: other}}", "metadata override conflict"},
      {"{annotations: {note: x}}", ""},
  };
  for (const auto& c : cases) {
    Object claim = Claim(std::string("  additionalPodMetadata: ") + c.metadata + "\n");
    auto r = ValidateAdditionalPodMetadata(claim, Template(), domains);
    if (std::string(c.want).empty()) {
      EXPECT_FALSE(r.has_value()) << c.metadata << ": " << (r ? r->message : "");
    } else {
      ASSERT_TRUE(r.has_value()) << c.metadata;
      EXPECT_EQ(r->reason, kReasonInvalidMetadata);
      EXPECT_THAT(r->message, HasSubstr(c.want)) << c.metadata;
      EXPECT_THAT(r->message, HasSubstr("spec.additionalPodMetadata.")) << c.metadata;
    }
  }
}

TEST(ExtensionsTest, ColdSandboxIsNamedAndOwnedByTheClaim) {
  Object tmpl = Template();
  Object claim = Claim();
  EXPECT_FALSE(ClaimNeedsColdStart(claim));
  ColdSandbox cold = NewClaimSandbox(claim, tmpl);
  ASSERT_TRUE(cold.sandbox) << cold.rejection->message;
  const Object& sb = *cold.sandbox;
  EXPECT_EQ(sb.metadata.name, "alice");
  EXPECT_EQ(sb.metadata.labels.at(kLaunchTypeLabel), "cold");
  EXPECT_EQ(sb.metadata.labels.at(kClaimUidLabel), "claim-uid");
  EXPECT_EQ(sb.metadata.labels.at(kTemplateRefHashLabel), NameHash("tmpl"));
  EXPECT_EQ(sb.metadata.owner_references[0].uid, "claim-uid");
  EXPECT_EQ(sb.body["spec"]["podTemplate"]["spec"]["automountServiceAccountToken"], false);
  EXPECT_FALSE(sb.body["spec"].contains("shutdownTime"));
  auto again = DecodeObject(sb.ToJson());
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST(ExtensionsTest, ClaimEnvFollowsTheTemplatePolicy) {
  const std::string env_new = "  env: [{name: EXTRA, value: '1'}]\n";
  const std::string env_override = "  env: [{name: MODE, value: claim}]\n";
  const std::string env_side = "  env: [{name: EXTRA, value: '2', containerName: side}]\n";
  const std::string env_missing = "  env: [{name: EXTRA, value: '2', containerName: nope}]\n";
  auto env_of = [](const Object& sb, size_t i) {
    return sb.body["spec"]["podTemplate"]["spec"]["containers"][i]["env"];
  };

  ColdSandbox r = NewClaimSandbox(Claim(env_new), Template());
  ASSERT_TRUE(r.rejection);
  EXPECT_EQ(r.rejection->reason, kReasonEnvVarsInjectionRejected);
  EXPECT_THAT(r.rejection->message, HasSubstr("spec.env"));

  r = NewClaimSandbox(Claim(env_new), Template("envVarsInjectionPolicy: Allowed"));
  ASSERT_TRUE(r.sandbox);
  EXPECT_EQ(env_of(*r.sandbox, 0).back(), Json({{"name", "EXTRA"}, {"value", "1"}}));
  EXPECT_TRUE(ClaimNeedsColdStart(Claim(env_new)));

  r = NewClaimSandbox(Claim(env_override), Template("envVarsInjectionPolicy: Allowed"));
  ASSERT_TRUE(r.rejection);
  EXPECT_THAT(r.rejection->message, HasSubstr("spec.env[0].name"));

  r = NewClaimSandbox(Claim(env_override), Template("envVarsInjectionPolicy: Overrides"));
  ASSERT_TRUE(r.sandbox);
  EXPECT_EQ(env_of(*r.sandbox, 0), Json::parse(R"([{"name":"MODE","value":"claim"}])"));

  r = NewClaimSandbox(Claim(env_side), Template("envVarsInjectionPolicy: Allowed"));
  ASSERT_TRUE(r.sandbox);
  EXPECT_EQ(env_of(*r.sandbox, 1), Json::parse(R"([{"name":"EXTRA","value":"2"}])"));

  r = NewClaimSandbox(Claim(env_missing), Template("envVarsInjectionPolicy: Overrides"));
  ASSERT_TRUE(r.rejection);
  EXPECT_THAT(r.rejection->message, HasSubstr("spec.env[0].containerName: Not found"));
}

TEST(ExtensionsTest, ClaimVolumeClaimTemplatesFollowTheTemplatePolicy) {
  const std::string add =
      "  volumeClaimTemplates: [{metadata: {name: scratch}, spec: {accessModes: "
      "[ReadWriteOnce]}}]\n";
  const std::string replace =
      "  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce], "
      "resources: {requests: {storage: 6Gi}}}}]\n";
  auto vcts = [](const Object& sb) { return sb.body["spec"]["volumeClaimTemplates"]; };

  ColdSandbox r = NewClaimSandbox(Claim(add), Template());
  ASSERT_TRUE(r.rejection);
  EXPECT_EQ(r.rejection->reason, kReasonVolumeClaimTemplatesError);

  r = NewClaimSandbox(Claim(add), Template("volumeClaimTemplatesPolicy: Allowed"));
  ASSERT_TRUE(r.sandbox);
  EXPECT_EQ(vcts(*r.sandbox).size(), 2u);

  r = NewClaimSandbox(Claim(replace), Template("volumeClaimTemplatesPolicy: Allowed"));
  ASSERT_TRUE(r.rejection);
  EXPECT_THAT(r.rejection->message, HasSubstr("Duplicate value: \"data\""));

  r = NewClaimSandbox(Claim(replace), Template("volumeClaimTemplatesPolicy: Overrides"));
  ASSERT_TRUE(r.sandbox);
  ASSERT_EQ(vcts(*r.sandbox).size(), 1u);
  EXPECT_EQ(vcts(*r.sandbox)[0]["spec"]["resources"]["requests"]["storage"], "6Gi");
}

TEST(ExtensionsTest, ExpiryIsTheEarlierOfShutdownTimeAndTtlAfterFinished) {
  EXPECT_FALSE(ClaimExpiry(Claim()).has_value());
  Object c = Claim("  lifecycle: {shutdownTime: '2030-01-01T00:00:00Z'}\n");
  EXPECT_EQ(FormatRfc3339(*ClaimExpiry(c)), "2030-01-01T00:00:00Z");

  Object ttl = Claim(
      "  lifecycle: {shutdownTime: '2030-01-01T00:00:00Z', ttlSecondsAfterFinished: 60}\n");
  EXPECT_EQ(FormatRfc3339(*ClaimExpiry(ttl)), "2030-01-01T00:00:00Z");  // not finished yet
  ttl.body["status"]["conditions"] = Json::parse(
      R"([{"type":"Finished","status":"True","reason":"PodSucceeded","message":"",
           "lastTransitionTime":"2029-01-01T00:00:00Z"}])");
  EXPECT_EQ(FormatRfc3339(*ClaimExpiry(ttl)), "2029-01-01T00:01:00Z");
}

}  // namespace
}  // namespace sbx::api
