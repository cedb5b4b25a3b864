#include "oci/command.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>

#include "common/fs.h"
#include "common/strings.h"

extern char** environ;

namespace sbx::oci {
namespace {

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

using Clock = std::chrono::steady_clock;

}  // namespace

Result<std::string> FindExecutable(const std::string& name) {
  if (name.empty()) return InvalidArgument("empty command");
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) return ErrnoStatus(name, errno);
    return name;
  }
  const char* path_env = ::getenv("PATH");
  std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& dir : Split(path, ':')) {
    std::string candidate = JoinPath(dir.empty() ? "." : dir, name);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return NotFound(name + ": executable not found in PATH");
}

namespace {

Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return Status::Ok();
}

void SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Reads what is available without blocking. Returns false at EOF or error.
bool ReadAvailable(int fd, std::string* into) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      into->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

// Writes to a pipe whose reader may be gone without raising SIGPIPE in this
// process: SIGPIPE is blocked in this thread during the write and a pending
// one caused by it is consumed.
ssize_t WriteNoSigpipe(int fd, const char* data, size_t len) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  ssize_t n = ::write(fd, data, len);
  int saved = errno;
  if (n < 0 && errno == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = saved;
  return n;
}

// Everything the child does between fork and exec; async-signal-safe only.
[[noreturn]] void ExecChild(const char* path, char* const* argv, int in_fd, int out_fd, int err_fd,
                            char* const* envp, const char* cwd, bool idle_priority, int nice,
                            int status_fd) {
  ::setpgid(0, 0);
  struct sched_param no_priority {};
  auto fail = [status_fd] {
    int e = errno;
    (void)!::write(status_fd, &e, sizeof(e));
    ::_exit(127);
  };
  if (idle_priority && ::sched_setscheduler(0, SCHED_IDLE, &no_priority) != 0) fail();
  if (nice != 0) {
    errno = 0;
    int now = ::getpriority(PRIO_PROCESS, 0);
    if (errno != 0 || ::setpriority(PRIO_PROCESS, 0, now + nice) != 0) fail();
  }
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  // Move the sources above 2 first so that dup2 into 0..2 cannot clobber a
  // source that happens to be one of 0..2.
  int in = ::fcntl(in_fd, F_DUPFD_CLOEXEC, 3);
  int out = ::fcntl(out_fd, F_DUPFD_CLOEXEC, 3);
  int err = ::fcntl(err_fd, F_DUPFD_CLOEXEC, 3);
  if (in < 0 || out < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 ||
      ::dup2(err, 2) < 0) {
    int e = errno;
    (void)!::write(status_fd, &e, sizeof(e));
    ::_exit(127);
  }
  if (cwd != nullptr && ::chdir(cwd) != 0) {
    int e = errno;
    (void)!::write(status_fd, &e, sizeof(e));
    ::_exit(127);
  }
  // Nothing but stdio may leak into the child: runsc passes inherited
  // descriptors on to long-lived sandbox processes.
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(path, argv, envp);
  int e = errno;
  (void)!::write(status_fd, &e, sizeof(e));
  ::_exit(127);
}

void FillExit(int wait_status, CommandResult* r) {
  if (WIFEXITED(wait_status)) {
    r->exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    r->term_signal = WTERMSIG(wait_status);
  }
}

int WaitPid(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

}  // namespace

std::vector<std::string> MergedEnvironment(const std::vector<std::string>& overrides) {
  std::set<std::string> names;
  for (const std::string& e : overrides) names.insert(e.substr(0, e.find('=')));
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (!names.count(std::string(entry.substr(0, entry.find('='))))) out.emplace_back(entry);
  }
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

