// PodSpec container -> OCI runtime bundle (config.json).
//
// This is the only place in the project that produces runtime-spec JSON. The
// daemon resolves images, users, env and mounts into a BundleSpec; this file
// turns it into the spec runsc reads.
//
// Rootfs model: root.path is the image's shared unpacked root and is given to
// runsc with readonly=false; runsc's rootfs overlay (--overlay2=root:memory
// or root:dir=…) takes the writes, so the workload never modifies the shared
// directory (tests/oci/runsc_lifecycle_test.cc proves it). One exception:
// runsc's gofer creates a missing mount point (a volume's mountPath) as an
// empty directory in the shared root, where other containers of the image
// then see it empty. readonly_rootfs sets
// readonly=true, and the container cannot write its root at all
// (tests/oci/runsc_security_test.cc).
#ifndef SBX_OCI_BUNDLE_H_
#define SBX_OCI_BUNDLE_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "oci/user.h"

namespace sbx::oci {

using Json = nlohmann::json;

struct BundleMount {
  std::string destination, type, source;
  std::vector<std::string> options;
};

// linux.resources of the sandbox (root) container. runsc applies them to the
// host cgroup at linux.cgroupsPath and sizes the sandbox from it (MemTotal,
// CPU count); limits of sub-containers are not enforced by runsc.
struct BundleResources {
  int64_t memory_limit = 0;        // bytes; 0 = none
  int64_t memory_reservation = 0;  // bytes; 0 = none (v1 soft limit, v2 memory.low)
  int64_t cpu_quota = 0;           // microseconds per cpu_period; 0 = none
  uint64_t cpu_period = 100000;    // microseconds; written only with a quota
  uint64_t cpu_shares = 0;         // 0 = unset
  int64_t pids_limit = 0;          // 0 = none
  // True when nothing would be written (cpu_period alone does not count).
  bool empty() const;
};

struct BundleSpec {
  std::string rootfs;  // absolute; shared read-only image root
  std::vector<std::string> args;
  std::vector<std::string> env;  // final KEY=VALUE list
  std::string cwd = "/";
  UserSpec user;
  std::string hostname;
  std::map<std::string, std::string> annotations;
  std::string cgroups_path;  // empty = runsc's default ("/<container id>")
  // The network namespace to join (a pinned path); empty = a new one.
  std::string netns_path;
  bool terminal = false;
  std::vector<BundleMount> mounts;  // after the default mounts; may shadow them

  // Security. root.readonly: the rootfs (and runsc's overlay on it) refuses
  // writes; mounts keep their own options.
  bool readonly_rootfs = false;
  // nullopt = DefaultCapabilities(); otherwise the exact set ("CAP_X"
  // names), which may be empty.
  std::optional<std::vector<std::string>> capabilities;
  bool no_new_privileges = false;
  // An OCI linux.seccomp object written verbatim; null = none. runsc
  // enforces it inside the sandbox only with --oci-seccomp.
  Json seccomp;
  BundleResources resources;
};

// Kubernetes semantics: `command` replaces the image Entrypoint and drops its
// Cmd; `args` replaces Cmd. InvalidArgument("no command specified") if the
// result is empty.
Result<std::vector<std::string>> ResolveArgs(const std::vector<std::string>& image_entrypoint,
                                             const std::vector<std::string>& image_cmd,
                                             const std::vector<std::string>& command,
                                             const std::vector<std::string>& args);

// Image Env first (later duplicates replace earlier ones in place), then
// PATH=<default> if the image has no PATH, then the container's env, each
// replacing a variable of the same name in place or appending.
std::vector<std::string> MergeEnv(
    const std::vector<std::string>& image_env,
    const std::vector<std::pair<std::string, std::string>>& container_env);

// The PATH used when the image sets none (containerd's default).
extern const char kDefaultPathEnv[];

// containerd's default capability set, in its order.
std::vector<std::string> DefaultCapabilities();

// The OCI process object shared by config.json and `runsc exec --process`:
// terminal, user, args, env, cwd, capabilities (nullopt = the default set)
// and noNewPrivileges when set (no rlimits). Exec'd processes should get
// the container's capabilities and no_new_privileges, as in Kubernetes.
Json ProcessSpecJson(const std::vector<std::string>& args, const std::vector<std::string>& env,
                     const std::string& cwd, const UserSpec& user, bool terminal,
                     const std::optional<std::vector<std::string>>& capabilities = std::nullopt,
                     bool no_new_privileges = false);

// process.capabilities for a capability set. As containerd (since 1.6.18)
// does, only bounding, effective and permitted carry the set; inheritable
// and ambient stay empty for every user, so a non-root process holds no
// capability across an execve.
Json CapabilitiesJson(const std::vector<std::string>& capabilities);

// linux.resources with only the fields that are set; an empty object when
// resources.empty().
Json ResourcesJson(const BundleResources& resources);

Json BuildRuntimeSpec(const BundleSpec& spec);

// Validates spec (absolute rootfs and cwd, non-empty args, absolute mount
// destinations, CAP_ capability names, seccomp an object, no negative
// resources), creates bundle_dir and writes bundle_dir/config.json
// atomically.
Status WriteBundle(const std::string& bundle_dir, const BundleSpec& spec);

}  // namespace sbx::oci

#endif  // SBX_OCI_BUNDLE_H_
