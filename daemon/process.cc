#include "daemon/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/time.h"

extern char** environ;

namespace sbx::daemon {

namespace {

// How long an exit status nobody asked for is kept for a late Watch.
constexpr int64_t kUnclaimedKeepMs = 60'000;
// How long a StreamingProcess waits for its output pipes to reach EOF after
// the process exited (descendants may hold them open).
constexpr std::chrono::milliseconds kDrainGrace{1000};
constexpr size_t kReadChunk = 64 * 1024;

int g_reaper_wake_fd = -1;

void OnSigchld(int) {
  int saved = errno;
  uint64_t one = 1;
  ssize_t ignored = write(g_reaper_wake_fd, &one, sizeof(one));
  (void)ignored;
  errno = saved;
}

// Through syscall(): glibc 2.36's <sys/pidfd.h> lacks C++ linkage.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus es;
  if (WIFEXITED(status)) {
    es.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    es.term_signal = WTERMSIG(status);
  }
  return es;
}

Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return Status::Ok();
}

Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl O_NONBLOCK", errno);
  }
  return Status::Ok();
}

// RAII for posix_spawn's C structures.
class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attr_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  posix_spawn_file_actions_t* actions() { return &actions_; }
  posix_spawnattr_t* attr() { return &attr_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
};

// "NAME=value" overrides over this process's environment.
std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

int ExitStatus::Code() const { return term_signal != 0 ? 128 + term_signal : exit_code; }

// ---- Reaper ----

struct Reaper::Foreign {
  pid_t pid;
  UniqueFd pidfd;
  std::function<void(ExitStatus)> on_exit;
};

Reaper& Reaper::Get() {
  static Reaper* reaper = new Reaper;  // never destroyed: its thread runs until exit
  return *reaper;
}

void Reaper::Start() {
  std::call_once(started_, [this] {
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
      SBX_LOG(kWarning) << "prctl(PR_SET_CHILD_SUBREAPER): " << std::strerror(errno);
    }
    wake_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    SBX_CHECK(wake_fd_.valid());
    g_reaper_wake_fd = wake_fd_.get();
    struct sigaction sa {};
    sa.sa_handler = &OnSigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    SBX_CHECK(sigaction(SIGCHLD, &sa, nullptr) == 0);
    std::thread([this] { Run(); }).detach();
  });
}

void Reaper::Wake() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_.get(), &one, sizeof(one));
  (void)ignored;
}

void Reaper::Run() {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  pthread_sigmask(SIG_UNBLOCK, &chld, nullptr);  // at least this thread takes SIGCHLD
  std::vector<pollfd> fds;
  std::vector<std::shared_ptr<Foreign>> watched;
  for (;;) {
    ReapChildren();
    {
      std::lock_guard<std::mutex> lock(mu_);
      watched = foreign_;
    }
    fds.assign(1, pollfd{wake_fd_.get(), POLLIN, 0});
    for (const auto& f : watched) fds.push_back(pollfd{f->pidfd.get(), POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno != EINTR) {
        SBX_LOG(kError) << "reaper: poll: " << std::strerror(errno);
      }
      continue;
    }
    uint64_t count;
    while (read(wake_fd_.get(), &count, sizeof(count)) > 0) {
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < watched.size(); ++i) {
      if (fds[i + 1].revents == 0) continue;
      const std::shared_ptr<Foreign>& f = watched[i];
      ready_.emplace_back(std::move(f->on_exit), ExitStatus{});
      std::erase(foreign_, f);
    }
  }
}

void Reaper::ReapChildren() {
  std::vector<std::pair<std::function<void(ExitStatus)>, ExitStatus>> run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (;;) {
      int status;
      pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
      if (pid < 0 && errno == EINTR) continue;
      if (pid <= 0) break;  // none exited (0) or no children (ECHILD)
      ExitStatus es = FromWaitStatus(status);
      auto [begin, end] = waiters_.equal_range(pid);
      if (begin == end) {
        unclaimed_[pid] = Unclaimed{es, MonotonicMillis()};
        continue;
      }
      for (auto it = begin; it != end; ++it) run.emplace_back(std::move(it->second), es);
      waiters_.erase(begin, end);
    }
    int64_t now = MonotonicMillis();
    std::erase_if(unclaimed_,
                  [now](const auto& kv) { return now - kv.second.reaped_ms > kUnclaimedKeepMs; });
    for (auto& r : ready_) run.push_back(std::move(r));
    ready_.clear();
  }
  for (auto& [cb, es] : run) {
    if (cb) cb(es);
  }
}

