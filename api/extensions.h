// The extension objects of agent-sandbox (extensions.agents.x-k8s.io/v1beta1):
// SandboxTemplate, SandboxWarmPool and SandboxClaim, and the pure rules that
// turn them into Sandboxes (reference §2.3-2.6, §3.2-3.4):
//  - a template's blueprint, its secure defaults and its staleness hash;
//  - a warm pool member built from a template;
//  - a claim's cold Sandbox (env and volumeClaimTemplates merged by the
//    template's policies) and the rewrite of a warm member on adoption;
//  - the validation of a claim's additionalPodMetadata;
//  - a claim's expiry time.
//
// Everything here works on decoded (schema-checked, defaulted) objects and
// has no side effects; the controllers in daemon/ call it.
#ifndef SBX_API_EXTENSIONS_H_
#define SBX_API_EXTENSIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"
#include "api/sandbox.h"
#include "common/time.h"

namespace sbx::api {

inline constexpr char kExtensionsGroup[] = "extensions.agents.x-k8s.io";
inline constexpr char kExtensionsApiVersion[] = "extensions.agents.x-k8s.io/v1beta1";
inline constexpr char kTemplateKind[] = "SandboxTemplate";
inline constexpr char kWarmPoolKind[] = "SandboxWarmPool";
inline constexpr char kClaimKind[] = "SandboxClaim";

// Labels and annotations set by the controllers (reference §2.6).
inline constexpr char kWarmPoolSandboxLabel[] = "agents.x-k8s.io/warm-pool-sandbox";
inline constexpr char kTemplateRefHashLabel[] = "agents.x-k8s.io/sandbox-template-ref-hash";
inline constexpr char kTemplateHashLabel[] = "agents.x-k8s.io/sandbox-template-hash";
inline constexpr char kPodTemplateHashLabel[] = "agents.x-k8s.io/sandbox-pod-template-hash";
inline constexpr char kTemplateRefAnnotation[] = "agents.x-k8s.io/sandbox-template-ref";
inline constexpr char kLaunchTypeLabel[] = "agents.x-k8s.io/launch-type";
inline constexpr char kCreatedByLabel[] = "agents.x-k8s.io/created-by";
inline constexpr char kClaimUidLabel[] = "agents.x-k8s.io/claim-uid";
inline constexpr char kSandboxNameAnnotation[] = "agents.x-k8s.io/sandbox-name";
inline constexpr char kSafeToEvictAnnotation[] = "cluster-autoscaler.kubernetes.io/safe-to-evict";
inline constexpr char kLaunchTypeWarm[] = "warm";
inline constexpr char kLaunchTypeCold[] = "cold";

// SandboxClaim Ready reasons (reference §2.7).
inline constexpr char kReasonTemplateNotFound[] = "TemplateNotFound";
inline constexpr char kReasonWarmPoolNotFound[] = "WarmPoolNotFound";
inline constexpr char kReasonAdoptionConflict[] = "AdoptionConflict";
inline constexpr char kReasonSandboxCreatePending[] = "SandboxCreatePending";
inline constexpr char kReasonInvalidMetadata[] = "InvalidMetadata";
inline constexpr char kReasonEnvVarsInjectionRejected[] = "EnvVarsInjectionRejected";
inline constexpr char kReasonVolumeClaimTemplatesError[] = "VolumeClaimTemplatesError";
inline constexpr char kReasonClaimExpired[] = "ClaimExpired";
inline constexpr char kReasonSandboxMissing[] = "SandboxMissing";
inline constexpr char kReasonSandboxNotReady[] = "SandboxNotReady";

// Policies of a SandboxTemplate, with upstream's defaults.
struct TemplatePolicies {
  std::string env_vars_injection = "Disallowed";  // Allowed | Overrides | Disallowed
  std::string volume_claim_templates = "Disallowed";
  std::string network_policy_management = "Managed";  // Managed | Unmanaged
  bool has_network_policy = false;
};
TemplatePolicies PoliciesOf(const Object& tmpl);

struct WarmPoolSpec {
  int32_t replicas = 1;
  std::string template_name;
  std::string update_strategy = "OnReplenish";  // Recreate | OnReplenish
};
WarmPoolSpec WarmPoolSpecOf(const Object& pool);

// The Sandbox spec a template describes (podTemplate, volumeClaimTemplates,
// service) with the secure defaults claim- and pool-built sandboxes get:
// automountServiceAccountToken false unless set; under a Managed network
// policy with no custom policy and no dnsPolicy, public resolvers only
// (dnsPolicy None, nameservers 8.8.8.8 and 1.1.1.1), as upstream.
Json BlueprintOf(const Object& tmpl);

// NameHash of the blueprint without pod metadata: equal for templates whose
// sandboxes would run the same pod, so a labels-only edit is not stale.
std::string BlueprintHash(const Object& tmpl);
// The deprecated hash of the podTemplate alone (upstream still sets it).
std::string PodTemplateHash(const Object& tmpl);

// The controller reference `owner` puts on objects it creates.
OwnerReference ControllerRefTo(const Object& owner);
// The controller owner reference of `meta`, or nullptr.
const OwnerReference* ControllerOf(const ObjectMeta& meta);

// A new warm member of `pool` built from `tmpl`: generateName "<pool>-",
// upstream's labels and annotations, the blueprint as spec, controller
// reference to the pool.
Object NewWarmPoolMember(const Object& pool, const Object& tmpl);

// A claim refused by its template's policies: the Ready reason and a message
// naming the field.
struct ClaimRejection {
  std::string reason;
  std::string message;
};

// Checks spec.additionalPodMetadata of `claim` as upstream: label keys need
// a domain prefix from `allowed_label_domains` (or a subdomain of one);
// annotations may not use the kubernetes.io, k8s.io or agents.x-k8s.io
// domains (except the autoscaler's safe-to-evict); no key may change a value
// the template sets.
std::optional<ClaimRejection> ValidateAdditionalPodMetadata(
    const Object& claim, const Object& tmpl, const std::vector<std::string>& allowed_label_domains);

// Whether the claim can only be served by a cold start (spec.env or
// spec.volumeClaimTemplates set).
bool ClaimNeedsColdStart(const Object& claim);

// The Sandbox a cold start creates for `claim` (named like the claim, owned
// by it), with the claim's env and volumeClaimTemplates merged as the
// template's policies allow; a rejection when they do not.
struct ColdSandbox {
  std::optional<Object> sandbox;
  std::optional<ClaimRejection> rejection;
};
ColdSandbox NewClaimSandbox(const Object& claim, const Object& tmpl);

// Rewrites a warm member for its new owner `claim` (reference §3.4 step 5b):
// pool labels dropped, claim-uid and launch-type=warm set, safe-to-evict
// removed, the claim as the only controller, pod metadata from template and
// claim. The spec's pod is otherwise untouched (the pod keeps running).
void AdoptWarmMember(const Object& claim, const Object& tmpl, Object* sandbox);

// The podTemplate.metadata a claim's Sandbox should carry: the template's
// labels and annotations, the claim's additionalPodMetadata and the
// controller labels. Applies it to `sandbox`; returns whether it changed.
bool SyncClaimPodMetadata(const Object& claim, const Object& tmpl, Object* sandbox);

// When `claim` expires: the earlier of spec.lifecycle.shutdownTime and the
// mirrored Finished condition's lastTransitionTime plus
// ttlSecondsAfterFinished. nullopt: never.
std::optional<TimePoint> ClaimExpiry(const Object& claim);

// Conditions of an object's status.conditions (malformed entries skipped).
std::vector<Condition> ConditionsOf(const Object& obj);
// The condition of `type`, or nullopt.
std::optional<Condition> ConditionOf(const Object& obj, std::string_view type);
std::optional<Condition> ReadyConditionOf(const Object& obj);

}  // namespace sbx::api

#endif  // SBX_API_EXTENSIONS_H_
