// SimpleCommandRunner: exit codes, signals, capture, stdin, timeouts, and
// descendants that keep the output pipes open.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "common/fs.h"
#include "common/strings.h"
#include "oci/command.h"
#include "oci/runsc.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::oci {
namespace {

using std::chrono::milliseconds;

Result<CommandResult> Sh(const std::string& script, milliseconds timeout = milliseconds(0),
                         std::string stdin_data = "") {
  SimpleCommandRunner runner;
  CommandSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.timeout = timeout;
  spec.stdin_data = std::move(stdin_data);
  return runner.Run(spec);
}

TEST(SimpleCommandRunnerTest, CapturesOutputAndExitCode) {
  auto r = Sh("echo out; echo err >&2; exit 3");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->term_signal, 0);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->ok());
}

// Field 41 of /proc/PID/stat is the scheduling policy; SCHED_IDLE is 5.
TEST(SimpleCommandRunnerTest, IdlePriorityRunsTheCommandUnderSchedIdle) {
  for (bool idle : {true, false}) {
    CommandSpec spec;
    spec.argv = {"/bin/sh", "-c", "cut -d' ' -f41 /proc/self/stat"};
    spec.idle_priority = idle;
    auto r = SimpleCommandRunner().Run(spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->out, idle ? "5\n" : "0\n");
  }
}

// Field 19 is the nice value.
TEST(SimpleCommandRunnerTest, NiceIsAddedToTheCommandsNiceValue) {
  CommandSpec spec;
  spec.argv = {"/bin/sh", "-c", "cut -d' ' -f19 /proc/self/stat"};
  auto own = SimpleCommandRunner().Run(spec);
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  spec.nice = 10;
  auto r = SimpleCommandRunner().Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->out, std::to_string(std::stoi(own->out) + 10) + "\n");
}

// The runsc netns workaround: the command sees a /proc/sys with only
// vm/mmap_min_addr (the value given), and the host's /proc/sys is untouched.
TEST(WithProcSysMaskTest, CommandSeesOnlyMmapMinAddr) {
  if (::geteuid() != 0) {
    if (runsc_testing::InCi()) FAIL() << "needs root (CI=true)";
    GTEST_SKIP() << "needs root";
  }
  CommandSpec spec;
  spec.argv = WithProcSysMask({"/bin/sh", "-c", "ls -A /proc/sys; cat /proc/sys/vm/mmap_min_addr; "
                                                "ls /proc/sys/net 2>/dev/null || echo no-net"},
                              "65536");
  auto r = SimpleCommandRunner().Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "vm\n65536\nno-net\n");
  EXPECT_TRUE(PathExists("/proc/sys/net/core"));
}

TEST(SimpleCommandRunnerTest, ReportsTerminatingSignal) {
  auto r = Sh("kill -TERM $$");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->term_signal, SIGTERM);
}

TEST(SimpleCommandRunnerTest, FeedsStdinAndClosesIt) {
  std::string big(300000, 'x');  // larger than a pipe buffer
  auto r = Sh("wc -c", milliseconds(0), big);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(std::string(Trim(r->out)), "300000");
}

TEST(SimpleCommandRunnerTest, StdinIsDevNullWithoutData) {
  auto r = Sh("cat; echo done");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "done\n");
}

TEST(SimpleCommandRunnerTest, ChildThatIgnoresStdinDoesNotKillTheCaller) {
  std::string big(1 << 20, 'x');
  auto r = Sh("exit 0", milliseconds(0), big);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
}

TEST(SimpleCommandRunnerTest, TimeoutKillsTheWholeProcessGroup) {
  char dir_template[] = "/tmp/sbx-cmd-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string pid_file = std::string(dir_template) + "/child.pid";
  auto start = std::chrono::steady_clock::now();
  auto r = Sh("sleep 30 & echo $! > " + pid_file + "; wait", milliseconds(300));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->term_signal, SIGKILL);
  EXPECT_LT(took, std::chrono::seconds(5));
  auto pid_text = ReadFile(pid_file);
  ASSERT_TRUE(pid_text.ok());
  pid_t child = std::atoi(pid_text->c_str());
  ASSERT_GT(child, 0);
  // The grandchild was in the group; give init a moment to reap it.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !runsc_testing::ProcessAlive(child);
    if (!gone) ::usleep(10000);
  }
  EXPECT_TRUE(gone) << "sleep " << child << " survived the timeout";
  (void)RemoveAll(dir_template);
}

TEST(SimpleCommandRunnerTest, ReturnsWhenChildExitsEvenIfADescendantHoldsThePipes) {
  // As `runsc create` does: a setsid'd descendant inherits stdout and lives on.
  char dir_template[] = "/tmp/sbx-cmd-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string pid_file = std::string(dir_template) + "/daemon.pid";
  auto start = std::chrono::steady_clock::now();
  auto r = Sh("echo before; setsid sh -c 'echo $$ > " + pid_file +
              "; exec sleep 30' & "
              "while [ ! -s " +
              pid_file + " ]; do sleep 0.01; done; exit 5");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 5);
  EXPECT_EQ(r->out, "before\n");
  EXPECT_LT(took, std::chrono::seconds(5));
  auto pid_text = ReadFile(pid_file);
  ASSERT_TRUE(pid_text.ok());
  ::kill(std::atoi(pid_text->c_str()), SIGKILL);
  (void)RemoveAll(dir_template);
}

TEST(SimpleCommandRunnerTest, RedirectsToGivenDescriptors) {
  char path[] = "/tmp/sbx-cmd-out-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  SimpleCommandRunner runner;
  CommandSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo to-file; echo err-too >&2"};
  spec.stdout_fd = fd;
  spec.stderr_fd = fd;
  auto r = runner.Run(spec);
  ::close(fd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "");
  EXPECT_EQ(r->err, "");
  EXPECT_EQ(*ReadFile(path), "to-file\nerr-too\n");
  ::unlink(path);
}

TEST(SimpleCommandRunnerTest, RunsInGivenDirectoryAndFindsArgv0InPath) {
  SimpleCommandRunner runner;
  CommandSpec spec;
  spec.argv = {"pwd"};
  spec.cwd = "/usr";
  auto r = runner.Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->out, "/usr\n");
}

TEST(SimpleCommandRunnerTest, DoesNotLeakDescriptorsIntoTheChild) {
  int fd = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, 100), 100);
  ::close(fd);
  auto r = Sh("ls /proc/self/fd");
  ::close(100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.find("100\n"), std::string::npos) << r->out;
}

TEST(SimpleCommandRunnerTest, MissingBinaryIsNotFound) {
  SimpleCommandRunner runner;
  CommandSpec spec;
  spec.argv = {"/nonexistent/runsc", "--version"};
  auto r = runner.Run(spec);
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  spec.argv = {"sbx-no-such-binary-anywhere"};
  EXPECT_EQ(runner.Run(spec).status().code(), Code::kNotFound);
  spec.argv = {};
  EXPECT_EQ(runner.Run(spec).status().code(), Code::kInvalidArgument);
}

TEST(SimpleCommandRunnerTest, BadWorkingDirectoryIsAnError) {
  SimpleCommandRunner runner;
  CommandSpec spec;
  spec.argv = {"/bin/true"};
  spec.cwd = "/nonexistent-dir";
  EXPECT_EQ(runner.Run(spec).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sbx::oci
