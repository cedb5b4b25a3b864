// Pod volumes on the host: what each volume of a Sandbox's pod is on disk,
// and the OCI mounts that give them to a container.
//
// Kinds (Kubernetes semantics, what sbx runs of them):
//   emptyDir             a host directory under the sandbox's state
//                        directory, empty at every fresh pod start. A
//                        sizeLimit is not enforced (a warning says so).
//   emptyDir Memory      a tmpfs inside the gVisor sandbox, shared by the
//                        pod's containers through gVisor's mount hints
//                        (dev.gvisor.spec.mount.<volume>.*, runsc.md §2.2);
//                        sizeLimit becomes the tmpfs size. The host directory
//                        named as its source only holds gVisor's backing file.
//   configMap / secret   files written at Prepare (items, defaultMode, mode,
//                        optional), always mounted read-only. They live under
//                        a directory only root can enter on the host.
//   hostPath             only at or under a configured prefix (symlinks
//                        resolved before the check); `type` checked as the
//                        kubelet does.
//   claim                one per spec.volumeClaimTemplates entry, named
//                        "<claim>-<sandbox>" and kept across pod restarts,
//                        Suspended -> Running and daemon restarts; removed
//                        with the sandbox. The storage request is enforced by
//                        a sparse ext4 image loop-mounted at <volume>/data when
//                        enforce_claim_size is set and the host has loop
//                        devices and mkfs.ext4; otherwise <volume>/data is a
//                        plain directory and a warning says the size is not
//                        enforced.
//
// Layout:
//   state_dir/volumes/<namespace>/<claim>-<sandbox>/   0700 parents
//       owner       the owning Sandbox's uid; another uid is a Conflict
//       disk.img    the ext4 image (loop-backed volumes only)
//       data/       the volume root given to containers
//   state_dir/sandboxes/<uid>/volumes/                 0700, pod-private
//       <volume>/   emptyDir, configMap, secret contents
//       .subpath/<container>/<index>   bind mounts of subPath targets
//
// subPath. The target is resolved with openat2(RESOLVE_BENEATH) from the
// volume root, so neither ".." nor a symlink planted inside the volume leads
// out of it; missing directories are created on the way. The resolved file
// is then bind-mounted (through its /proc/self/fd path, as the kubelet does)
// at a staging path no container can write, and that path is the mount
// source: a container that swaps a directory for a symlink after the check
// cannot redirect runsc's gofer. Staging mounts need root.
//
// Mounts (loop-backed claims, subPath staging) are made in sbxd's mount
// namespace. Release, Delete and Recover leave none behind and detach the
// loop devices of the images they unmount.
//
// fsGroup (pod securityContext) is applied as the kubelet applies it to
// emptyDir, configMap, secret and claim volumes: group ownership, group
// read (and write unless read-only), setgid directories; for claims on every
// file unless fsGroupChangePolicy is OnRootMismatch and the root already
// matches. hostPath volumes are left alone.
//
// Thread safety: calls for different sandboxes may run concurrently; calls
// for one sandbox must not. Recover runs alone, before any other call.
// Blocking: runs mkfs.ext4 and mount through the CommandRunner.
#ifndef SBX_DAEMON_VOLUMES_H_
#define SBX_DAEMON_VOLUMES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/object.h"
#include "api/sandbox.h"
#include "common/status.h"
#include "oci/bundle.h"
#include "oci/command.h"

