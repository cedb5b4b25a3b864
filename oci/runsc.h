// The typed runsc client: argv in, parsed output out.
//
// RunscClient renders the global flags once from RunscConfig and repeats them
// identically on every call (runsc requires that for the calls of one
// container). It never runs anything: the caller passes the argv to a
// CommandRunner and hands the output back to the Parse* functions. No other
// code in the project builds runsc argv.
//
// Error output. A root container's stdio is inherited from `runsc create`, so
// the caller usually points create's stdout/stderr at the container's log and
// runsc's own error text would be lost in (or mixed into) the application's
// output. Create therefore adds `--log=<bundle>/runsc-error.log
// --log-format=json`: runsc, its gofer and its sandbox append one JSON
// object per error to that file ({"msg":…,"level":"error","time":…}, not
// newline-separated in release-20240729), and the sandbox keeps appending
// for its whole life. CommandError reads those messages when given the file's
// content, else the last meaningful stderr line.
//
// Debug logs. `--debug --debug-log=<dir>/` makes runsc write one file per
// command into <dir> (runsc.log.<timestamp>.<command>.txt; create also
// hands the directory to the sandbox's boot and gofer processes, which
// write theirs for the sandbox's whole life). runsc 20240729 substitutes
// only %TIMESTAMP% and %COMMAND% in --debug-log, so a directory per sandbox
// is chosen per call: RunscConfig::debug_log_dir_for names it for the
// container a command is about. Commands about no container (list,
// version, flags) never carry it.
//
// Thread safety: RunscClient is immutable after construction; the argv
// builders may call debug_log_dir_for from any thread.
#ifndef SBX_OCI_RUNSC_H_
#define SBX_OCI_RUNSC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "oci/command.h"

namespace sbx::oci {

using Json = nlohmann::json;

struct RunscConfig {
  std::string binary = "runsc";
  std::string root;              // --root; state of every container lives here
  std::string platform;          // resolved, never "auto"; empty = runsc's default
  std::string network = "none";  // none | sandbox | host
  std::string overlay2 = "root:memory";
  bool ignore_cgroups = false;
  // --oci-seccomp: enforce the spec's linux.seccomp inside the sandbox;
  // without it runsc ignores that section.
  bool oci_seccomp = false;
  // --debug --debug-log=<dir>/ on every command; empty = off.
  std::string debug_log_dir;
  // The debug log directory for the commands about runsc container `id`
  // (create, start, run, state, kill, delete, exec, wait, ps); empty: that
  // command falls back to debug_log_dir. Null: none. Must be thread-safe
  // and quick (it runs on every such argv).
  std::function<std::string(std::string_view id)> debug_log_dir_for;
  std::vector<std::string> extra_flags;  // appended verbatim after the above
};

struct RunscState {
  std::string id;
  std::string status;  // created | running | stopped | paused
  std::string bundle;
  int pid = 0;  // sandbox pid; -1 once stopped
  std::map<std::string, std::string> annotations;
};

struct RunscExec {
  std::vector<std::string> args;
  // KEY=VALUE. In the flag form runsc merges them over the container's env;
  // with --process they are the whole environment.
  std::vector<std::string> env;
  std::string cwd;  // empty = the container's
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
  bool tty = false;
  // If set, the caller writes ProcessJson() there and Exec passes only
  // --process (and the error log); the other fields are then ignored by
  // Exec. Prefer it: it carries the capability set, which the flag form
  // cannot express.
  std::string process_json_path;
  // If set, runsc's own errors are also written there as JSON (see above):
  // exec's stdio is the process's stdio.
  std::string error_log_path;
};

class RunscClient {
 public:
  explicit RunscClient(RunscConfig config);

  const RunscConfig& config() const { return config_; }
  // The global flags as rendered into every argv (without the binary and
  // without the debug flags, which may differ per call).
  const std::vector<std::string>& global_flags() const { return global_flags_; }

