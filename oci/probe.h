// What the installed runsc can do, found out rather than assumed.
//
// ProbeRunsc asks the binary for its version (`runsc --version`) and flags
// (`runsc flags`), and boots a tiny container (host "/" read-only as root,
// /bin/true, --network=none) on each candidate platform under a timeout,
// because KVM hangs at boot on some hosts (PVM-backed /dev/kvm). A boot that
// fails or times out is cleaned up completely: the process group is killed,
// `runsc delete --force` runs, and any sandbox or gofer still carrying the
// probe's private --root is killed by pid. The result is cached in a JSON
// file keyed by the binary (path, size, mtime), the requested platform, the
// kernel release and the presence of /dev/kvm, so a daemon restart does not
// boot anything.
//
// Thread safety: ProbeRunsc is blocking and uses only its own files; run it
// off the event loop.
#ifndef SBX_OCI_PROBE_H_
#define SBX_OCI_PROBE_H_

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "oci/command.h"

namespace sbx::oci {

using Json = nlohmann::json;

struct RunscCapabilities {
  std::string binary;                  // resolved absolute path
  std::string version;                 // as printed, e.g. "0.0~20240729.0"
  std::vector<std::string> platforms;  // those that really booted, in probe order
  std::string platform;                // chosen: the first of `platforms`
  std::set<std::string> flags;         // global flag names without dashes
  bool overlay2_dir = false;  // --overlay2 accepts {root|all}:dir=/abs (else only memory/self)
  bool checkpoint_leave_running_in_place = false;  // release >= 20240415
  // runsc < 20240807 refuses --network=sandbox when a fresh network
  // namespace exposes net.core.rmem_default (Linux >= 6.x); the daemon then
  // needs the /proc/sys mask workaround (reference/runsc.md §3.4).
  bool netns_rmem_defect = false;

  bool HasFlag(std::string_view name) const { return flags.count(std::string(name)) > 0; }
  Json ToJson() const;
  static Result<RunscCapabilities> FromJson(const Json& j);
  bool operator==(const RunscCapabilities&) const = default;
};

// Long enough for a systrap or ptrace boot on a loaded 2-vCPU VM (about
// 0.3-0.6 s), short enough that a hanging KVM boot does not stall start-up.
inline constexpr std::chrono::milliseconds kDefaultProbeBootTimeout{3000};

// requested_platform: "auto" | "kvm" | "systrap" | "ptrace". auto boots kvm
// (only if /dev/kvm exists), systrap and ptrace and picks the first that
// booted; an explicit platform boots only that one. work_dir holds the
// probe's temporary bundle and runsc root (removed afterwards). cache_path
// may be empty (no cache). FailedPrecondition if nothing boots, with each
// platform's reason.
Result<RunscCapabilities> ProbeRunsc(CommandRunner& runner, const std::string& binary,
                                     const std::string& requested_platform,
                                     const std::string& work_dir, const std::string& cache_path,
                                     std::chrono::milliseconds boot_timeout);

// The release date in a runsc version string ("0.0~20240729.0",
// "release-20240729.0", "20240729.0"), or 0 if there is none.
int RunscReleaseDate(std::string_view version);

// `runsc flags` output (flag.PrintDefaults format) -> name -> help text.
std::map<std::string, std::string> ParseRunscFlags(std::string_view text);

}  // namespace sbx::oci

#endif  // SBX_OCI_PROBE_H_
