#include "daemon/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "common/strings.h"
#include "tests/daemon/loop_thread.h"

namespace sbx::daemon {
namespace {

using namespace std::chrono_literals;

Reaper::SpawnOptions Argv(std::vector<std::string> argv) {
  Reaper::SpawnOptions opts;
  opts.argv = std::move(argv);
  return opts;
}

// Spawns argv and waits (up to 10 s) for its exit status.
ExitStatus SpawnAndWait(Reaper::SpawnOptions opts) {
  std::promise<ExitStatus> done;
  auto pid = Reaper::Get().Spawn(opts, [&done](ExitStatus st) { done.set_value(st); });
  EXPECT_TRUE(pid.ok()) << pid.status().ToString();
  if (!pid.ok()) return {};
  auto f = done.get_future();
  if (f.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "no exit status";
    return {};
  }
  return f.get();
}

ExitStatus WatchAndWait(pid_t pid, std::chrono::seconds limit = 10s) {
  std::promise<ExitStatus> done;
  Reaper::Get().Watch(pid, [&done](ExitStatus st) { done.set_value(st); });
  auto f = done.get_future();
  if (f.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << "no exit status for " << pid;
    return {};
  }
  return f.get();
}

// Runs a shell snippet through the ReaperCommandRunner.
oci::CommandResult Shell(const std::string& script, oci::CommandSpec spec = {}) {
  spec.argv = {"sh", "-c", script};
  auto result = ReaperCommandRunner().Run(spec);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : oci::CommandResult{};
}

bool ProcessGone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(ExitStatusTest, CodeIsExitCodeOr128PlusSignal) {
  EXPECT_EQ((ExitStatus{3, 0}).Code(), 3);
  EXPECT_EQ((ExitStatus{-1, SIGKILL}).Code(), 137);
}

TEST(ReaperTest, SpawnReportsTheExitCode) {
  ExitStatus st = SpawnAndWait(Argv({"sh", "-c", "exit 7"}));
  EXPECT_EQ(st.exit_code, 7);
  EXPECT_EQ(st.term_signal, 0);
}

TEST(ReaperTest, SpawnReportsTheTerminatingSignal) {
  ExitStatus st = SpawnAndWait(Argv({"sh", "-c", "kill -TERM $$"}));
  EXPECT_EQ(st.exit_code, -1);
  EXPECT_EQ(st.term_signal, SIGTERM);
  EXPECT_EQ(st.Code(), 143);
}

TEST(ReaperTest, SpawnOfAMissingProgramFailsWithoutCallback) {
  bool called = false;
  auto by_path =
      Reaper::Get().Spawn(Argv({"/nonexistent/sbx-test"}), [&](ExitStatus) { called = true; });
  EXPECT_FALSE(by_path.ok());
  auto by_name =
      Reaper::Get().Spawn(Argv({"sbx-no-such-command"}), [&](ExitStatus) { called = true; });
  EXPECT_FALSE(by_name.ok());
  EXPECT_FALSE(Reaper::Get().Spawn({}, [&](ExitStatus) { called = true; }).ok());
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(called);
}

TEST(ReaperTest, ChildGetsNoDescriptorButItsStdio) {
  int leaky = open("/dev/null", O_RDONLY);  // without O_CLOEXEC on purpose
  ASSERT_GE(leaky, 0);
  std::promise<ExitStatus> done;
  auto pid = Reaper::Get().Spawn(Argv({"sleep", "10"}), [&](ExitStatus st) { done.set_value(st); });
  close(leaky);
  ASSERT_TRUE(pid.ok());
  auto fds = ListDir("/proc/" + std::to_string(*pid) + "/fd");
  kill(*pid, SIGKILL);
  ASSERT_TRUE(fds.ok()) << fds.status().ToString();
  EXPECT_EQ(*fds, (std::vector<std::string>{"0", "1", "2"}));
  auto f = done.get_future();
  EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
}

TEST(ReaperTest, ChildGetsTheEnvironmentOverlayAndWorkingDirectory) {
  char dir[] = "/tmp/sbx-proc-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  Reaper::SpawnOptions opts = Argv({"sh", "-c", "echo $SBX_TEST_VAR $HOME; pwd"});
  opts.env = {"SBX_TEST_VAR=overlay"};
  opts.cwd = dir;
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  opts.stdout_fd = out[1];
  SpawnAndWait(opts);
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  rmdir(dir);
  const char* home = getenv("HOME");
  EXPECT_EQ(text, std::string("overlay ") + (home ? home : "") + "\n" + dir + "\n");
}

TEST(ReaperTest, ChildLeadsANewProcessGroup) {
  std::promise<ExitStatus> done;
  auto pid = Reaper::Get().Spawn(Argv({"sleep", "10"}), [&](ExitStatus st) { done.set_value(st); });
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(getpgid(*pid), *pid);
  kill(*pid, SIGKILL);
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get().term_signal, SIGKILL);
}

TEST(ReaperTest, OrphanedGrandchildIsReparentedAndReaped) {
  // sh exits at once; its background sleep is reparented to us (subreaper).
  auto start = std::chrono::steady_clock::now();
  oci::CommandResult r = Shell("sleep 1 & echo $!");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms)
      << "the runner must not wait for a descendant holding its stdout";
  pid_t orphan = std::stoi(r.out);
  ExitStatus st = WatchAndWait(orphan);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_TRUE(ProcessGone(orphan)) << "left as a zombie";
}