Result<pid_t> Reaper::Spawn(const SpawnOptions& opts, std::function<void(ExitStatus)> on_exit) {
  return Spawn(opts, std::move(on_exit), nullptr);
}

Result<pid_t> Reaper::Spawn(const SpawnOptions& opts, std::function<void(ExitStatus)> on_exit,
                            UniqueFd* pidfd) {
  if (opts.argv.empty() || opts.argv[0].empty()) return InvalidArgument("spawn: empty argv");
  Start();
  // glibc's posix_spawnattr_setschedpolicy accepts no SCHED_IDLE, so the
  // child gets it from util-linux's chrt, and a nice value from coreutils'
  // nice, each of which then execs the command.
  std::vector<std::string> full_argv;
  if (opts.idle_priority) full_argv = {"chrt", "--idle", "0"};
  if (opts.nice != 0) {
    for (const char* w : {"nice", "-n"}) full_argv.emplace_back(w);
    full_argv.push_back(std::to_string(opts.nice));
  }
  full_argv.insert(full_argv.end(), opts.argv.begin(), opts.argv.end());
  const std::string& file = full_argv[0];
  std::vector<char*> argv = CStrings(full_argv);
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  char** env = environ;
  if (!opts.env.empty()) {
    env_storage = oci::MergedEnvironment(opts.env);
    envp = CStrings(env_storage);
    env = envp.data();
  }

  // The child's stdio are first duplicated above 2, so that dup2 onto 0/1/2
  // cannot clobber a source that is itself one of 0/1/2.
  SpawnSetup setup;
  const int sources[3] = {opts.stdin_fd, opts.stdout_fd, opts.stderr_fd};
  UniqueFd copies[3];
  for (int i = 0; i < 3; ++i) {
    if (sources[i] >= 0) {
      copies[i].Reset(fcntl(sources[i], F_DUPFD_CLOEXEC, 3));
      if (!copies[i].valid()) return ErrnoStatus("spawn " + file + ": dup fd", errno);
      posix_spawn_file_actions_adddup2(setup.actions(), copies[i].get(), i);
    } else {
      posix_spawn_file_actions_addopen(setup.actions(), i, "/dev/null",
                                       i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
  }
  if (!opts.cwd.empty()) posix_spawn_file_actions_addchdir_np(setup.actions(), opts.cwd.c_str());
  // Whatever a library opened without O_CLOEXEC stays out of the child.
  posix_spawn_file_actions_addclosefrom_np(setup.actions(), 3);

  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (opts.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(setup.attr(), 0);
  }
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(setup.attr(), &empty);
  posix_spawnattr_setsigdefault(setup.attr(), &all);  // sbxd ignores SIGPIPE; children must not
  posix_spawnattr_setflags(setup.attr(), flags);

  // Held until the child is registered, so the reaper cannot reap it first.
  std::lock_guard<std::mutex> lock(mu_);
  pid_t pid;
  int rc = file.find('/') == std::string::npos
               ? posix_spawnp(&pid, file.c_str(), setup.actions(), setup.attr(), argv.data(), env)
               : posix_spawn(&pid, file.c_str(), setup.actions(), setup.attr(), argv.data(), env);
  if (rc != 0) return ErrnoStatus("spawn " + file, rc);
  if (pidfd != nullptr) {
    pidfd->Reset(PidfdOpen(pid));
    if (!pidfd->valid()) {
      SBX_LOG(kWarning) << "pidfd_open " << pid << ": " << std::strerror(errno);
    }
  }
  unclaimed_.erase(pid);  // a stale record of an earlier process with this pid
  waiters_.emplace(pid, std::move(on_exit));
  return pid;
}

void Reaper::Watch(pid_t pid, std::function<void(ExitStatus)> on_exit) {
  Start();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = unclaimed_.find(pid);
    if (it != unclaimed_.end()) {
      ready_.emplace_back(std::move(on_exit), it->second.status);
      unclaimed_.erase(it);
    } else if (siginfo_t info{}; waitid(P_PID, static_cast<id_t>(pid), &info,
                                        WEXITED | WNOHANG | WNOWAIT | __WALL) == 0) {
      // Our child, running or a zombie: ReapChildren reports it.
      waiters_.emplace(pid, std::move(on_exit));
      return;
    } else {
      UniqueFd fd(PidfdOpen(pid));
      if (fd.valid()) {
        foreign_.push_back(
            std::make_shared<Foreign>(Foreign{pid, std::move(fd), std::move(on_exit)}));
      } else {
        ready_.emplace_back(std::move(on_exit), ExitStatus{});  // gone already
      }
    }
  }
  Wake();
}

// ---- ReaperCommandRunner ----

namespace {

// Blocks SIGPIPE in the calling thread while it writes to a child's stdin,
// and discards a SIGPIPE that the writes raised.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~ScopedSigpipeBlock() {
    if (!sigismember(&old_, SIGPIPE)) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE)) {
        timespec zero{};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
};

