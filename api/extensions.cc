#include "api/extensions.h"

#include <algorithm>
#include <map>
#include <set>

#include "api/validation.h"

namespace sbx::api {

namespace {

constexpr char kCreatedByController[] = "controller";

const Json& Spec(const Object& o) { return Field(o.body, "spec"); }

std::string StringOr(const Json& obj, const char* key, const char* fallback) {
  std::string s = StringField(obj, key);
  return s.empty() ? fallback : s;
}

Json& ObjectMember(Json& j, const char* key) {
  Json& m = j[key];
  if (!m.is_object()) m = Json::object();
  return m;
}

void ApplySecureDefaults(const TemplatePolicies& p, Json* pod_spec) {
  if (!pod_spec->contains("automountServiceAccountToken")) {
    (*pod_spec)["automountServiceAccountToken"] = false;
  }
  if (p.network_policy_management == "Managed" && !p.has_network_policy &&
      !pod_spec->contains("dnsPolicy")) {
    (*pod_spec)["dnsPolicy"] = "None";
    (*pod_spec)["dnsConfig"] = {{"nameservers", {"8.8.8.8", "1.1.1.1"}}};
  }
}

// The blueprint with pod metadata removed: what decides whether a sandbox
// built earlier still matches the template.
Json HashedBlueprint(const Object& tmpl) {
  Json b = BlueprintOf(tmpl);
  if (b["podTemplate"].is_object()) b["podTemplate"].erase("metadata");
  if (b["volumeClaimTemplates"].is_array()) {
    Json vcts = Json::array();
    for (const auto& v : b["volumeClaimTemplates"]) {
      vcts.push_back({{"name", StringField(Field(v, "metadata"), "name")}, {"spec", Field(v, "spec")}});
    }
    b["volumeClaimTemplates"] = std::move(vcts);
  }
  return b;
}

bool InDomain(std::string_view domain, std::string_view allowed) {
  if (domain == allowed) return true;
  return domain.size() > allowed.size() && domain.ends_with(allowed) &&
         domain[domain.size() - allowed.size() - 1] == '.';
}

std::string DomainOf(std::string_view key) {
  auto slash = key.find('/');
  return slash == std::string_view::npos ? "" : std::string(key.substr(0, slash));
}

std::string Quote(std::string_view s) { return Json(std::string(s)).dump(); }

// Template pod metadata plus the claim's additions (validated separately).
void MergePodMetadata(const Object& claim, const Object& tmpl, Json* meta) {
  const Json& tmeta = Field(Field(Spec(tmpl), "podTemplate"), "metadata");
  const Json& extra = Field(Spec(claim), "additionalPodMetadata");
  for (const char* key : {"labels", "annotations"}) {
    Json& out = ObjectMember(*meta, key);
    for (const auto& [k, v] : StringMap(Field(tmeta, key))) out[k] = v;
    for (const auto& [k, v] : StringMap(Field(extra, key))) {
      if (!out.contains(k)) out[k] = v;
    }
  }
}

std::optional<ClaimRejection> MergeEnv(const Object& claim, const TemplatePolicies& p,
                                       Json* pod_spec) {
  const Json& env = Field(Spec(claim), "env");
  if (!env.is_array() || env.empty()) return std::nullopt;
  if (p.env_vars_injection == "Disallowed") {
    return ClaimRejection{kReasonEnvVarsInjectionRejected,
                          "spec.env: Forbidden: the template's envVarsInjectionPolicy is "
                          "Disallowed: claims may not set environment variables"};
  }
  Json& containers = (*pod_spec)["containers"];
  if (!containers.is_array() || containers.empty()) {
    return ClaimRejection{kReasonEnvVarsInjectionRejected,
                          "spec.env: Invalid value: the template has no containers"};
  }
  for (size_t i = 0; i < env.size(); ++i) {
    std::string path = "spec.env[" + std::to_string(i) + "]";
    std::string name = StringField(env[i], "name");
    std::string target = StringField(env[i], "containerName");
    Json* c = &containers[0];
    if (!target.empty()) {
      c = nullptr;
      for (auto& cand : containers) {
        if (StringField(cand, "name") == target) c = &cand;
      }
      if (c == nullptr) {
        return ClaimRejection{kReasonEnvVarsInjectionRejected,
                              path + ".containerName: Not found: " + Quote(target) +
                                  ": the template has no such container"};
      }
    }
    Json& cenv = (*c)["env"];
    if (!cenv.is_array()) cenv = Json::array();
    Json var = {{"name", name}, {"value", StringField(env[i], "value")}};
    auto existing = std::find_if(cenv.begin(), cenv.end(),
                                 [&](const Json& e) { return StringField(e, "name") == name; });
    if (p.env_vars_injection == "Allowed") {
      if (existing != cenv.end()) {
        return ClaimRejection{kReasonEnvVarsInjectionRejected,
                              path + ".name: Forbidden: " + Quote(name) + " is set by the " +
                                  "template and envVarsInjectionPolicy Allowed only adds new "
                                  "variables (Overrides may replace them)"};
      }
      if (Field(*c, "envFrom").is_array() && !Field(*c, "envFrom").empty()) {
        return ClaimRejection{kReasonEnvVarsInjectionRejected,
                              path + ": Forbidden: container " +
                                  Quote(StringField(*c, "name")) +
                                  " uses envFrom, so envVarsInjectionPolicy Allowed cannot "
                                  "tell whether " + Quote(name) + " is new"};
      }
      cenv.push_back(std::move(var));
    } else if (existing != cenv.end()) {
      *existing = std::move(var);
    } else {
      cenv.push_back(std::move(var));
    }
  }
  return std::nullopt;
}

std::optional<ClaimRejection> MergeVolumeClaimTemplates(const Object& claim,
                                                        const TemplatePolicies& p,
                                                        Json* blueprint) {
  const Json& extra = Field(Spec(claim), "volumeClaimTemplates");
  if (!extra.is_array() || extra.empty()) return std::nullopt;
  auto reject = [](std::string msg) {
    return ClaimRejection{kReasonVolumeClaimTemplatesError, std::move(msg)};
  };
  if (p.volume_claim_templates == "Disallowed") {
    return reject("spec.volumeClaimTemplates: Forbidden: the template's "
                  "volumeClaimTemplatesPolicy is Disallowed: claims may not add volumes");
  }
  Json& vcts = (*blueprint)["volumeClaimTemplates"];
  if (!vcts.is_array()) vcts = Json::array();
  std::set<std::string> seen;
  for (size_t i = 0; i < extra.size(); ++i) {
    std::string path = "spec.volumeClaimTemplates[" + std::to_string(i) + "].metadata.name";
    std::string name = StringField(Field(extra[i], "metadata"), "name");
    if (name.empty()) return reject(path + ": Required value");
    if (!seen.insert(name).second) return reject(path + ": Duplicate value: " + Quote(name));
    auto existing = std::find_if(vcts.begin(), vcts.end(), [&](const Json& v) {
      return StringField(Field(v, "metadata"), "name") == name;
    });
    if (existing == vcts.end()) {
      vcts.push_back(extra[i]);
    } else if (p.volume_claim_templates == "Overrides") {
      *existing = extra[i];
    } else {
      return reject(path + ": Duplicate value: " + Quote(name) +
                    ": the template defines it and volumeClaimTemplatesPolicy Allowed only "
                    "adds volumes (Overrides may replace them)");
    }
  }
  return std::nullopt;
}

void SetClaimLabels(const Object& claim, const Object& tmpl, Json* pod_meta, ObjectMeta* meta) {
  std::string ref_hash = NameHash(tmpl.metadata.name);
  meta->labels[kClaimUidLabel] = claim.metadata.uid;
  meta->labels[kTemplateRefHashLabel] = ref_hash;
  meta->labels[kCreatedByLabel] = kCreatedByController;
  Json& labels = ObjectMember(*pod_meta, "labels");
  labels[kClaimUidLabel] = claim.metadata.uid;
  labels[kTemplateRefHashLabel] = ref_hash;
}

}  // namespace

TemplatePolicies PoliciesOf(const Object& tmpl) {
  const Json& spec = Spec(tmpl);
  TemplatePolicies p;
  p.env_vars_injection = StringOr(spec, "envVarsInjectionPolicy", "Disallowed");
  p.volume_claim_templates = StringOr(spec, "volumeClaimTemplatesPolicy", "Disallowed");
  p.network_policy_management = StringOr(spec, "networkPolicyManagement", "Managed");
  p.has_network_policy = Field(spec, "networkPolicy").is_object();
  return p;
}

WarmPoolSpec WarmPoolSpecOf(const Object& pool) {
  const Json& spec = Spec(pool);
  WarmPoolSpec s;
  if (const Json& r = Field(spec, "replicas"); r.is_number_integer()) {
    s.replicas = r.get<int32_t>();
  }
  s.template_name = StringField(Field(spec, "sandboxTemplateRef"), "name");
  s.update_strategy = StringOr(Field(spec, "updateStrategy"), "type", "OnReplenish");
  return s;
}

Json BlueprintOf(const Object& tmpl) {
  const Json& spec = Spec(tmpl);
  Json b = Json::object();
  b["podTemplate"] = Field(spec, "podTemplate");
  if (!b["podTemplate"].is_object()) b["podTemplate"] = Json::object();
  Json& pod_spec = ObjectMember(b["podTemplate"], "spec");
  ApplySecureDefaults(PoliciesOf(tmpl), &pod_spec);
  if (const Json& v = Field(spec, "volumeClaimTemplates"); v.is_array()) {
    b["volumeClaimTemplates"] = v;
  }
  if (const Json& s = Field(spec, "service"); s.is_boolean()) b["service"] = s;
  return b;
}

std::string BlueprintHash(const Object& tmpl) { return NameHash(HashedBlueprint(tmpl).dump()); }

std::string PodTemplateHash(const Object& tmpl) {
  return NameHash(Field(Spec(tmpl), "podTemplate").dump());
}

OwnerReference ControllerRefTo(const Object& owner) {
  OwnerReference r;
  r.api_version = owner.api_version;
  r.kind = owner.kind;
  r.name = owner.metadata.name;
  r.uid = owner.metadata.uid;
  r.controller = true;
  r.block_owner_deletion = true;
  return r;
}

const OwnerReference* ControllerOf(const ObjectMeta& meta) {
  for (const auto& r : meta.owner_references) {
    if (r.controller) return &r;
  }
  return nullptr;
}

Object NewWarmPoolMember(const Object& pool, const Object& tmpl) {
  Object sb;
  sb.api_version = kSandboxApiVersion;
  sb.kind = kSandboxKind;
  sb.metadata.generate_name = pool.metadata.name + "-";
  sb.metadata.namespace_ = pool.metadata.namespace_;
  std::string pool_hash = NameHash(pool.metadata.name);
  std::string ref_hash = NameHash(tmpl.metadata.name);
  std::string tmpl_hash = BlueprintHash(tmpl);
  std::string pod_hash = PodTemplateHash(tmpl);
  sb.metadata.labels = {{kWarmPoolSandboxLabel, pool_hash},
                        {kTemplateRefHashLabel, ref_hash},
                        {kTemplateHashLabel, tmpl_hash},
                        {kPodTemplateHashLabel, pod_hash},
                        {kLaunchTypeLabel, kLaunchTypeWarm},
                        {kCreatedByLabel, kCreatedByController}};
  sb.metadata.annotations = {{kTemplateRefAnnotation, tmpl.metadata.name}};
  sb.metadata.owner_references = {ControllerRefTo(pool)};

  Json spec = BlueprintOf(tmpl);
  Json& meta = ObjectMember(spec["podTemplate"], "metadata");
  Json& labels = ObjectMember(meta, "labels");
  labels[kWarmPoolSandboxLabel] = pool_hash;
  labels[kTemplateRefHashLabel] = ref_hash;
  labels[kTemplateHashLabel] = tmpl_hash;
  labels[kPodTemplateHashLabel] = pod_hash;
  Json& annotations = ObjectMember(meta, "annotations");
  if (!annotations.contains(kSafeToEvictAnnotation)) annotations[kSafeToEvictAnnotation] = "true";
  sb.body["spec"] = std::move(spec);
  return sb;
}

std::optional<ClaimRejection> ValidateAdditionalPodMetadata(
    const Object& claim, const Object& tmpl, const std::vector<std::string>& allowed_label_domains) {
  const Json& extra = Field(Spec(claim), "additionalPodMetadata");
  const Json& tmeta = Field(Field(Spec(tmpl), "podTemplate"), "metadata");
  auto reject = [](std::string msg) {
    return ClaimRejection{kReasonInvalidMetadata, std::move(msg)};
  };
  const std::string base = "spec.additionalPodMetadata.";
  for (const auto& [k, v] : StringMap(Field(extra, "labels"))) {
    std::string path = base + "labels[" + Quote(k) + "]";
    std::vector<std::string> errs = IsQualifiedName(k);
    if (!errs.empty()) return reject(path + ": Invalid value: " + Quote(k) + ": " + errs[0]);
    std::string domain = DomainOf(k);
    bool allowed = !domain.empty() &&
                   std::any_of(allowed_label_domains.begin(), allowed_label_domains.end(),
                               [&](const std::string& d) { return InDomain(domain, d); });
    if (!allowed) {
      std::string list;
      for (const auto& d : allowed_label_domains) list += (list.empty() ? "" : ", ") + d;
      return reject(path + ": Forbidden: label keys need a domain prefix from the allowed " +
                    "label domains (" + list + ")");
    }
    errs = IsValidLabelValue(v);
    if (!errs.empty()) return reject(path + ": Invalid value: " + Quote(v) + ": " + errs[0]);
  }
  for (const auto& [k, v] : StringMap(Field(extra, "annotations"))) {
    std::string path = base + "annotations[" + Quote(k) + "]";
    std::vector<std::string> errs = IsQualifiedName(k);
    if (!errs.empty()) return reject(path + ": Invalid value: " + Quote(k) + ": " + errs[0]);
    std::string domain = DomainOf(k);
    if (k != kSafeToEvictAnnotation &&
        (InDomain(domain, "kubernetes.io") || InDomain(domain, "k8s.io") ||
         InDomain(domain, "agents.x-k8s.io"))) {
      return reject(path + ": Forbidden: annotations in the " + Quote(domain) +
                    " domain are reserved");
    }
  }
  for (const char* key : {"labels", "annotations"}) {
    auto theirs = StringMap(Field(tmeta, key));
    for (const auto& [k, v] : StringMap(Field(extra, key))) {
      auto it = theirs.find(k);
      if (it != theirs.end() && it->second != v) {
        return reject(base + key + "[" + Quote(k) + "]: Invalid value: " + Quote(v) +
                      ": metadata override conflict: the template sets it to " +
                      Quote(it->second));
      }
    }
  }
  return std::nullopt;
}

bool ClaimNeedsColdStart(const Object& claim) {
  const Json& spec = Spec(claim);
  const Json& env = Field(spec, "env");
  const Json& vcts = Field(spec, "volumeClaimTemplates");
  return (env.is_array() && !env.empty()) || (vcts.is_array() && !vcts.empty());
}

ColdSandbox NewClaimSandbox(const Object& claim, const Object& tmpl) {
  TemplatePolicies p = PoliciesOf(tmpl);
  Json spec = BlueprintOf(tmpl);
  ColdSandbox out;
  if (auto r = MergeEnv(claim, p, &ObjectMember(spec["podTemplate"], "spec"))) {
    out.rejection = std::move(r);
    return out;
  }
  if (auto r = MergeVolumeClaimTemplates(claim, p, &spec)) {
    out.rejection = std::move(r);
    return out;
  }
  Object sb;
  sb.api_version = kSandboxApiVersion;
  sb.kind = kSandboxKind;
  sb.metadata.name = claim.metadata.name;
  sb.metadata.namespace_ = claim.metadata.namespace_;
  sb.metadata.annotations = {{kTemplateRefAnnotation, tmpl.metadata.name}};
  sb.metadata.labels[kLaunchTypeLabel] = kLaunchTypeCold;
  sb.metadata.owner_references = {ControllerRefTo(claim)};
  Json meta = Json::object();
  MergePodMetadata(claim, tmpl, &meta);
  SetClaimLabels(claim, tmpl, &meta, &sb.metadata);
  spec["podTemplate"]["metadata"] = std::move(meta);
  sb.body["spec"] = std::move(spec);
  out.sandbox = std::move(sb);
  return out;
}

void AdoptWarmMember(const Object& claim, const Object& tmpl, Object* sandbox) {
  auto& labels = sandbox->metadata.labels;
  for (const char* k : {kWarmPoolSandboxLabel, kTemplateHashLabel, kPodTemplateHashLabel}) {
    labels.erase(k);
  }
  labels[kLaunchTypeLabel] = kLaunchTypeWarm;
  sandbox->metadata.annotations.erase(kSafeToEvictAnnotation);
  sandbox->metadata.annotations[kPodNameAnnotation] = sandbox->metadata.name;
  sandbox->metadata.owner_references = {ControllerRefTo(claim)};
  SyncClaimPodMetadata(claim, tmpl, sandbox);
}

bool SyncClaimPodMetadata(const Object& claim, const Object& tmpl, Object* sandbox) {
  Json meta = Json::object();
  MergePodMetadata(claim, tmpl, &meta);
  ObjectMeta before = sandbox->metadata;
  SetClaimLabels(claim, tmpl, &meta, &sandbox->metadata);
  Json& spec = sandbox->body["spec"];
  if (!spec.is_object()) spec = Json::object();
  Json& pod_template = ObjectMember(spec, "podTemplate");
  // Keys a pod template had that neither the template nor the claim set any
  // more (pool hash labels, safe-to-evict) go, as upstream rebuilds it.
  if (pod_template["metadata"] == meta && before == sandbox->metadata) return false;
  pod_template["metadata"] = std::move(meta);
  return true;
}

std::optional<TimePoint> ClaimExpiry(const Object& claim) {
  const Json& lifecycle = Field(Spec(claim), "lifecycle");
  std::optional<TimePoint> at;
  if (std::string s = StringField(lifecycle, "shutdownTime"); !s.empty()) {
    if (auto t = ParseRfc3339(s); t.ok()) at = *t;
  }
  const Json& ttl = Field(lifecycle, "ttlSecondsAfterFinished");
  if (ttl.is_number_integer()) {
    const Json& conds = Field(Field(claim.body, "status"), "conditions");
    if (conds.is_array()) {
      for (const auto& c : conds) {
        if (StringField(c, "type") != kConditionFinished || StringField(c, "status") != "True") {
          continue;
        }
        auto t = ParseRfc3339(StringField(c, "lastTransitionTime"));
        if (!t.ok()) continue;
        TimePoint done = *t + std::chrono::seconds(ttl.get<int64_t>());
        if (!at || done < *at) at = done;
      }
    }
  }
  return at;
}

std::optional<Condition> ConditionOf(const Object& obj, std::string_view type) {
  const Json& conds = Field(Field(obj.body, "status"), "conditions");
  if (!conds.is_array()) return std::nullopt;
  for (const auto& c : conds) {
    if (StringField(c, "type") != type) continue;
    auto parsed = ConditionFromJson(c, "status.conditions");
    if (parsed.ok()) return *parsed;
  }
  return std::nullopt;
}

std::optional<Condition> ReadyConditionOf(const Object& obj) {
  return ConditionOf(obj, kConditionReady);
}

std::vector<Condition> ConditionsOf(const Object& obj) {
  std::vector<Condition> out;
  const Json& conds = Field(Field(obj.body, "status"), "conditions");
  if (!conds.is_array()) return out;
  for (const auto& c : conds) {
    if (auto parsed = ConditionFromJson(c, "status.conditions"); parsed.ok()) {
      out.push_back(*parsed);
    }
  }
  return out;
}

}  // namespace sbx::api
