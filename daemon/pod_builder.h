// PodBuilder turns a Sandbox's pod template into what the runtime launches:
// the pod (hostname, cgroup limits, volumes) and one bundle per container
// (image, command, env, user, security, mounts).
//
// Errors carry the Kubernetes waiting reason a container shows while it
// cannot be created (ErrImageNeverPull, CreateContainerConfigError,
// CreateContainerError for a local failure to write its files) or, for
// pod-level problems, ContainerCreating with a FailedMount event.
//
// Thread-safe (reads the store; the volume manager serialises itself).
#ifndef SBX_DAEMON_POD_BUILDER_H_
#define SBX_DAEMON_POD_BUILDER_H_

#include <string>
#include <vector>

#include "api/sandbox.h"
#include "common/status.h"
#include "daemon/dns.h"
#include "daemon/pod_resources.h"
#include "daemon/runtime.h"
#include "daemon/security_context.h"
#include "daemon/volumes.h"
#include "oci/image_store.h"
#include "store/store.h"

namespace sbx::daemon {

struct PodSettings {
  ResourceDefaults resources;
  SecuritySettings security;
  // The static sbx-pause, copied into every container with a seccomp
  // profile to load that profile in commands exec'd into it.
  std::string pause_binary;
  // "none" | "sandbox": a pod's network unless its template's annotation
  // kNetworkAnnotation says otherwise.
  std::string network = "none";
  // Where a hostPort is published when its hostIP is empty (sbxd
  // --host-port-address).
  std::string host_port_address = "127.0.0.1";
  // The resolv.conf a networked pod starts from (dns.h PodResolvConf):
  // sbxd's resolver (ClusterFirst) and the upstream resolvers (Default).
  // Without dns, pods get the daemon's file as it is.
  bool dns = false;
  ResolvConf cluster_dns, upstream_dns;
};

// podTemplate.metadata.annotations key choosing a sandbox's network mode.
inline constexpr char kNetworkAnnotation[] = "sbx.dev/network";
// podTemplate.metadata.annotations key: "true" keeps runsc's debug logs of
// the sandbox (RuntimeOptions::runsc_debug_log_dir) even when sbxd's setting
// is off.
inline constexpr char kRunscDebugAnnotation[] = "sbx.dev/runsc-debug";

// runsc applies a container's seccomp profile (linux.seccomp) to the
// container's processes but not to those started by `runsc exec`. So a
// container with a profile gets, bind-mounted read-only at kExecDir from
// <container_dir>/sbx, a copy of sbx-pause ("exec") and the profile's BPF
// program ("seccomp.bpf"); commands exec'd into it (sbx exec, exec probes)
// run as SeccompExecArgv(command), which loads the program and then execs
// the command.
inline constexpr char kExecDir[] = "/.sbx";

// ["/.sbx/exec", "--seccomp-exec", "/.sbx/seccomp.bpf", "--", command...]
std::vector<std::string> SeccompExecArgv(const std::vector<std::string>& command);

// A pod template container in start order.
struct PodContainer {
  enum class Kind { kInit, kSidecar, kRegular };
  Kind kind = Kind::kRegular;
  std::string name;
  std::string path;  // "spec.podTemplate.spec.containers[0]"
  const api::Container* spec = nullptr;
};

// initContainers (init or sidecar by their restartPolicy) then containers.
std::vector<PodContainer> PodContainers(const api::PodSpec& spec);

struct BuildFailure {
  std::string reason;  // Kubernetes waiting reason
  Status status;
};

class PodBuilder {
 public:
  PodBuilder(store::Store& store, oci::ImageStore& images, VolumeManager& volumes,
             PodSettings settings);

  // Prepares the pod's volumes and computes its launch. `sandbox_dir` is the
  // runtime's directory for the sandbox.
  Result<PodLaunch> BuildPod(const api::Sandbox& sb, const std::string& sandbox_dir,
                             PodVolumes* volumes, BuildFailure* failure);

  // Computes one container's launch. `container_dir` is the runtime's
  // directory for the container (SandboxRuntime::ContainerBundleDir), where
  // the exec support files of a container with a seccomp profile are
  // written (kExecDir).
  // `warnings` receives what the user should hear about a container that
  // still starts (envFrom keys skipped as not being variable names).
  Result<ContainerLaunch> BuildContainer(const api::Sandbox& sb, const PodVolumes& volumes,
                                         const PodContainer& c, const std::string& container_dir,
                                         BuildFailure* failure,
                                         std::vector<std::string>* warnings = nullptr);

 private:
  ObjectGetter Getter(const std::string& ns) const;
  // Writes <container_dir>/sbx (kExecDir) for a container with this seccomp
  // profile and returns its mount.
  Result<oci::BundleMount> WriteExecSupport(const api::Json& seccomp,
                                            const std::string& container_dir,
                                            const std::string& source) const;

  store::Store& store_;
  oci::ImageStore& images_;
  VolumeManager& volumes_;
  PodSettings settings_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_POD_BUILDER_H_
