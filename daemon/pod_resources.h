// Kubernetes resource semantics for one sandbox: container requests and
// limits, the pod-level cgroup limits runsc enforces, downward-API
// resourceFieldRef values, and OOM kills read back from the cgroup.
//
// gVisor enforces limits for the whole sandbox only (runsc applies the root
// container's linux.resources to the sandbox cgroup; sub-container cgroups
// stay empty), so the limits that matter are the pod-level ones kubelet
// would give the pod cgroup: PodResources computes them.
//
// Thread safety: pure functions, except that ResourceFieldRefValue (3-arg)
// and HostAllocatable read /proc and the root file system, and
// CgroupOomKills reads the cgroup tree.
#ifndef SBX_DAEMON_POD_RESOURCES_H_
#define SBX_DAEMON_POD_RESOURCES_H_

#include <cstdint>
#include <string>

#include "api/object.h"
#include "common/status.h"
#include "oci/bundle.h"

namespace sbx::daemon {

// Daemon settings applied when a pod does not declare the resource for
// every container; 0 = no limit.
struct ResourceDefaults {
  int64_t memory_limit = 0;     // bytes
  int64_t cpu_limit_milli = 0;  // millicores
  int64_t pids_limit = 0;
};

// One container's resources; 0 = unset. A request left out while the limit
// is set equals the limit (Kubernetes defaulting).
struct ContainerResources {
  int64_t cpu_request_milli = 0, cpu_limit_milli = 0;
  int64_t memory_request = 0, memory_limit = 0;        // bytes
  int64_t ephemeral_request = 0, ephemeral_limit = 0;  // bytes
  bool operator==(const ContainerResources&) const = default;
};

// Reads container["resources"] (requests/limits of cpu, memory and
// ephemeral-storage; quantities as strings or numbers). Errors are Invalid
// and name the field under container_path, as Kubernetes prints them:
//   <path>.resources.limits.memory: Invalid value: "2Gx": quantities must match ...
//   <path>.resources.limits[nvidia.com/gpu]: Unsupported value: ...
//   <path>.resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1
Result<ContainerResources> ParseContainerResources(const api::Json& container,
                                                   const std::string& container_path);

// The sandbox (pod) cgroup as kubelet sizes a pod cgroup. Per resource:
//   pod = max(sum(containers) + sum(restartable init containers),
//             max over init containers i of (i + restartable init containers before i))
// (the same as kubelet's PodLimits/PodRequests, which reduces to
// max(sum incl. sidecars, max plain init) without sidecars declared after
// an init container). A limit is used only when every container, init
// containers included, declares it; otherwise the daemon default applies
// (0 = none).
//   memory_limit = pod memory limit
//   cpu_quota    = MilliCPUToQuota(pod cpu limit): milli * 100, at least 1000,
//                  over cpu_period 100000
//   cpu_shares   = MilliCPUToShares(pod cpu request): milli * 1024 / 1000
//                  clamped to [2, 262144]; left unset (0) when no container
//                  requests cpu, since there is no QoS hierarchy to sit in
//   pids_limit   = defaults.pids_limit
// memory_reservation stays 0: kubelet sets no memory soft limit on a pod.
// Errors name the field under pod_spec_path.
Result<oci::BundleResources> PodResources(
    const api::Json& pod_spec, const ResourceDefaults& defaults,
    const std::string& pod_spec_path = "spec.podTemplate.spec");

// What an unset limit resolves to for the downward API (kubelet uses the
// node's allocatable resources).
struct NodeAllocatable {
  int64_t cpu_milli = 0;          // online CPUs * 1000
  int64_t memory = 0;             // MemTotal of /proc/meminfo, bytes
  int64_t ephemeral_storage = 0;  // size of the file system holding "/", bytes
};
Result<NodeAllocatable> HostAllocatable();

// The value of a downward-API resourceFieldRef ({"resource": ...,
// "divisor": ...}; containerName is the caller's business: pass the
// container it names). resource is one of limits.cpu, limits.memory,
// limits.ephemeral-storage, requests.cpu, requests.memory,
// requests.ephemeral-storage. divisor defaults to 1; cpu accepts 1m and 1,
// memory and ephemeral-storage 1, 1k…1E, 1Ki…1Ei. The value is
// ceil(quantity / divisor) as a decimal string (cpu "1" for 250m, like
// kubelet). An unset limit is the node's allocatable amount; an unset
// request is 0. field_path names the ref in errors
// ("spec.podTemplate.spec.containers[0].env[2].valueFrom.resourceFieldRef").
Result<std::string> ResourceFieldRefValue(const api::Json& container,
                                          const api::Json& resource_field_ref,
                                          const std::string& field_path);
Result<std::string> ResourceFieldRefValue(const api::Json& container,
                                          const api::Json& resource_field_ref,
                                          const std::string& field_path,
                                          const NodeAllocatable& node);

// OOM kills counted in the memory cgroup of a sandbox (cgroups_path as in
// linux.cgroupsPath, e.g. "/sbx/sbx-abc"). cgroup v1 (a "memory" hierarchy
// under cgroup_root): `oom_kill N` of <root>/memory<path>/memory.oom_control;
// v2: `oom_kill N` of <root><path>/memory.events. runsc removes the cgroup
// on `runsc delete`, so read it before deleting. NotFound when the cgroup
// does not exist; FailedPrecondition when it has no such file (the memory
// controller is not enabled for it); Internal when the kernel does not
// count OOM kills (v1 before Linux 4.13).
Result<int64_t> CgroupOomKills(const std::string& cgroups_path,
                               const std::string& cgroup_root = "/sys/fs/cgroup");

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_POD_RESOURCES_H_
