// Child processes: the one reaper, a blocking command runner built on it, and
// a loop-side streaming process for exec sessions.
//
// sbxd is a child subreaper: runsc's sandbox and gofer processes, which
// outlive the `runsc create` that started them, are reparented to sbxd.
// Reaper owns every wait*() call in the process; nothing else may reap.
#ifndef SBX_DAEMON_PROCESS_H_
#define SBX_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs.h"
#include "common/status.h"
#include "daemon/event_loop.h"
#include "oci/command.h"

namespace sbx::daemon {

struct ExitStatus {
  int exit_code = -1;   // -1 when killed by a signal or unknown
  int term_signal = 0;  // the signal that ended the process, 0 if it exited
  // The exit code, 128+signal for a signal, as shells report it.
  int Code() const;
  bool operator==(const ExitStatus&) const = default;
};

// Process-wide. Thread-safe.
//
// A dedicated thread reaps with waitpid(-1, WNOHANG) whenever SIGCHLD
// arrives (Start installs a SIGCHLD handler that wakes it) and runs the exit
// callbacks there. Callbacks must be quick and must not block: post work to
// an EventLoop or a WorkerPool.
class Reaper {
 public:
  static Reaper& Get();

  // Makes this process a child subreaper, installs the SIGCHLD handler and
  // starts the reaper thread. Idempotent; Spawn and Watch call it.
  void Start();

  struct SpawnOptions {
    std::vector<std::string> argv;  // argv[0] is searched in PATH if it has no '/'
    // "NAME=value" entries over the inherited environment (empty: inherit
    // unchanged).
    std::vector<std::string> env;
    std::string cwd;  // empty: inherit
    // The child's 0/1/2; -1 is /dev/null. The caller keeps ownership.
    int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
    bool new_process_group = true;  // the child leads a new group (pgid == pid)
    // SCHED_IDLE for the child (and what it forks): CPU only when idle.
    // The child is started through chrt (util-linux), which sets it.
    bool idle_priority = false;
    // Added to the child's nice value (through coreutils' nice); 0 = inherit.
    int nice = 0;
  };

  // Spawns argv with default signal dispositions and an empty signal mask;
  // no file descriptor other than 0/1/2 reaches the child. on_exit runs on
  // the reaper thread exactly once, unless Spawn fails (then never).
  Result<pid_t> Spawn(const SpawnOptions& opts, std::function<void(ExitStatus)> on_exit);
  // The same, and also returns a pidfd for the child, opened before it can
  // be reaped, so that signals sent through it never hit a recycled pid.
  Result<pid_t> Spawn(const SpawnOptions& opts, std::function<void(ExitStatus)> on_exit,
                      UniqueFd* pidfd);

  // Calls on_exit once `pid` has exited, on the reaper thread. For our own
  // children (spawned, or reparented to us as subreaper) the real status is
  // reported; a status reaped before Watch was called is kept for 60 s.
  // For a process that is not our child (a sandbox left by an earlier sbxd)
  // the exit is noticed through a pidfd and reported as an unknown status
  // (exit_code -1, term_signal 0).
  void Watch(pid_t pid, std::function<void(ExitStatus)> on_exit);

 private:
  Reaper() = default;
  void Run();
  void ReapChildren();
  void Wake();
  struct Foreign;

  std::once_flag started_;
  UniqueFd wake_fd_;  // eventfd, written by the SIGCHLD handler and by Wake()

  std::mutex mu_;  // held across waitpid and spawn so that neither races the other
  std::multimap<pid_t, std::function<void(ExitStatus)>> waiters_;
  struct Unclaimed {
    ExitStatus status;
    int64_t reaped_ms;
  };
  std::map<pid_t, Unclaimed> unclaimed_;
  std::vector<std::shared_ptr<Foreign>> foreign_;
  std::vector<std::pair<std::function<void(ExitStatus)>, ExitStatus>> ready_;
};

// oci::CommandRunner over the Reaper: runs the command in a new process
// group, captures stdout/stderr through pipes (polled on the calling
// thread), feeds stdin_data, and on timeout SIGKILLs the group. Output the
// process wrote before it exited is always captured; descendants that keep
// the pipes open afterwards are not waited for. Blocks only the calling
// (worker) thread. Thread-safe.
class ReaperCommandRunner : public oci::CommandRunner {
 public:
  Result<oci::CommandResult> Run(const oci::CommandSpec& spec) override;
};

// A child with pipes for stdin/stdout/stderr, driven by the EventLoop, for
// exec sessions. Output arrives in read order per stream through on_output
// (fd 1 or 2); on_exit runs once both output pipes reached EOF and the
// reaper reported the exit, so no output is lost. If a descendant keeps an
// output pipe open, on_exit runs a short grace period after the exit.
// Callbacks run on the loop thread and may destroy the StreamingProcess.
//
// Loop-affine.
class StreamingProcess {
 public:
  using OutputFn = std::function<void(int fd, std::string_view data)>;

  // The fds in opts are ignored.
  static Result<std::unique_ptr<StreamingProcess>> Start(EventLoop& loop,
                                                         const Reaper::SpawnOptions& opts,
                                                         OutputFn on_output,
                                                         std::function<void(ExitStatus)> on_exit);
  // Kills the process (SIGKILL) if it has not exited; no callbacks run after.
  ~StreamingProcess();
  StreamingProcess(const StreamingProcess&) = delete;
  StreamingProcess& operator=(const StreamingProcess&) = delete;

  pid_t pid() const;
  // Queues bytes for the child's stdin. false after CloseStdin or once the
  // child's stdin is gone.
  bool WriteStdin(std::string data);
  // Closes the child's stdin after queued writes flush.
  void CloseStdin();
  // Sends a signal to the process; a no-op once it has been reaped.
  void Kill(int signal);
  bool exited() const;

  struct Impl;

 private:
  explicit StreamingProcess(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_PROCESS_H_
