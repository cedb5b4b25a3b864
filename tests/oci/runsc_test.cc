// RunscClient argv rendering and parsing of runsc output. The outputs below
// were captured from runsc release-20240729 (Debian backports) on Linux 6.18.
#include "oci/runsc.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <string>
#include <vector>

namespace sbx::oci {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

RunscClient FullClient() {
  RunscConfig c;
  c.binary = "/usr/bin/runsc";
  c.root = "/run/sbx/runsc";
  c.platform = "systrap";
  c.network = "none";
  c.overlay2 = "root:memory";
  c.ignore_cgroups = true;
  c.debug_log_dir = "/var/log/sbx/runsc";
  c.extra_flags = {"--host-uds=none"};
  return RunscClient(c);
}

const std::vector<std::string> kGlobals = {
    "/usr/bin/runsc", "--root=/run/sbx/runsc",           "--platform=systrap",
    "--network=none", "--overlay2=root:memory",          "--ignore-cgroups",
    "--debug",        "--debug-log=/var/log/sbx/runsc/", "--host-uds=none"};

std::vector<std::string> WithGlobals(std::vector<std::string> tail) {
  std::vector<std::string> v = kGlobals;
  v.insert(v.end(), tail.begin(), tail.end());
  return v;
}

TEST(RunscArgvTest, EveryVerbRepeatsTheSameGlobalFlags) {
  RunscClient c = FullClient();
  const std::string id = "sbx-0123456789abcdef0123456789ab";
  EXPECT_EQ(c.Create(id, "/b/x", "/b/x/pid"),
            WithGlobals({"--log=/b/x/runsc-error.log", "--log-format=json", "create",
                         "--bundle=/b/x", "--pid-file=/b/x/pid", id}));
  EXPECT_EQ(c.Start(id), WithGlobals({"start", id}));
  EXPECT_EQ(c.Start(id, "/b/x/start.log"),
            WithGlobals({"--log=/b/x/start.log", "--log-format=json", "start", id}));
  EXPECT_EQ(c.State(id), WithGlobals({"state", id}));
  EXPECT_EQ(c.List(), WithGlobals({"list", "--format=json"}));
  EXPECT_EQ(c.Kill(id, SIGKILL), WithGlobals({"kill", id, "9"}));
  EXPECT_EQ(c.Kill(id, SIGTERM, /*all=*/true), WithGlobals({"kill", "--all", id, "15"}));
  EXPECT_EQ(c.Delete(id, false), WithGlobals({"delete", id}));
  EXPECT_EQ(c.Delete(id, true), WithGlobals({"delete", "--force", id}));
  EXPECT_EQ(c.Wait(id), WithGlobals({"wait", id}));
  EXPECT_EQ(c.Ps(id), WithGlobals({"ps", "--format=json", id}));
  EXPECT_EQ(c.Version(), (std::vector<std::string>{"/usr/bin/runsc", "--version"}));
  EXPECT_EQ(c.Flags(), (std::vector<std::string>{"/usr/bin/runsc", "flags"}));
}

TEST(RunscArgvTest, CreateWithoutPidFileOmitsTheFlag) {
  RunscConfig cfg;
  cfg.root = "/r";
  cfg.platform = "ptrace";
  RunscClient c(cfg);
  EXPECT_THAT(c.Create("id1", "/b", ""),
              ElementsAre("runsc", "--root=/r", "--platform=ptrace", "--network=none",
                          "--overlay2=root:memory", "--log=/b/runsc-error.log", "--log-format=json",
                          "create", "--bundle=/b", "id1"));
}

TEST(RunscArgvTest, ExecWithFlagsPutsOptionsBeforeIdAndArgsAfter) {
  RunscConfig cfg;
  cfg.root = "/r";
  RunscClient c(cfg);
  RunscExec e;
  e.args = {"sh", "-c", "echo $A"};
  e.env = {"A=1", "B=x=y"};
  e.cwd = "/work";
  e.uid = 1000;
  e.gid = 1001;
  e.additional_gids = {10, 20};
  EXPECT_THAT(
      c.Exec("id1", e),
      ElementsAre("runsc", "--root=/r", "--network=none", "--overlay2=root:memory", "exec",
                  "--cwd=/work", "--user=1000:1001", "--additional-gids=10", "--additional-gids=20",
                  "--env=A=1", "--env=B=x=y", "id1", "sh", "-c", "echo $A"));
}

TEST(RunscArgvTest, ExecWithProcessFilePassesOnlyTheFile) {
  RunscConfig cfg;
  cfg.root = "/r";
  RunscClient c(cfg);
  RunscExec e;
  e.args = {"ignored"};
  e.process_json_path = "/b/exec-1.json";
  e.error_log_path = "/b/exec-1.log";
  EXPECT_THAT(c.Exec("id1", e),
              ElementsAre("runsc", "--root=/r", "--network=none", "--overlay2=root:memory",
                          "--log=/b/exec-1.log", "--log-format=json", "exec",
                          "--process=/b/exec-1.json", "id1"));
}

TEST(RunscArgvTest, EmptyConfigFieldsAreNotRendered) {
  RunscConfig cfg;
  cfg.network.clear();
  cfg.overlay2.clear();
  RunscClient c(cfg);
  EXPECT_THAT(c.List(), ElementsAre("runsc", "list", "--format=json"));
}

// A client whose container "sbx-a" logs to /logs/a and "sbx-b" to /logs/b/
// (trailing slash given); every other container has no directory.
RunscConfig PerContainerDebugConfig() {
  RunscConfig cfg;
  cfg.root = "/r";
  cfg.extra_flags = {"--host-uds=none"};
  cfg.debug_log_dir_for = [](std::string_view id) -> std::string {
    if (id == "sbx-a") return "/logs/a";
    if (id == "sbx-b") return "/logs/b/";
    return "";
  };
  return cfg;
}

// Every argv a client builds for container `id`, by verb.
std::map<std::string, std::vector<std::string>> ContainerCommands(const RunscClient& c,
                                                                  const std::string& id) {
  RunscExec flags_form;
  flags_form.args = {"true"};
  RunscExec process_form;
  process_form.process_json_path = "/b/p.json";
  process_form.error_log_path = "/b/p.log";
  return {{"create", c.Create(id, "/b", "/b/pid")},
          {"start", c.Start(id)},
          {"start with log", c.Start(id, "/b/start.log")},
          {"run", c.Run(id, "/b", "")},
          {"state", c.State(id)},
          {"kill", c.Kill(id, SIGKILL, true)},
          {"delete", c.Delete(id, true)},
          {"exec", c.Exec(id, flags_form)},
          {"exec --process", c.Exec(id, process_form)},
          {"wait", c.Wait(id)},
          {"ps", c.Ps(id)}};
}

TEST(RunscArgvTest, DebugLogDirForGivesEachContainerItsOwnDirectory) {
  RunscClient c(PerContainerDebugConfig());
  for (const auto& [verb, argv] : ContainerCommands(c, "sbx-a")) {
    // After the container-independent flags, before the extra ones.
    ASSERT_GE(argv.size(), 7u) << verb;
    EXPECT_THAT(std::vector<std::string>(argv.begin(), argv.begin() + 7),
                ElementsAre("runsc", "--root=/r", "--network=none", "--overlay2=root:memory",
                            "--debug", "--debug-log=/logs/a/", "--host-uds=none"))
        << verb;
    EXPECT_EQ(std::count(argv.begin(), argv.end(), "--debug"), 1) << verb;
  }
  for (const auto& [verb, argv] : ContainerCommands(c, "sbx-b")) {
    EXPECT_THAT(argv, Contains("--debug-log=/logs/b/")) << verb;  // the slash is not doubled
  }
  for (const auto& [verb, argv] : ContainerCommands(c, "sbx-other")) {
    EXPECT_THAT(argv, Not(Contains("--debug"))) << verb;
    EXPECT_THAT(argv, Not(Contains(HasSubstr("--debug-log")))) << verb;
  }
  // Commands about no container never ask.
  EXPECT_THAT(c.List(),
              ElementsAre("runsc", "--root=/r", "--network=none", "--overlay2=root:memory",
                          "--host-uds=none", "list", "--format=json"));
  EXPECT_THAT(c.Version(), ElementsAre("runsc", "--version"));
  EXPECT_THAT(c.Flags(), ElementsAre("runsc", "flags"));
  // The debug flags differ per call, so they are not global flags.
  EXPECT_THAT(c.global_flags(), ElementsAre("--root=/r", "--network=none", "--overlay2=root:memory",
                                            "--host-uds=none"));
}

TEST(RunscArgvTest, DebugLogDirForOverridesTheCommonDirectoryOfItsContainers) {
  RunscConfig cfg = PerContainerDebugConfig();
  cfg.debug_log_dir = "/logs/all";
  RunscClient c(cfg);
  for (const auto& [verb, argv] : ContainerCommands(c, "sbx-a")) {
    EXPECT_THAT(argv, Contains("--debug-log=/logs/a/")) << verb;
    EXPECT_THAT(argv, Not(Contains("--debug-log=/logs/all/"))) << verb;
  }
  for (const auto& [verb, argv] : ContainerCommands(c, "sbx-other")) {
    EXPECT_THAT(argv, Contains("--debug-log=/logs/all/")) << verb;
  }
  EXPECT_THAT(c.List(), Contains("--debug-log=/logs/all/"));
}

TEST(RunscArgvTest, WithoutDebugLogsNoCommandCarriesDebugFlags) {
  RunscConfig cfg;
  cfg.root = "/r";
  RunscClient c(cfg);
  for (const auto& [verb, argv] : ContainerCommands(c, "sbx-a")) {
    EXPECT_THAT(argv, Not(Contains("--debug"))) << verb;
    EXPECT_THAT(argv, Not(Contains(HasSubstr("--debug-log")))) << verb;
  }
}

TEST(RunscProcessJsonTest, CarriesUserEnvCwdAndDefaultCapabilities) {
  RunscExec e;
  e.args = {"/bin/id"};
  e.env = {"PATH=/bin"};
  e.cwd = "/tmp";
  e.uid = 5;
  e.gid = 6;
  e.additional_gids = {7};
  e.tty = true;
  Json p = RunscClient::ProcessJson(e);
  EXPECT_EQ(p["args"], Json({"/bin/id"}));
  EXPECT_EQ(p["env"], Json({"PATH=/bin"}));
  EXPECT_EQ(p["cwd"], "/tmp");
  EXPECT_EQ(p["terminal"], true);
  EXPECT_EQ(p["user"], Json({{"uid", 5}, {"gid", 6}, {"additionalGids", {7}}}));
  EXPECT_EQ(p["capabilities"]["bounding"].size(), 14u);
  EXPECT_EQ(p["capabilities"]["effective"], p["capabilities"]["bounding"]);

  RunscExec bare;
  bare.args = {"true"};
  Json q = RunscClient::ProcessJson(bare);
  EXPECT_EQ(q["cwd"], "/");
  EXPECT_FALSE(q["user"].contains("additionalGids"));
}

struct StateCase {
  const char* name;
  const char* out;
  bool ok;
  const char* id;
  const char* status;
  int pid;
  const char* bundle;
};

TEST(RunscParseStateTest, Table) {
  const StateCase cases[] = {
      {"running", R"({
  "ociVersion": "1.0.2-dev",
  "id": "c1",
  "status": "running",
  "pid": 5504,
  "bundle": "/tmp/lab/b1"
})",
       true, "c1", "running", 5504, "/tmp/lab/b1"},
      {"stopped",
       R"({"ociVersion":"1.0.2-dev","id":"c1","status":"stopped","pid":-1,"bundle":"/tmp/lab/b1"})",
       true, "c1", "stopped", -1, "/tmp/lab/b1"},
      {"created",
       R"({"ociVersion":"1.0.2-dev","id":"c2","status":"created","pid":6129,"bundle":"/b"})", true,
       "c2", "created", 6129, "/b"},
      {"no_id", R"({"status":"running"})", false, "", "", 0, ""},
      {"pid_string", R"({"id":"a","status":"running","pid":"1"})", false, "", "", 0, ""},
      {"not_json", "loading container: file does not exist", false, "", "", 0, ""},
      {"array", "[]", false, "", "", 0, ""},
  };
  for (const StateCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<RunscState> s = RunscClient::ParseState(c.out);
    ASSERT_EQ(s.ok(), c.ok) << s.status().ToString();
    if (!c.ok) {
      EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
      continue;
    }
    EXPECT_EQ(s->id, c.id);
    EXPECT_EQ(s->status, c.status);
    EXPECT_EQ(s->pid, c.pid);
    EXPECT_EQ(s->bundle, c.bundle);
  }
}