TEST(ReaperTest, WatchAfterTheReapStillGetsTheStatus) {
  // The grandchild outlives sh, so that we, not sh, reap it.
  oci::CommandResult r = Shell("sh -c 'sleep 0.2; exit 5' & echo $!");
  pid_t orphan = std::stoi(r.out);
  ASSERT_TRUE(ProcessGone(orphan));  // reaped with nobody watching
  ExitStatus st = WatchAndWait(orphan, 1s);
  EXPECT_EQ(st.exit_code, 5);
}

TEST(ReaperTest, WatchOfAProcessThatIsNotOurChildReportsUnknownStatus) {
  // pid_max - 1 is almost certainly unused: it is gone, hence reported at once.
  auto max = ReadFile("/proc/sys/kernel/pid_max");
  ASSERT_TRUE(max.ok());
  ExitStatus st = WatchAndWait(std::stoi(*max) - 1, 2s);
  EXPECT_EQ(st, ExitStatus{});
}

TEST(ReaperCommandRunnerTest, CapturesOutputAndExitCode) {
  oci::CommandResult r = Shell("echo out; echo err >&2; exit 4");
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.timed_out);
}

TEST(ReaperCommandRunnerTest, FeedsLargeStdinWhileReadingLargeOutput) {
  oci::CommandSpec spec;
  spec.stdin_data = std::string(4 << 20, 'x');
  oci::CommandResult r = Shell("cat; cat /dev/null >&2", spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.size(), spec.stdin_data.size());
  EXPECT_TRUE(r.out == spec.stdin_data);
}

// Field 41 of /proc/PID/stat is the scheduling policy; SCHED_IDLE is 5.
TEST(ReaperCommandRunnerTest, IdlePriorityRunsTheCommandUnderSchedIdle) {
  oci::CommandSpec spec;
  spec.idle_priority = true;
  EXPECT_EQ(Shell("cut -d' ' -f41 /proc/self/stat", spec).out, "5\n");
  EXPECT_EQ(Shell("cut -d' ' -f41 /proc/self/stat").out, "0\n");
}

// Field 19 is the nice value.
TEST(ReaperCommandRunnerTest, NiceIsAddedToTheCommandsNiceValue) {
  const std::string own = Shell("cut -d' ' -f19 /proc/self/stat").out;
  oci::CommandSpec spec;
  spec.nice = 10;
  EXPECT_EQ(Shell("cut -d' ' -f19 /proc/self/stat", spec).out,
            std::to_string(std::stoi(own) + 10) + "\n");
  spec.idle_priority = true;
  EXPECT_EQ(Shell("cut -d' ' -f41,19 --output-delimiter=, /proc/self/stat", spec).out,
            std::to_string(std::stoi(own) + 10) + ",5\n");
}

TEST(ReaperCommandRunnerTest, ChildIgnoringStdinDoesNotRaiseSigpipe) {
  oci::CommandSpec spec;
  spec.stdin_data = std::string(4 << 20, 'x');
  oci::CommandResult r = Shell("exec 0<&-; echo done", spec);
  EXPECT_EQ(r.out, "done\n");
  EXPECT_EQ(r.exit_code, 0);
}

TEST(ReaperCommandRunnerTest, TimeoutKillsTheWholeProcessGroup) {
  oci::CommandSpec spec;
  spec.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  oci::CommandResult r = Shell("sleep 30 & echo $!; wait", spec);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(r.exit_code, -1);
  pid_t background = std::stoi(r.out);
  ExitStatus st = WatchAndWait(background);
  EXPECT_EQ(st.term_signal, SIGKILL);
}

TEST(ReaperCommandRunnerTest, RedirectedOutputIsNotCaptured) {
  char path[] = "/tmp/sbx-out-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  oci::CommandSpec spec;
  spec.stdout_fd = fd;
  oci::CommandResult r = Shell("echo to-file; echo to-pipe >&2", spec);
  close(fd);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "to-pipe\n");
  auto content = ReadFile(path);
  unlink(path);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "to-file\n");
}

TEST(ReaperCommandRunnerTest, RunsInTheGivenDirectory) {
  oci::CommandSpec spec;
  spec.cwd = "/proc";
  EXPECT_EQ(Shell("pwd", spec).out, "/proc\n");
}

