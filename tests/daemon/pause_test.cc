// sbx-pause --seccomp-exec on the host: the command runs under the profile's
// filter with its stdin, output and exit code passed through, and never runs
// when the filter cannot be read or loaded. (In a sandbox: the Pods tests.)
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "oci/command.h"
#include "oci/seccomp.h"

namespace sbx::daemon {
namespace {

const char kPause[] = SBX_TEST_PAUSE_BINARY;

class SeccompExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-pause-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    no_mkdir_ = WriteProgram("no-mkdir.bpf", R"({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})");
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  std::string WriteProgram(const std::string& name, const std::string& profile) {
    auto program = oci::CompileSeccompBpf(oci::Json::parse(profile), name);
    EXPECT_TRUE(program.ok()) << program.status().ToString();
    std::string path = JoinPath(dir_, name);
    EXPECT_TRUE(WriteFileAtomic(path, program.ok() ? *program : "", 0644).ok());
    return path;
  }

  oci::CommandResult Run(std::vector<std::string> argv, std::string stdin_data = "") {
    oci::CommandSpec spec;
    spec.argv = std::move(argv);
    spec.argv.insert(spec.argv.begin(), kPause);
    spec.stdin_data = std::move(stdin_data);
    spec.timeout = std::chrono::seconds(10);
    auto r = oci::SimpleCommandRunner().Run(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : oci::CommandResult{};
  }

  std::string dir_, no_mkdir_;
};

TEST_F(SeccompExecTest, CommandRunsUnderTheFilter) {
  std::string target = JoinPath(dir_, "d");
  oci::CommandResult r = Run({"--seccomp-exec", no_mkdir_, "--", "mkdir", target});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
  EXPECT_FALSE(IsDirectory(target));
  // The filter is inherited by the command's children.
  r = Run({"--seccomp-exec", no_mkdir_, "--", "sh", "-c",
           "grep Seccomp: /proc/self/status; mkdir " + target});
  EXPECT_NE(r.out.find("Seccomp:\t2"), std::string::npos) << r.out;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(IsDirectory(target));
  // Other syscalls are allowed.
  r = Run({"--seccomp-exec", no_mkdir_, "--", "touch", JoinPath(dir_, "f")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(SeccompExecTest, StdioAndExitCodePassThrough) {
  oci::CommandResult r = Run({"--seccomp-exec", no_mkdir_, "--", "sh", "-c",
                              "read line; echo \"got $line\"; echo oops >&2; exit 7"},
                             "hello\n");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.out, "got hello\n");
  EXPECT_EQ(r.err, "oops\n");
}

TEST_F(SeccompExecTest, NeverRunsTheCommandUnconfined) {
  const std::string marker = JoinPath(dir_, "ran");
  const std::string truncated = JoinPath(dir_, "truncated.bpf");
  ASSERT_TRUE(WriteFileAtomic(truncated, std::string(12, '\0'), 0644).ok());
  const std::string empty = JoinPath(dir_, "empty.bpf");
  ASSERT_TRUE(WriteFileAtomic(empty, "", 0644).ok());
  // A whole number of instructions that the kernel refuses (a jump past
  // the end of the program).
  const std::string invalid = JoinPath(dir_, "invalid.bpf");
  ASSERT_TRUE(WriteFileAtomic(invalid, std::string("\x05\x00\x00\x00\x10\x00\x00\x00", 8), 0644)
                  .ok());
  struct Case {
    std::string file, want;
  } cases[] = {
      {JoinPath(dir_, "missing.bpf"), "No such file or directory"},
      {truncated, "12 bytes is not a BPF program"},
      {empty, "0 bytes is not a BPF program"},
      {invalid, "loading seccomp filter"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    oci::CommandResult r = Run({"--seccomp-exec", c.file, "--", "touch", marker});
    EXPECT_EQ(r.exit_code, 127);
    EXPECT_NE(r.err.find(c.want), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.file), std::string::npos) << r.err;
    EXPECT_NE(::access(marker.c_str(), F_OK), 0);
  }
}

TEST_F(SeccompExecTest, MissingCommandAndBadUsageExit127) {
  oci::CommandResult r = Run({"--seccomp-exec", no_mkdir_, "--", "no-such-command-sbx"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("exec no-such-command-sbx: No such file or directory"), std::string::npos)
      << r.err;
  r = Run({"--seccomp-exec", no_mkdir_, "--", dir_});
  EXPECT_EQ(r.exit_code, 126) << r.err;
  for (std::vector<std::string> argv : {std::vector<std::string>{"--seccomp-exec", no_mkdir_, "--"},
                                        {"--seccomp-exec", no_mkdir_, "true"},
                                        {"--bogus"}}) {
    r = Run(argv);
    EXPECT_EQ(r.exit_code, 127);
    EXPECT_NE(r.err.find("usage: sbx-pause"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace sbx::daemon