// Reads what is available; closes fd at EOF or on error.
void ReadAvailable(UniqueFd& fd, std::string& into) {
  char buf[kReadChunk];
  while (fd.valid()) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n > 0) {
      into.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      fd.Reset();
    }
  }
}

struct CommandExit {
  std::mutex mu;
  bool done = false;
  ExitStatus status;
  UniqueFd event;  // eventfd, readable once done
};

}  // namespace

Result<oci::CommandResult> ReaperCommandRunner::Run(const oci::CommandSpec& spec) {
  auto exit = std::make_shared<CommandExit>();
  exit->event.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!exit->event.valid()) return ErrnoStatus("eventfd", errno);
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  if (!spec.stdin_data.empty()) SBX_RETURN_IF_ERROR(MakePipe(&in_r, &in_w));
  if (spec.stdout_fd < 0) SBX_RETURN_IF_ERROR(MakePipe(&out_r, &out_w));
  if (spec.stderr_fd < 0) SBX_RETURN_IF_ERROR(MakePipe(&err_r, &err_w));

  Reaper::SpawnOptions opts;
  opts.argv = spec.argv;
  opts.cwd = spec.cwd;
  opts.stdin_fd = in_r.get();
  opts.stdout_fd = spec.stdout_fd >= 0 ? spec.stdout_fd : out_w.get();
  opts.stderr_fd = spec.stderr_fd >= 0 ? spec.stderr_fd : err_w.get();
  opts.new_process_group = true;
  opts.idle_priority = spec.idle_priority;
  opts.nice = spec.nice;
  opts.env = spec.env;
  SBX_ASSIGN_OR_RETURN(pid_t pid, Reaper::Get().Spawn(opts, [exit](ExitStatus st) {
    std::lock_guard<std::mutex> lock(exit->mu);
    exit->done = true;
    exit->status = st;
    uint64_t one = 1;
    ssize_t ignored = write(exit->event.get(), &one, sizeof(one));
    (void)ignored;
  }));
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  for (UniqueFd* fd : {&in_w, &out_r, &err_r}) {
    if (fd->valid()) SBX_RETURN_IF_ERROR(SetNonBlocking(fd->get()));
  }

  ScopedSigpipeBlock sigpipe_block;
  oci::CommandResult result;
  std::string_view to_write = spec.stdin_data;
  const int64_t deadline = spec.timeout.count() > 0 ? MonotonicMillis() + spec.timeout.count() : -1;
  bool exited = false;
  while (!exited) {
    pollfd fds[4];
    nfds_t n = 0;
    auto add = [&](const UniqueFd& fd, short events) -> pollfd* {
      if (!fd.valid()) return nullptr;
      fds[n] = pollfd{fd.get(), events, 0};
      return &fds[n++];
    };
    pollfd* out_p = add(out_r, POLLIN);
    pollfd* err_p = add(err_r, POLLIN);
    pollfd* in_p = add(in_w, POLLOUT);
    pollfd* exit_p = add(exit->event, POLLIN);
    int timeout_ms = -1;
    if (deadline >= 0 && !result.timed_out) {
      timeout_ms = static_cast<int>(std::max<int64_t>(0, deadline - MonotonicMillis()));
    }
    int ready = poll(fds, n, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("poll", errno);
    }
    if (ready == 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      in_w.Reset();
      continue;
    }
    if (out_p && out_p->revents) ReadAvailable(out_r, result.out);
    if (err_p && err_p->revents) ReadAvailable(err_r, result.err);
    if (in_p && in_p->revents) {
      while (!to_write.empty()) {
        ssize_t w = write(in_w.get(), to_write.data(), to_write.size());
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        if (w < 0) {
          to_write = {};  // the child closed its stdin (EPIPE): the rest is dropped
          break;
        }
        to_write.remove_prefix(static_cast<size_t>(w));
      }
      if (to_write.empty()) in_w.Reset();
    }
    if (exit_p && exit_p->revents) exited = true;
  }
  // Everything the process wrote before it exited is in the pipes now.
  ReadAvailable(out_r, result.out);
  ReadAvailable(err_r, result.err);
  std::lock_guard<std::mutex> lock(exit->mu);
  result.exit_code = exit->status.exit_code;
  result.term_signal = exit->status.term_signal;
  return result;
}