Result<CommandResult> SimpleCommandRunner::Run(const CommandSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("empty argv");
  // Resolved here rather than by execvp in the child so that a missing
  // binary is NotFound instead of exit code 127.
  SBX_ASSIGN_OR_RETURN(std::string path, FindExecutable(spec.argv[0]));

  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  if (!spec.env.empty()) {
    env_storage = MergedEnvironment(spec.env);
    for (const std::string& e : env_storage) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }

  UniqueFd in_read, in_write, out_read, out_write, err_read, err_write;
  if (spec.stdin_data.empty()) {
    in_read.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_read.valid()) return ErrnoStatus("open /dev/null", errno);
  } else {
    SBX_RETURN_IF_ERROR(MakePipe(&in_read, &in_write));
  }
  if (spec.stdout_fd < 0) SBX_RETURN_IF_ERROR(MakePipe(&out_read, &out_write));
  if (spec.stderr_fd < 0) SBX_RETURN_IF_ERROR(MakePipe(&err_read, &err_write));
  UniqueFd status_read, status_write;
  SBX_RETURN_IF_ERROR(MakePipe(&status_read, &status_write));

  const int child_out = spec.stdout_fd >= 0 ? spec.stdout_fd : out_write.get();
  const int child_err = spec.stderr_fd >= 0 ? spec.stderr_fd : err_write.get();
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

  const Clock::time_point start = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    ExecChild(path.c_str(), argv.data(), in_read.get(), child_out, child_err,
              envp.empty() ? environ : envp.data(), cwd, spec.idle_priority, spec.nice,
              status_write.get());
  }
  // Also set here: whichever of parent and child runs first, the group exists
  // before a timeout could signal it.
  ::setpgid(pid, pid);
  in_read.Reset();
  out_write.Reset();
  err_write.Reset();
  status_write.Reset();

  int exec_errno = 0;
  ssize_t n;
  while ((n = ::read(status_read.get(), &exec_errno, sizeof(exec_errno))) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    WaitPid(pid);
    return ErrnoStatus("exec " + spec.argv[0], exec_errno);
  }

  CommandResult result;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (UniqueFd* fd : {&in_write, &out_read, &err_read}) {
    if (fd->valid()) SetNonBlocking(fd->get());
  }
  size_t stdin_off = 0;
  const bool has_deadline = spec.timeout.count() > 0;
  const Clock::time_point deadline = start + spec.timeout;
  bool exited = false;
  int wait_status = 0;

  while (!exited) {
    struct pollfd pfds[4];
    int nfds = 0;
    auto watch = [&](const UniqueFd& fd, short events) {
      if (!fd.valid()) return -1;
      pfds[nfds] = {fd.get(), events, 0};
      return nfds++;
    };
    const int in_idx = watch(in_write, POLLOUT);
    const int out_idx = watch(out_read, POLLIN);
    const int err_idx = watch(err_read, POLLIN);
    const int pid_idx = watch(pidfd, POLLIN);
    int wait_ms = pidfd.valid() ? -1 : 10;  // without a pidfd, poll waitpid
    if (has_deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      int left_ms = left.count() < 0 ? 0 : static_cast<int>(left.count()) + 1;
      wait_ms = wait_ms < 0 ? left_ms : std::min(wait_ms, left_ms);
    }
    int ready = ::poll(pfds, static_cast<nfds_t>(nfds), wait_ms);
    if (ready < 0 && errno != EINTR) {
      int e = errno;
      ::kill(-pid, SIGKILL);
      WaitPid(pid);
      return ErrnoStatus("poll", e);
    }
    if (ready > 0) {
      if (in_idx >= 0 && pfds[in_idx].revents != 0) {
        ssize_t w = WriteNoSigpipe(in_write.get(), spec.stdin_data.data() + stdin_off,
                                   spec.stdin_data.size() - stdin_off);
        if (w > 0) stdin_off += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || stdin_off == spec.stdin_data.size()) {
          in_write.Reset();
        }
      }
      if (out_idx >= 0 && pfds[out_idx].revents != 0 &&
          !ReadAvailable(out_read.get(), &result.out)) {
        out_read.Reset();
      }
      if (err_idx >= 0 && pfds[err_idx].revents != 0 &&
          !ReadAvailable(err_read.get(), &result.err)) {
        err_read.Reset();
      }
    }
    if (pid_idx < 0 || (ready > 0 && pfds[pid_idx].revents != 0)) {
      pid_t w = ::waitpid(pid, &wait_status, WNOHANG);
      if (w == pid) exited = true;
    }
    if (!exited && has_deadline && Clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);  // in case it has not reached setpgid yet
      wait_status = WaitPid(pid);
      result.timed_out = true;
      exited = true;
    }
  }
  // The child is gone; take what it wrote, but do not wait for EOF, which
  // descendants holding the pipe may delay indefinitely.
  if (out_read.valid()) ReadAvailable(out_read.get(), &result.out);
  if (err_read.valid()) ReadAvailable(err_read.get(), &result.err);
  FillExit(wait_status, &result);
  return result;
}

}  // namespace sbx::oci