// Collects a StreamingProcess's output and exit on the loop.
struct Session {
  std::string out, err;
  std::vector<std::string> events;  // "out", "err", "exit" in arrival order, merged
  std::promise<ExitStatus> exited;
  std::unique_ptr<StreamingProcess> process;
};

// Starts argv as s.process, on the loop thread.
Status StartSession(LoopThread& lt, Session& s, std::vector<std::string> argv) {
  return lt.Call([&]() -> Status {
    auto p = StreamingProcess::Start(
        lt.loop(), Argv(std::move(argv)),
        [&s](int fd, std::string_view data) {
          (fd == 1 ? s.out : s.err).append(data);
          s.events.push_back(fd == 1 ? "out" : "err");
        },
        [&s](ExitStatus st) {
          s.events.push_back("exit");
          s.exited.set_value(st);
        });
    if (!p.ok()) return p.status();
    s.process = std::move(*p);
    return Status::Ok();
  });
}

std::optional<ExitStatus> WaitForExit(Session& s) {
  auto f = s.exited.get_future();
  if (f.wait_for(10s) != std::future_status::ready) return std::nullopt;
  return f.get();
}

TEST(StreamingProcessTest, DeliversStdoutStderrAndStdinThenExit) {
  LoopThread lt;
  Session s;
  Status st = StartSession(
      lt, s, {"sh", "-c", "echo out1; echo err1 >&2; read x; echo got:$x; echo err2 >&2; exit 3"});
  ASSERT_TRUE(st.ok()) << st.ToString();
  lt.Call([&] {
    EXPECT_TRUE(s.process->WriteStdin("hel"));
    EXPECT_TRUE(s.process->WriteStdin("lo\n"));
    s.process->CloseStdin();
    EXPECT_FALSE(s.process->WriteStdin("late"));
    return 0;
  });
  auto exit = WaitForExit(s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 3);
  lt.Call([&] {
    EXPECT_EQ(s.out, "out1\ngot:hello\n");
    EXPECT_EQ(s.err, "err1\nerr2\n");
    EXPECT_EQ(s.events.back(), "exit");
    EXPECT_TRUE(s.process->exited());
    s.process.reset();
    return 0;
  });
}

TEST(StreamingProcessTest, ExitIsReportedOnlyAfterAllOutputWasRead) {
  LoopThread lt;
  Session s;
  ASSERT_TRUE(StartSession(lt, s, {"sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' a"}).ok());
  auto exit = WaitForExit(s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 0);
  lt.Call([&] {
    EXPECT_EQ(s.out.size(), 3000000u);
    EXPECT_EQ(s.events.back(), "exit");
    s.process.reset();
    return 0;
  });
}

TEST(StreamingProcessTest, KillEndsTheProcessWithTheSignal) {
  LoopThread lt;
  Session s;
  ASSERT_TRUE(StartSession(lt, s, {"sleep", "30"}).ok());
  lt.Call([&] {
    s.process->Kill(SIGTERM);
    return 0;
  });
  auto exit = WaitForExit(s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->term_signal, SIGTERM);
  lt.Call([&] {
    s.process->Kill(SIGKILL);  // after the exit: harmless
    s.process.reset();
    return 0;
  });
}

TEST(StreamingProcessTest, DescendantHoldingStdoutDelaysExitOnlyByTheGrace) {
  LoopThread lt;
  Session s;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(StartSession(lt, s, {"sh", "-c", "echo before; sleep 20 & exit 0"}).ok());
  auto exit = WaitForExit(s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  lt.Call([&] {
    EXPECT_EQ(s.out, "before\n");
    s.process.reset();
    return 0;
  });
}

TEST(StreamingProcessTest, DestroyingItKillsTheProcessAndSilencesCallbacks) {
  LoopThread lt;
  Session s;
  ASSERT_TRUE(StartSession(lt, s, {"sleep", "30"}).ok());
  pid_t pid = lt.Call([&] {
    pid_t pid = s.process->pid();
    s.process.reset();
    return pid;
  });
  EXPECT_TRUE(ProcessGone(pid));
  lt.Call([&] { return 0; });
  EXPECT_TRUE(s.events.empty());
}

TEST(StreamingProcessTest, CallbackMayDestroyTheProcess) {
  LoopThread lt;
  Session s;
  pid_t pid = lt.Call([&] {
    auto p = StreamingProcess::Start(
        lt.loop(), Argv({"sh", "-c", "echo a; sleep 30"}),
        [&s](int, std::string_view) {
          s.process.reset();  // the first output ends the session
          s.exited.set_value({});
        },
        [](ExitStatus) { ADD_FAILURE() << "no exit callback after destruction"; });
    EXPECT_TRUE(p.ok());
    if (!p.ok()) return pid_t{-1};
    s.process = std::move(*p);
    return s.process->pid();
  });
  ASSERT_GT(pid, 0);
  auto f = s.exited.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(ProcessGone(pid));
}

}  // namespace
}  // namespace sbx::daemon