  // pid_file (may be empty) receives the sandbox pid. The bundle dir must be
  // absolute: runsc echoes it in state and resolves relative mount sources
  // against it. Never create an id that may still exist: a create with a
  // taken id fails ("container already exists", AlreadyExists) and, while
  // cleaning up, deletes the existing container's state, orphaning its
  // sandbox (release 20240729; runsc_lifecycle_test records it).
  std::vector<std::string> Create(std::string_view id, std::string_view bundle_dir,
                                  std::string_view pid_file) const;
  // error_log as for RunscExec::error_log_path: a sub-container's stdio is
  // inherited from `runsc start`.
  std::vector<std::string> Start(std::string_view id, std::string_view error_log = {}) const;
  // Foreground create+start+wait; exits with the container's exit code.
  // Used by the capability probe. Adds the bundle's error log like Create.
  std::vector<std::string> Run(std::string_view id, std::string_view bundle_dir,
                               std::string_view pid_file) const;
  std::vector<std::string> State(std::string_view id) const;
  std::vector<std::string> List() const;  // --format=json
  std::vector<std::string> Kill(std::string_view id, int signal, bool all = false) const;
  std::vector<std::string> Delete(std::string_view id, bool force) const;
  std::vector<std::string> Exec(std::string_view id, const RunscExec& exec) const;
  // Only answers while the container runs; afterwards runsc reports "exit
  // status is unavailable" (take the status from waitpid on the sandbox).
  std::vector<std::string> Wait(std::string_view id) const;
  std::vector<std::string> Ps(std::string_view id) const;  // --format=json
  std::vector<std::string> Version() const;
  std::vector<std::string> Flags() const;  // `runsc flags`; prints to stderr

  // Where Create asks runsc to write its JSON error log.
  static std::string ErrorLogPath(std::string_view bundle_dir);

  // OCI process object for `exec --process`.
  static Json ProcessJson(const RunscExec& exec);

  static Result<RunscState> ParseState(std::string_view out);
  // `list --format=json`; runsc prints `null` when there are no containers.
  static Result<std::vector<RunscState>> ParseList(std::string_view out);
  // {"id":…,"exitStatus":N}; runsc already reports signals as 128+n.
  static Result<int> ParseWait(std::string_view out);
  // `ps --format=json`: an array of pids in the sandbox's root pid namespace.
  static Result<std::vector<int>> ParsePs(std::string_view out);
  // "runsc version 0.0~20240729.0\nspec: 1.0.2-dev" -> "0.0~20240729.0".
  static Result<std::string> ParseVersion(std::string_view out);
  // Messages of a runsc JSON error log, oldest first.
  static std::vector<std::string> ParseErrorLog(std::string_view log);

  // "runsc create: exit 128: <runsc's error text>". The text is taken from
  // error_log (the content of an error log file, if the caller has one) and
  // else from the last meaningful stderr line. The code is NotFound when
  // runsc says the container does not exist, AlreadyExists when the id is
  // taken, Unavailable on timeout, Internal otherwise.
  static Status CommandError(std::string_view verb, const CommandResult& r,
                             std::string_view error_log = {});

 private:
  // `id` (empty for commands about no container) chooses the debug log.
  std::vector<std::string> Command(std::string_view subcommand, std::string_view id = {},
                                   std::string_view error_log = {}) const;
  std::vector<std::string> BundleCommand(std::string_view subcommand, std::string_view id,
                                         std::string_view bundle_dir,
                                         std::string_view pid_file) const;

  RunscConfig config_;
  std::vector<std::string> global_flags_;
  size_t extra_flags_at_ = 0;  // where in global_flags_ extra_flags begin
};

// Container ids have a fixed length so that runsc's prefix matching of ids
// can never pick another sandbox: "sbx-" + 28 hex chars of sha256(uid).
std::string ContainerIdFor(std::string_view object_uid);

// runsc before release-20240807 refuses to set up --network=sandbox when
// a fresh network namespace has net.core.rmem_default, which Linux 6.x
// namespaces (reference/runsc.md §3.4; RunscCapabilities::
// netns_rmem_defect). The workaround runs the command that sets up the
// network (`start` of a pod) in a private mount namespace whose /proc/sys is
// a tmpfs holding only vm/mmap_min_addr (runsc reads it; the value is the
// host's, `mmap_min_addr`). Needs util-linux's unshare and /bin/sh.
std::vector<std::string> WithProcSysMask(const std::vector<std::string>& argv,
                                         const std::string& mmap_min_addr);

}  // namespace sbx::oci

#endif  // SBX_OCI_RUNSC_H_