// ---- StreamingProcess ----

namespace {

// Carries the exit status from the reaper thread to the loop, unless the
// StreamingProcess is gone by then.
template <typename Impl>
struct ExitRelay {
  std::mutex mu;
  EventLoop* loop = nullptr;  // null once the process object is destroyed
  std::weak_ptr<Impl> impl;
};

}  // namespace

struct StreamingProcess::Impl : std::enable_shared_from_this<StreamingProcess::Impl> {
  struct StdinWrite {
    uv_write_t req;
    std::string data;
    std::weak_ptr<Impl> impl;
  };

  EventLoop* loop = nullptr;
  pid_t pid = -1;
  UniqueFd pidfd;
  uv_pipe_t* in = nullptr;
  uv_pipe_t* out = nullptr;
  uv_pipe_t* err = nullptr;
  OutputFn on_output;
  std::function<void(ExitStatus)> on_exit;
  std::shared_ptr<ExitRelay<Impl>> relay = std::make_shared<ExitRelay<Impl>>();
  std::unique_ptr<char[]> buffer = std::make_unique<char[]>(kReadChunk);

  bool have_status = false;
  ExitStatus status;
  bool finished = false;
  bool stopped = false;
  int pending_writes = 0;
  bool stdin_closing = false;
  uint64_t grace_timer = 0;

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* impl = static_cast<Impl*>(handle->data);
    *buf = uv_buf_init(impl->buffer.get(), kReadChunk);
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* impl = static_cast<Impl*>(stream->data);
    std::shared_ptr<Impl> self = impl->shared_from_this();  // callbacks may drop the owner
    int fd = stream == reinterpret_cast<uv_stream_t*>(impl->out) ? 1 : 2;
    if (nread > 0) {
      if (impl->on_output)
        impl->on_output(fd, std::string_view(buf->base, static_cast<size_t>(nread)));
      return;
    }
    if (nread == 0) return;
    uv_pipe_t*& pipe = fd == 1 ? impl->out : impl->err;
    CloseAndDelete(pipe);
    pipe = nullptr;
    impl->MaybeFinish();
  }

  void OnExit(ExitStatus st) {
    if (stopped || have_status) return;
    have_status = true;
    status = st;
    MaybeFinish();
    if (!finished && !stopped) {
      grace_timer = loop->AddTimer(kDrainGrace, [weak = weak_from_this()] {
        auto self = weak.lock();
        if (!self) return;
        self->grace_timer = 0;
        self->CloseOutputs();
        self->MaybeFinish();
      });
    }
  }

  void CloseOutputs() {
    for (uv_pipe_t** pipe : {&out, &err}) {
      if (*pipe != nullptr) CloseAndDelete(*pipe);
      *pipe = nullptr;
    }
  }

  void CloseStdinNow() {
    if (in != nullptr) CloseAndDelete(in);
    in = nullptr;
  }

  void MaybeFinish() {
    if (finished || stopped || !have_status || out != nullptr || err != nullptr) return;
    finished = true;
    if (grace_timer != 0) loop->CancelTimer(grace_timer);
    grace_timer = 0;
    CloseStdinNow();
    auto cb = std::move(on_exit);
    on_exit = nullptr;
    if (cb) cb(status);  // may destroy the owner; nothing touches *this after
  }

  void Stop() {
    stopped = true;
    {
      std::lock_guard<std::mutex> lock(relay->mu);
      relay->loop = nullptr;
    }
    if (!have_status) Signal(SIGKILL);
    if (grace_timer != 0) loop->CancelTimer(grace_timer);
    grace_timer = 0;
    CloseOutputs();
    CloseStdinNow();
    on_output = nullptr;
    on_exit = nullptr;
  }

  void Signal(int sig) {
    if (pidfd.valid()) {
      PidfdSendSignal(pidfd.get(), sig);
    } else if (!have_status) {
      kill(pid, sig);
    }
  }

  Status OpenPipe(UniqueFd fd, uv_pipe_t** handle) {
    auto* pipe = new uv_pipe_t;
    SBX_CHECK(uv_pipe_init(loop->uv(), pipe, 0) == 0);
    pipe->data = this;
    int rc = uv_pipe_open(pipe, fd.get());
    if (rc != 0) {
      CloseAndDelete(pipe);
      return Internal(std::string("uv_pipe_open: ") + uv_strerror(rc));
    }
    fd.Release();  // the handle owns it now
    *handle = pipe;
    return Status::Ok();
  }
};