namespace sbx::daemon {

struct VolumeSettings {
  // Claim volumes live under state_dir/volumes/<namespace>/<claim>-<sandbox>/.
  std::string state_dir;
  // hostPath is allowed only at or under these absolute directories; empty
  // refuses every hostPath volume.
  std::vector<std::string> host_path_prefixes;
  // Loop-mounted ext4 image per claim volume when the host can.
  bool enforce_claim_size = true;
};

struct PreparedVolume {
  std::string name;
  // "emptyDir" | "emptyDirMemory" | "configMap" | "secret" | "hostPath" | "claim"
  std::string kind;
  std::string host_path;   // absolute, free of symlinks
  int64_t size_limit = 0;  // bytes; 0 = none
  bool size_enforced = false;
  bool read_only = false;  // every mount of it is read-only (configMap, secret)
};

struct PodVolumes {
  std::map<std::string, PreparedVolume> by_name;
  // gVisor mount hints; put them on EVERY bundle of the pod (the root
  // container's are the ones runsc reads when the sandbox starts).
  std::map<std::string, std::string> annotations;
  // Things the user should know (a size that is not enforced): events.
  std::vector<std::string> warnings;
  // Where MountsFor stages subPath bind mounts (set by Prepare).
  std::string subpath_dir;
};

// Fetches a Secret or ConfigMap of the sandbox's namespace; NotFound when
// missing.
using ObjectGetter =
    std::function<Result<api::Object>(const std::string& kind, const std::string& name)>;

class VolumeManager {
 public:
  // `runner` must outlive the manager.
  VolumeManager(VolumeSettings settings, oci::CommandRunner& runner);

  // For every fresh pod start (first start, whole-pod restart, Suspended ->
  // Running). sandbox_dir must be state_dir/sandboxes/<uid>; its volumes/ is
  // rebuilt: emptyDirs start empty, configMap/secret files are rewritten.
  // Claim volumes are created once and reused (mounted if loop-backed).
  // Errors: Invalid naming the field for a spec sbx cannot run, NotFound
  // for a missing ConfigMap/Secret or key (Kubernetes' wording, naming the
  // volume), Conflict for a claim volume owned by another sandbox,
  // FailedPrecondition for a hostPath whose type check fails. On error
  // nothing of the pod stays mounted (as after Release).
  Result<PodVolumes> Prepare(const api::Sandbox& sb, const std::string& sandbox_dir,
                             const ObjectGetter& get);

  // The container's volumeMounts as OCI bind mounts, parents before
  // children: read-only for readOnly and for configMap/secret, the shared
  // tmpfs (by its hint) for a memory emptyDir, subPath staged as described
  // above. `container_path` prefixes field paths in errors
  // ("spec.podTemplate.spec.containers[1]").
  Result<std::vector<oci::BundleMount>> MountsFor(const PodVolumes& vols,
                                                  const api::Json& container,
                                                  const std::string& container_path) const;

  // The pod stopped (suspend, expiry, whole-pod restart): removes the
  // pod-private volumes and staging mounts, unmounts the sandbox's claim
  // volumes. Claim data is kept.
  Status Release(const api::Sandbox& sb);

  // The sandbox is deleted: as Release, then removes its claim volumes.
  Status Delete(const api::Sandbox& sb);

  // sbxd start-up. live_uids: stored Sandboxes; running_uids: those whose pod
  // was adopted running. Unmounts the volumes of sandboxes that do not run,
  // removes their pod-private volumes, deletes claim volumes whose owner is
  // not live, and detaches loop devices left on images of this state dir.
  // Call it before removing orphaned sandbox directories.
  Status Recover(const std::set<std::string>& live_uids, const std::set<std::string>& running_uids);

  // "<claim>-<sandbox>".
  static std::string ClaimVolumeName(const std::string& claim, const std::string& sandbox);

 private:
  struct ClaimResult {
    std::string data;
    bool enforced = false;
  };

  Result<PodVolumes> PrepareAll(const api::Sandbox& sb, const std::string& pod_dir,
                                const ObjectGetter& get);
  std::string VolumesRoot() const;
  std::string NamespaceDir(const std::string& ns) const;
  std::string PodVolumesDir(const std::string& uid) const;
  Result<ClaimResult> EnsureClaim(const std::string& dir, const std::string& uid, int64_t bytes,
                                  std::string* not_enforced_reason);
  Status MountImage(const std::string& image, const std::string& data);
  Status CreateImage(const std::string& image, int64_t bytes);
  // Claim volume directories of `ns` whose owner file says `uid`.
  std::vector<std::string> ClaimsOwnedBy(const std::string& ns, const std::string& uid) const;

  VolumeSettings settings_;
  oci::CommandRunner& runner_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_VOLUMES_H_
