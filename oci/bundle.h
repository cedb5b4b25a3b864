// PodSpec container -> OCI runtime bundle (config.json).
//
// This is the only place in the project that produces runtime-spec JSON. The
// daemon resolves images, users, env and mounts into a BundleSpec; this file
// turns it into the spec runsc reads.
//
// Rootfs model: root.path is the image's shared unpacked root and is given to
// runsc with readonly=false; runsc's rootfs overlay (--overlay2=root:memory
// or root:dir=…) takes the writes, so the shared directory is never modified
// (tests/oci/runsc_lifecycle_test.cc proves it).
#ifndef SBX_OCI_BUNDLE_H_
#define SBX_OCI_BUNDLE_H_

#include <map>
#include <nlohmann/json.hpp>
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

struct BundleSpec {
  std::string rootfs;  // absolute; shared read-only image root
  std::vector<std::string> args;
  std::vector<std::string> env;  // final KEY=VALUE list
  std::string cwd = "/";
  UserSpec user;
  std::string hostname;
  std::map<std::string, std::string> annotations;
  std::string cgroups_path;  // empty = runsc's default ("/<container id>")
  bool terminal = false;
  std::vector<BundleMount> mounts;  // after the default mounts; may shadow them
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
// terminal, user, args, env, cwd and the default capabilities (no rlimits).
Json ProcessSpecJson(const std::vector<std::string>& args, const std::vector<std::string>& env,
                     const std::string& cwd, const UserSpec& user, bool terminal);

Json BuildRuntimeSpec(const BundleSpec& spec);

// Validates spec (absolute rootfs and cwd, non-empty args), creates
// bundle_dir and writes bundle_dir/config.json atomically.
Status WriteBundle(const std::string& bundle_dir, const BundleSpec& spec);

}  // namespace sbx::oci

#endif  // SBX_OCI_BUNDLE_H_
