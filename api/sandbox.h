// Typed view of a Sandbox (agents.x-k8s.io/v1beta1), converting to and from
// the generic Object in one place.
//
// The view is faithful: FromObject followed by ToObject gives back the same
// object, including pod spec and container fields that have no typed member
// here (kept in the `raw` members, which typed members override on output).
//
// Values; thread-compatible.
#ifndef SBX_API_SANDBOX_H_
#define SBX_API_SANDBOX_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "common/time.h"

namespace sbx::api {

inline constexpr char kSandboxApiVersion[] = "agents.x-k8s.io/v1beta1";
inline constexpr char kSandboxKind[] = "Sandbox";

// Condition types (upstream controllers/sandbox_controller.go).
inline constexpr char kConditionReady[] = "Ready";
inline constexpr char kConditionSuspended[] = "Suspended";
inline constexpr char kConditionFinished[] = "Finished";
inline constexpr char kConditionPodScheduled[] = "PodScheduled";

// Condition reasons.
inline constexpr char kReasonDependenciesReady[] = "DependenciesReady";
inline constexpr char kReasonDependenciesNotReady[] = "DependenciesNotReady";
inline constexpr char kReasonSandboxSuspended[] = "SandboxSuspended";
inline constexpr char kReasonPodSucceeded[] = "PodSucceeded";
inline constexpr char kReasonPodFailed[] = "PodFailed";
inline constexpr char kReasonSandboxExpired[] = "SandboxExpired";
inline constexpr char kReasonMultiplePods[] = "MultiplePods";
inline constexpr char kReasonReconcilerError[] = "ReconcilerError";
inline constexpr char kReasonPodTerminated[] = "PodTerminated";
inline constexpr char kReasonPodTerminating[] = "PodTerminating";
inline constexpr char kReasonPodNotOwned[] = "PodNotOwned";
inline constexpr char kReasonNotSuspended[] = "NotSuspended";
inline constexpr char kReasonPodStateUnknown[] = "PodStateUnknown";

inline constexpr char kConditionTrue[] = "True";
inline constexpr char kConditionFalse[] = "False";
inline constexpr char kConditionUnknown[] = "Unknown";

// spec values.
inline constexpr char kOperatingModeRunning[] = "Running";
inline constexpr char kOperatingModeSuspended[] = "Suspended";
inline constexpr char kShutdownPolicyDelete[] = "Delete";
inline constexpr char kShutdownPolicyRetain[] = "Retain";

// Labels and annotations upstream sets (reference §2.6).
inline constexpr char kSandboxNameHashLabel[] = "agents.x-k8s.io/sandbox-name-hash";
inline constexpr char kPodNameAnnotation[] = "agents.x-k8s.io/pod-name";

// FNV-1a 32-bit of `name` as 8 lowercase hex digits (upstream NameHash).
std::string NameHash(std::string_view name);

struct KeySelector {
  std::string name, key;
  bool optional = false;
  bool operator==(const KeySelector&) const = default;
};

struct EnvVarSource {
  std::optional<KeySelector> secret_key_ref, config_map_key_ref;
  Json field_ref, resource_field_ref;  // null when unset
  bool operator==(const EnvVarSource&) const = default;
};

struct EnvVar {
  std::string name;
  std::optional<std::string> value;
  std::optional<EnvVarSource> value_from;
  bool operator==(const EnvVar&) const = default;
};

struct Container {
  std::string name, image, working_dir, image_pull_policy;
  std::vector<std::string> command, args;
  std::vector<EnvVar> env;
  bool tty = false, stdin = false;
  Json raw = Json::object();  // the full container JSON
};

struct PodSpec {
  std::vector<Container> containers, init_containers;
  std::string restart_policy;  // "" means Always, as in Kubernetes
  std::string runtime_class_name;
  std::string hostname;
  Json raw = Json::object();  // the full pod spec JSON
};

struct PodTemplate {
  std::map<std::string, std::string> labels, annotations;
  PodSpec spec;
  Json raw_metadata;  // podTemplate.metadata as given; null when absent
};

struct Condition {
  std::string type, status, reason, message;
  int64_t observed_generation = 0;
  TimePoint last_transition_time;
  bool operator==(const Condition&) const = default;
};

struct SandboxSpec {
  PodTemplate pod_template;
  Json volume_claim_templates;  // null when absent
  std::optional<bool> service;
  std::optional<TimePoint> shutdown_time;
  std::string shutdown_policy;  // "Delete" | "Retain" (defaulted by the schema)
  std::string operating_mode;   // "Running" | "Suspended" (defaulted by the schema)
};

struct SandboxStatus {
  std::string service_fqdn, service, selector, node_name;
  std::vector<std::string> pod_ips;
  std::vector<Condition> conditions;
  // sbx extension: Kubernetes ContainerStatus objects, as a Pod's status has
  // them (containerStatuses, initContainerStatuses incl. sidecars).
  Json container_statuses = Json::array();
  Json init_container_statuses = Json::array();
};

struct Sandbox {
  ObjectMeta metadata;
  SandboxSpec spec;
  SandboxStatus status;

  // The object must be a decoded (schema-checked) v1beta1 Sandbox; anything
  // else is InvalidArgument naming the field.
  static Result<Sandbox> FromObject(const Object& obj);
  Object ToObject() const;
};

// Condition list helpers with the semantics of k8s.io/apimachinery/pkg/api/meta.
//
// Adds or updates the condition of c.type. lastTransitionTime changes only
// when the status changes (to c.last_transition_time if set, else `now`).
// Returns whether anything changed.
bool SetCondition(std::vector<Condition>* conditions, Condition c, TimePoint now);
const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type);
// Returns whether a condition was removed.
bool RemoveCondition(std::vector<Condition>* conditions, std::string_view type);

Json ConditionToJson(const Condition& c);
Result<Condition> ConditionFromJson(const Json& j, const std::string& path);

}  // namespace sbx::api

#endif  // SBX_API_SANDBOX_H_
