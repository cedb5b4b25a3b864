// Running a command and collecting its result.
//
// oci/ builds argv vectors (RunscClient) and parses what comes back; who runs
// the process is a CommandRunner. The daemon implements the interface with its
// own subreaper-based process handling; tools and tests use the blocking
// SimpleCommandRunner below.
//
// Thread safety: CommandSpec/CommandResult are values. SimpleCommandRunner has
// no state and may be used from several threads at once.
#ifndef SBX_OCI_COMMAND_H_
#define SBX_OCI_COMMAND_H_

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace sbx::oci {

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH if it has no '/'
  std::string stdin_data;         // written to the child's stdin, then closed
  // 0 = none. On timeout the child's process group is SIGKILLed. Processes
  // that left the group (runsc's sandbox and gofer call setsid) are the
  // caller's to clean up.
  std::chrono::milliseconds timeout{0};
  // If >= 0 the child's stdout/stderr go there and are not captured. The
  // runner does not take ownership.
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::string cwd;  // empty = inherit
  // Run under SCHED_IDLE: the command (and everything it forks, which
  // inherits the policy) gets CPU only when nothing else wants it.
  bool idle_priority = false;
  // Added to the command's nice value (e.g. 10: background work that still
  // gets a small share of a busy CPU, unlike SCHED_IDLE). 0 = inherit.
  int nice = 0;
  // "NAME=value" entries over the inherited environment (empty: inherit
  // unchanged).
  std::vector<std::string> env;
};

// This process's environment with `overrides` ("NAME=value") replacing or
// adding entries of the same name.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& overrides);

struct CommandResult {
  int exit_code = -1;   // -1 when killed by a signal
  int term_signal = 0;  // signal that ended the process, 0 if it exited
  bool timed_out = false;
  std::string out, err;  // captured output (empty when redirected)

  bool ok() const { return exit_code == 0 && !timed_out; }
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Runs spec to completion. An error Status means the command could not be
  // run at all (fork/exec failed); a non-zero exit is a CommandResult.
  virtual Result<CommandResult> Run(const CommandSpec& spec) = 0;
};

// Resolves a command name as execvp would: names with a '/' are checked for
// execute permission, others are searched in $PATH. NotFound if absent.
Result<std::string> FindExecutable(const std::string& name);

// fork/exec in a new process group, then waitpid on that pid. Captured output
// is read until the child exits; whatever the child's descendants still
// write to the inherited pipes afterwards is not waited for (runsc create
// hands its stdio to the sandbox, which would otherwise keep the pipe open).
// Not for the daemon: it reaps only its own child and must not be used in a
// process where another reaper calls waitpid(-1).
class SimpleCommandRunner : public CommandRunner {
 public:
  Result<CommandResult> Run(const CommandSpec& spec) override;
};

}  // namespace sbx::oci

#endif  // SBX_OCI_COMMAND_H_