TEST(RunscParseStateTest, ReadsAnnotationsOfNewerReleases) {
  Result<RunscState> s = RunscClient::ParseState(
      R"({"ociVersion":"1.0.2-dev","id":"a","status":"paused","pid":3,"bundle":"/b",)"
      R"("annotations":{"io.kubernetes.cri.container-type":"sandbox"}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->annotations.at("io.kubernetes.cri.container-type"), "sandbox");
}

TEST(RunscParseListTest, Table) {
  struct Case {
    const char* name;
    const char* out;
    bool ok;
    size_t count;
  } cases[] = {
      {"empty_is_null", "null\n", true, 0},
      {"one",
       R"([{"ociVersion":"1.0.2-dev","id":"c1","status":"running","pid":5504,"bundle":"/tmp/lab/b1"}])"
       "\n",
       true, 1},
      {"two",
       R"([{"id":"a","status":"running","pid":1,"bundle":"/a"},{"id":"b","status":"stopped","pid":-1,"bundle":"/b"}])",
       true, 2},
      {"bad_entry", R"([{"id":"a"}])", false, 0},
      {"object", R"({"id":"a"})", false, 0},
      {"garbage", "ID PID STATUS", false, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto l = RunscClient::ParseList(c.out);
    ASSERT_EQ(l.ok(), c.ok) << l.status().ToString();
    if (c.ok) {
      EXPECT_EQ(l->size(), c.count);
    }
  }
}

TEST(RunscParseWaitTest, Table) {
  struct Case {
    const char* out;
    bool ok;
    int code;
  } cases[] = {
      {R"({"id":"c1","exitStatus":137})", true, 137},  // SIGKILL, reported as 128+9
      {R"({"id":"w3","exitStatus":3})", true, 3},
      {R"({"id":"w0","exitStatus":0})"
       "\n",
       true, 0},
      {R"({"id":"w0"})", false, 0},
      {R"({"id":"w0","exitStatus":"3"})", false, 0},
      {"", false, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.out);
    auto w = RunscClient::ParseWait(c.out);
    ASSERT_EQ(w.ok(), c.ok) << w.status().ToString();
    if (c.ok) {
      EXPECT_EQ(*w, c.code);
    }
  }
}

TEST(RunscParsePsTest, Table) {
  EXPECT_EQ(*RunscClient::ParsePs("[1]\n"), std::vector<int>{1});
  EXPECT_EQ(*RunscClient::ParsePs("[1,2,17]"), (std::vector<int>{1, 2, 17}));
  EXPECT_TRUE(RunscClient::ParsePs("null")->empty());
  EXPECT_FALSE(RunscClient::ParsePs("[\"1\"]").ok());
  EXPECT_FALSE(RunscClient::ParsePs("UID PID").ok());
}

TEST(RunscParseVersionTest, Table) {
  struct Case {
    const char* out;
    const char* version;  // nullptr = error
  } cases[] = {
      {"runsc version 0.0~20240729.0\nspec: 1.0.2-dev\n", "0.0~20240729.0"},
      {"runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n", "0.0~20221219.0"},
      {"runsc version release-20260817.0\nspec: 1.1.0\n", "release-20260817.0"},
      {"spec: 1.0.2-dev\n", nullptr},
      {"", nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.out);
    auto v = RunscClient::ParseVersion(c.out);
    ASSERT_EQ(v.ok(), c.version != nullptr) << v.status().ToString();
    if (c.version) {
      EXPECT_EQ(*v, c.version);
    }
  }
}

// The error log of a create whose rootfs was missing: the sandbox, the gofer
// and create itself each appended an object, with no newline in between.
constexpr char kCreateErrorLog[] =
    R"({"msg":"Error setting up root FS: mounting root on root (\"/proc/fs/root\") err: no such file or directory","level":"error","time":"2026-11-26T06:11:39.174553042Z"})"
    R"({"msg":"Error reading mounts file: error unmarshaling mounts: unexpected end of JSON input\nJSON bytes:\n","level":"error","time":"2026-11-26T06:11:39.200461564Z"})"
    R"({"msg":"creating container: cannot create sandbox: cannot read client sync file: waiting for sandbox to start: EOF","level":"error","time":"2026-11-26T06:11:39.213132494Z"})";

TEST(RunscErrorLogTest, SplitsConcatenatedObjects) {
  EXPECT_THAT(
      RunscClient::ParseErrorLog(kCreateErrorLog),
      ElementsAre(HasSubstr("Error setting up root FS: mounting root on root (\"/proc/fs/root\")"),
                  "Error reading mounts file: error unmarshaling mounts: unexpected end of "
                  "JSON input JSON bytes:",
                  HasSubstr("cannot read client sync file")));
  EXPECT_THAT(
      RunscClient::ParseErrorLog("{\"msg\":\"a}{\",\"level\":\"error\"}\n{\"msg\":\"b\"}\n"),
      ElementsAre("a}{", "b"));
  EXPECT_THAT(RunscClient::ParseErrorLog(R"({"msg":"x","level":"info"})"), ElementsAre());
  EXPECT_THAT(RunscClient::ParseErrorLog("not json {"), ElementsAre());
}

TEST(RunscCommandErrorTest, Table) {
  struct Case {
    const char* name;
    const char* verb;
    CommandResult r;
    const char* log;
    Code code;
    const char* message;
  } cases[] = {
      {"log_wins_over_container_output", "create",
       CommandResult{128, 0, false, "", "app output on stderr\n"}, kCreateErrorLog, Code::kInternal,
       "runsc create: exit 128: creating container: cannot create sandbox: cannot read client sync "
       "file: waiting for sandbox to start: EOF (first error: Error setting up root FS: mounting "
       "root on root (\"/proc/fs/root\") err: no such file or directory)"},
      {"stderr_last_line", "start",
       CommandResult{128, 0, false, "",
                     "starting container: starting root container: starting sandbox: creating "
                     "process: failed to load /nonexistent: no such file or directory\n"},
       "", Code::kInternal,
       "runsc start: exit 128: starting container: starting root container: starting sandbox: "
       "creating process: failed to load /nonexistent: no such file or directory"},
      {"missing_container", "state",
       CommandResult{128, 0, false, "", "loading container: file does not exist\n"}, "",
       Code::kNotFound, "runsc state: exit 128: loading container: file does not exist"},
      {"glog_lines_skipped", "delete",
       CommandResult{128, 0, false, "",
                     "loading container \"x\": file does not exist\n"
                     "W1126 06:11:39.094619   12345 main.go:231] FATAL ERROR: loading\n\n"},
       "", Code::kNotFound, "runsc delete: exit 128: loading container \"x\": file does not exist"},
      {"already_exists", "create", CommandResult{128, 0, false, "", ""},
       R"({"msg":"creating container: container with id \"a\" already exists","level":"error"})",
       Code::kAlreadyExists,
       "runsc create: exit 128: creating container: container with id \"a\" already exists"},
      {"signal", "exec", CommandResult{-1, 9, false, "", ""}, "", Code::kInternal,
       "runsc exec: killed by signal 9"},
      {"timeout", "run", CommandResult{-1, 9, true, "", ""}, "", Code::kUnavailable,
       "runsc run: timed out"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Status s = RunscClient::CommandError(c.verb, c.r, c.log);
    EXPECT_EQ(s.code(), c.code);
    EXPECT_EQ(s.message(), c.message);
  }
}

TEST(ContainerIdForTest, FixedLengthDeterministicAndDistinct) {
  std::string a = ContainerIdFor("6f1c3e0a-6b7d-4c1e-9d7a-1f0e2d3c4b5a");
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.substr(0, 4), "sbx-");
  EXPECT_EQ(a, ContainerIdFor("6f1c3e0a-6b7d-4c1e-9d7a-1f0e2d3c4b5a"));
  EXPECT_NE(a, ContainerIdFor("6f1c3e0a-6b7d-4c1e-9d7a-1f0e2d3c4b5b"));
  // sha256("") = e3b0c44298fc1c149afbf4c8996fb924...
  EXPECT_EQ(ContainerIdFor(""), "sbx-e3b0c44298fc1c149afbf4c8996f");
}

}  // namespace
}  // namespace sbx::oci
