// A container's effective security settings: the pod's securityContext
// merged with the container's as Kubernetes does, resolved against the
// image, ready for the OCI spec.
//
// Rules (kubelet's DetermineEffectiveSecurityContext and containerd's CRI):
// - The container's runAsUser, runAsGroup, runAsNonRoot and seccompProfile
//   win over the pod's; capabilities, privileged, readOnlyRootFilesystem and
//   allowPrivilegeEscalation exist only on the container; fsGroup,
//   supplementalGroups and supplementalGroupsPolicy only on the pod.
// - The user is "<runAsUser>[:<runAsGroup>]", else the image's user (with
//   runAsGroup replacing its group), resolved by oci::ResolveUser against the
//   image rootfs: runAsUser without runAsGroup takes the group of that uid
//   in the image's /etc/passwd, else 0. fsGroup, then supplementalGroups, are
//   added to the additional gids; with supplementalGroupsPolicy Strict the
//   image's /etc/group memberships are left out.
// - runAsNonRoot is checked as the kubelet does, with its messages: an
//   explicit runAsUser 0, an image user that is root (or empty), or an image
//   user that is a name (unverifiable) without runAsUser are
//   FailedPrecondition.
// - privileged: true is refused (Invalid, naming the field).
// - Capabilities: add/drop over oci::DefaultCapabilities().
// - allowPrivilegeEscalation: false sets no_new_privileges.
// - seccompProfile: RuntimeDefault (oci::RuntimeDefaultSeccompProfile),
//   Unconfined (no filter), Localhost (a file below
//   settings.seccomp_profile_root, named by a relative path without "..",
//   opened so that symlinks cannot leave that directory, loaded with
//   oci::LoadSeccompProfile against the container's capabilities). Unset:
//   settings.default_seccomp.
//
// Other securityContext fields (seLinuxOptions, appArmorProfile, sysctls,
// procMount, windowsOptions, fsGroupChangePolicy) have no effect in gVisor
// and are ignored.
//
// Thread safety: pure function; reads files under rootfs and the profile
// directory.
#ifndef SBX_DAEMON_SECURITY_CONTEXT_H_
#define SBX_DAEMON_SECURITY_CONTEXT_H_

#include <string>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "oci/user.h"

namespace sbx::daemon {

struct SecuritySettings {
  // Localhost profiles are read relative to this directory; empty refuses
  // Localhost profiles.
  std::string seccomp_profile_root;
  // For containers without a seccompProfile: "RuntimeDefault" or "Unconfined".
  std::string default_seccomp = "RuntimeDefault";
};

struct ContainerSecurity {
  oci::UserSpec user;
  bool readonly_rootfs = false;
  bool no_new_privileges = false;
  std::vector<std::string> capabilities;  // "CAP_CHOWN", ...
  api::Json seccomp;                      // OCI linux.seccomp object, or null
};

// pod_spec and container are the raw JSON of the pod spec and of one of its
// containers; container_path is the container's field path
// ("spec.podTemplate.spec.containers[0]"); pod_key is "ns/name" for the
// kubelet messages; image_user is the image config's User.
Result<ContainerSecurity> ResolveContainerSecurity(
    const api::Json& pod_spec, const api::Json& container, const std::string& container_path,
    const std::string& pod_key, const std::string& rootfs, const std::string& image_user,
    const SecuritySettings& settings);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_SECURITY_CONTEXT_H_
