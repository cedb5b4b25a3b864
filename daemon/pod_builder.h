// PodBuilder turns a Sandbox's pod template into what the runtime launches:
// the pod (hostname, cgroup limits, volumes) and one bundle per container
// (image, command, env, user, security, mounts).
//
// Errors carry the Kubernetes waiting reason a container shows while it
// cannot be created (ErrImageNeverPull, CreateContainerConfigError) or, for
// pod-level problems, ContainerCreating with a FailedMount event.
//
// Thread-safe (reads the store; the volume manager serialises itself).
#ifndef SBX_DAEMON_POD_BUILDER_H_
#define SBX_DAEMON_POD_BUILDER_H_

#include <string>
#include <vector>

#include "api/sandbox.h"
#include "common/status.h"
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
};

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

  Result<ContainerLaunch> BuildContainer(const api::Sandbox& sb, const PodVolumes& volumes,
                                         const PodContainer& c, BuildFailure* failure);

 private:
  ObjectGetter Getter(const std::string& ns) const;

  store::Store& store_;
  oci::ImageStore& images_;
  VolumeManager& volumes_;
  PodSettings settings_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_POD_BUILDER_H_