Result<std::unique_ptr<StreamingProcess>> StreamingProcess::Start(
    EventLoop& loop, const Reaper::SpawnOptions& opts, OutputFn on_output,
    std::function<void(ExitStatus)> on_exit) {
  auto impl = std::make_shared<Impl>();
  impl->loop = &loop;
  impl->on_output = std::move(on_output);
  impl->on_exit = std::move(on_exit);
  impl->relay->loop = &loop;
  impl->relay->impl = impl;

  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  SBX_RETURN_IF_ERROR(MakePipe(&in_r, &in_w));
  SBX_RETURN_IF_ERROR(MakePipe(&out_r, &out_w));
  SBX_RETURN_IF_ERROR(MakePipe(&err_r, &err_w));
  Reaper::SpawnOptions spawn = opts;
  spawn.stdin_fd = in_r.get();
  spawn.stdout_fd = out_w.get();
  spawn.stderr_fd = err_w.get();
  auto relay = impl->relay;
  SBX_ASSIGN_OR_RETURN(impl->pid, Reaper::Get().Spawn(
                                      spawn,
                                      [relay](ExitStatus st) {
                                        std::lock_guard<std::mutex> lock(relay->mu);
                                        if (relay->loop == nullptr) return;
                                        relay->loop->Post([impl = relay->impl, st] {
                                          if (auto i = impl.lock()) i->OnExit(st);
                                        });
                                      },
                                      &impl->pidfd));
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  auto process = std::unique_ptr<StreamingProcess>(new StreamingProcess(impl));
  // From here on the destructor kills the child if setting up the pipes fails.
  SBX_RETURN_IF_ERROR(impl->OpenPipe(std::move(in_w), &impl->in));
  SBX_RETURN_IF_ERROR(impl->OpenPipe(std::move(out_r), &impl->out));
  SBX_RETURN_IF_ERROR(impl->OpenPipe(std::move(err_r), &impl->err));
  for (uv_pipe_t* pipe : {impl->out, impl->err}) {
    int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(pipe), &Impl::OnAlloc, &Impl::OnRead);
    if (rc != 0) return Internal(std::string("uv_read_start: ") + uv_strerror(rc));
  }
  return process;
}

StreamingProcess::~StreamingProcess() { impl_->Stop(); }

pid_t StreamingProcess::pid() const { return impl_->pid; }

bool StreamingProcess::exited() const { return impl_->have_status; }

void StreamingProcess::Kill(int signal) { impl_->Signal(signal); }

bool StreamingProcess::WriteStdin(std::string data) {
  Impl& impl = *impl_;
  if (impl.in == nullptr || impl.stdin_closing || impl.finished) return false;
  if (data.empty()) return true;
  auto* w = new Impl::StdinWrite;
  w->data = std::move(data);
  w->impl = impl_;
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), w->data.size());
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(impl.in), &buf, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = static_cast<Impl::StdinWrite*>(req->data);
                      auto impl = w->impl.lock();
                      delete w;
                      if (!impl) return;
                      --impl->pending_writes;
                      // EPIPE: the child closed its stdin.
                      if (status < 0 || (impl->stdin_closing && impl->pending_writes == 0)) {
                        impl->CloseStdinNow();
                      }
                    });
  if (rc != 0) {
    delete w;
    impl.CloseStdinNow();
    return false;
  }
  ++impl.pending_writes;
  return true;
}

void StreamingProcess::CloseStdin() {
  Impl& impl = *impl_;
  if (impl.in == nullptr) return;
  impl.stdin_closing = true;
  if (impl.pending_writes == 0) impl.CloseStdinNow();
}

}  // namespace sbx::daemon
