// The runsc capability probe against a fake runsc (a shell script): version
// and flag parsing, platform choice, error text from runsc's JSON log, the
// cache, and a hanging boot that must be killed without leaving processes.
#include "oci/probe.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::oci {
namespace {

using runsc_testing::TempDir;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Captured from `runsc flags` (release-20240729), shortened.
constexpr char kFlagsOutput[] =
    "  -EXPERIMENTAL-xdp value\n"
    "    \twhether and how to use XDP. Can be one of: \"off\" (default), \"ns\"\n"
    "  -debug-log string\n"
    "    \tadditional location for logs. If it ends with '/', log files are created inside the "
    "directory with default names.\n"
    "  -ignore-cgroups\n"
    "    \tdon't configure cgroups.\n"
    "  -net-raw runsc exec\n"
    "    \tenable raw sockets. When false, raw sockets are disabled by removing CAP_NET_RAW\n"
    "  -overlay2 value\n"
    "    \twrap mounts with overlayfs. Format is {mount}:{medium}, where 'mount' can be 'root' or "
    "'all' and medium can be 'memory', 'self' or 'dir=/abs/dir/path' in which filestore will be "
    "created. 'none' will turn overlay mode off. (default root:self)\n"
    "  -platform string\n"
    "    \tspecifies which platform to use: systrap (default), ptrace, kvm. (default "
    "\"systrap\")\n";

TEST(ParseRunscFlagsTest, NamesAndHelp) {
  auto flags = ParseRunscFlags(kFlagsOutput);
  std::vector<std::string> names;
  for (const auto& [name, help] : flags) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("EXPERIMENTAL-xdp", "debug-log", "ignore-cgroups", "net-raw",
                                 "overlay2", "platform"));
  EXPECT_EQ(flags["ignore-cgroups"], "don't configure cgroups.");
  EXPECT_THAT(flags["overlay2"], HasSubstr("'dir=/abs/dir/path'"));
  // The 2022 release only knew {root|all}:{memory|<existing dir>}.
  auto old = ParseRunscFlags(
      "  -overlay2 value\n    \twrap mounts with overlayfs. Format is {mount}:{medium}, where "
      "'mount' can be 'root' or 'all' and medium can be 'memory' or existing directory path in "
      "which filestore will be created. 'none' will turn overlay mode off.\n");
  EXPECT_THAT(old["overlay2"], ::testing::Not(HasSubstr("dir=")));
}

TEST(RunscReleaseDateTest, Table) {
  EXPECT_EQ(RunscReleaseDate("0.0~20240729.0"), 20240729);
  EXPECT_EQ(RunscReleaseDate("0.0~20221219.0"), 20221219);
  EXPECT_EQ(RunscReleaseDate("release-20260817.0"), 20260817);
  EXPECT_EQ(RunscReleaseDate("20240415.1-rc2"), 20240415);
  EXPECT_EQ(RunscReleaseDate("1.2.3"), 0);
  EXPECT_EQ(RunscReleaseDate("build 123456789"), 0);
  EXPECT_EQ(RunscReleaseDate(""), 0);
}

TEST(RunscCapabilitiesTest, JsonRoundTripAndErrors) {
  RunscCapabilities c;
  c.binary = "/usr/bin/runsc";
  c.version = "0.0~20240729.0";
  c.platforms = {"systrap", "ptrace"};
  c.platform = "systrap";
  c.flags = {"overlay2", "ignore-cgroups"};
  c.overlay2_dir = true;
  c.checkpoint_leave_running_in_place = true;
  c.netns_rmem_defect = true;
  auto back = RunscCapabilities::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
  EXPECT_TRUE(back->HasFlag("overlay2"));
  EXPECT_FALSE(back->HasFlag("overlay"));

  Json bad = c.ToJson();
  bad["platforms"] = {1};
  EXPECT_EQ(RunscCapabilities::FromJson(bad).status().code(), Code::kInvalidArgument);
  bad = c.ToJson();
  bad.erase("netnsRmemDefect");
  EXPECT_THAT(RunscCapabilities::FromJson(bad).status().message(), HasSubstr("netnsRmemDefect"));
  EXPECT_FALSE(RunscCapabilities::FromJson(Json::array()).ok());
}

// Counts what it runs and delegates to the real runner.
class CountingRunner : public CommandRunner {
 public:
  Result<CommandResult> Run(const CommandSpec& spec) override {
    runs.push_back(spec.argv);
    return inner_.Run(spec);
  }
  std::vector<std::vector<std::string>> runs;

 private:
  SimpleCommandRunner inner_;
};

// A runsc stand-in. $FAKE_RUNSC_STATE/modes has lines "<platform>=ok|fail|hang".
// `run` in hang mode starts a setsid'd "sandbox" that carries --root=<root>
// like the real one, records its pid, and sleeps in the foreground.
constexpr char kFakeRunsc[] = R"(#!/bin/sh
state="$FAKE_RUNSC_STATE"
platform=""; root=""; log=""; pidfile=""; verb=""
for a in "$@"; do
  case "$a" in
    --version) echo "runsc version 0.0~20240729.0"; echo "spec: 1.0.2-dev"; exit 0;;
    --platform=*) platform="${a#--platform=}";;
    --root=*) root="${a#--root=}";;
    --log=*) log="${a#--log=}";;
    --pid-file=*) pidfile="${a#--pid-file=}";;
    -*) ;;
    *) [ -z "$verb" ] && verb="$a";;
  esac
done
echo "$verb $platform" >> "$state/calls"
case "$verb" in
  flags) cat "$state/flags.txt" >&2; exit 0;;
  run)
    mode=$(sed -n "s/^$platform=//p" "$state/modes")
    case "$mode" in
      ok) exit 0;;
      fail)
        printf '{"msg":"platform %s is broken","level":"error","time":"t"}' "$platform" >> "$log"
        echo "container output" >&2
        exit 128;;
      hang)
        setsid sh -c 'while :; do sleep 0.05; done' fake-sandbox "--root=$root" &
        echo $! >> "$state/pids"
        [ -n "$pidfile" ] && echo $! > "$pidfile"
        sleep 1000;;
    esac;;
esac
exit 0
)";

class FakeRunscProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    state_ = tmp_.Sub("state");
    ASSERT_TRUE(MakeDirs(state_).ok());
    binary_ = tmp_.Sub("runsc");
    ASSERT_TRUE(WriteFileAtomic(binary_, kFakeRunsc, 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(state_ + "/flags.txt", kFlagsOutput).ok());
    ::setenv("FAKE_RUNSC_STATE", state_.c_str(), 1);
  }
  void TearDown() override { ::unsetenv("FAKE_RUNSC_STATE"); }

  void SetModes(const std::string& modes) {
    ASSERT_TRUE(WriteFileAtomic(state_ + "/modes", modes).ok());
  }
  std::vector<std::string> Calls() {
    auto text = ReadFile(state_ + "/calls");
    std::vector<std::string> out;
    if (text.ok()) {
      for (const std::string& l : Split(*text, '\n')) {
        if (!l.empty()) out.push_back(l);
      }
    }
    return out;
  }

  TempDir tmp_;
  std::string state_, binary_;
};

TEST_F(FakeRunscProbeTest, ExplicitPlatformThatBootsIsChosen) {
  SetModes("systrap=ok\n");
  CountingRunner runner;
  auto caps = ProbeRunsc(runner, binary_, "systrap", tmp_.Sub("work"), "", milliseconds(2000));
  ASSERT_TRUE(caps.ok()) << caps.status().ToString();
  EXPECT_EQ(caps->binary, binary_);
  EXPECT_EQ(caps->version, "0.0~20240729.0");
  EXPECT_EQ(caps->platform, "systrap");
  EXPECT_THAT(caps->platforms, ElementsAre("systrap"));
  EXPECT_TRUE(caps->HasFlag("ignore-cgroups"));
  EXPECT_TRUE(caps->overlay2_dir);
  EXPECT_TRUE(caps->checkpoint_leave_running_in_place);
  EXPECT_THAT(Calls(), ElementsAre("flags ", "run systrap"));
  // The probe's temporary bundle and root are gone.
  EXPECT_THAT(*ListDir(tmp_.Sub("work")), ElementsAre());
}

TEST_F(FakeRunscProbeTest, AutoSkipsPlatformsThatFailAndReportsEveryReason) {
  SetModes("kvm=fail\nsystrap=fail\nptrace=ok\n");
  SimpleCommandRunner runner;
  auto caps = ProbeRunsc(runner, binary_, "auto", tmp_.Sub("work"), "", milliseconds(2000));
  ASSERT_TRUE(caps.ok()) << caps.status().ToString();
  EXPECT_EQ(caps->platform, "ptrace");
  EXPECT_THAT(caps->platforms, ElementsAre("ptrace"));

  SetModes("kvm=fail\nsystrap=fail\nptrace=fail\n");
  auto none = ProbeRunsc(runner, binary_, "auto", tmp_.Sub("work"), "", milliseconds(2000));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kFailedPrecondition);
  // runsc's own message comes from its --log file, not the container's output.
  EXPECT_THAT(none.status().message(),
              HasSubstr("systrap: runsc run: exit 128: platform systrap is broken"));
  EXPECT_THAT(none.status().message(),
              HasSubstr("ptrace: runsc run: exit 128: platform ptrace is broken"));
  EXPECT_THAT(none.status().message(), ::testing::Not(HasSubstr("container output")));
}

TEST_F(FakeRunscProbeTest, HangingBootIsKilledAndLeavesNothingBehind) {
  SetModes("systrap=hang\n");
  SimpleCommandRunner runner;
  auto start = std::chrono::steady_clock::now();
  auto caps = ProbeRunsc(runner, binary_, "systrap", tmp_.Sub("work"), "", milliseconds(300));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(caps.ok());
  EXPECT_THAT(caps.status().message(), HasSubstr("systrap: timed out after 300 ms"));
  EXPECT_LT(took, std::chrono::seconds(5));
  // The probe cleaned up with `delete --force` and then by pid.
  EXPECT_THAT(Calls(), ElementsAre("flags ", "run systrap", "delete systrap"));
  auto pids = ReadFile(state_ + "/pids");
  ASSERT_TRUE(pids.ok());
  for (const std::string& p : Split(*pids, '\n')) {
    if (p.empty()) continue;
    EXPECT_FALSE(runsc_testing::ProcessAlive(std::atoi(p.c_str())))
        << "fake sandbox " << p << " survived";
  }
  EXPECT_THAT(*ListDir(tmp_.Sub("work")), ElementsAre());
}

TEST_F(FakeRunscProbeTest, CacheIsReusedUntilTheBinaryChanges) {
  SetModes("ptrace=ok\n");
  const std::string cache = tmp_.Sub("runsc-caps.json");
  CountingRunner first;
  auto a = ProbeRunsc(first, binary_, "ptrace", tmp_.Sub("work"), cache, milliseconds(2000));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FALSE(first.runs.empty());
  ASSERT_TRUE(PathExists(cache));

  CountingRunner second;
  auto b = ProbeRunsc(second, binary_, "ptrace", tmp_.Sub("work"), cache, milliseconds(2000));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, *a);
  EXPECT_TRUE(second.runs.empty()) << "cache hit must not run anything";

  // Another requested platform is another key.
  SetModes("ptrace=ok\nsystrap=ok\n");
  CountingRunner third;
  auto c = ProbeRunsc(third, binary_, "systrap", tmp_.Sub("work"), cache, milliseconds(2000));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->platform, "systrap");
  EXPECT_FALSE(third.runs.empty());

  // A replaced binary (new mtime) invalidates the cache.
  struct timespec times[2] = {{0, UTIME_NOW}, {1000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, binary_.c_str(), times, 0), 0);
  CountingRunner fourth;
  ASSERT_TRUE(
      ProbeRunsc(fourth, binary_, "systrap", tmp_.Sub("work"), cache, milliseconds(2000)).ok());
  EXPECT_FALSE(fourth.runs.empty());
}

TEST_F(FakeRunscProbeTest, RejectsUnknownPlatformAndMissingBinary) {
  SimpleCommandRunner runner;
  auto bad = ProbeRunsc(runner, binary_, "fast", tmp_.Sub("work"), "", milliseconds(100));
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  auto missing =
      ProbeRunsc(runner, tmp_.Sub("nope"), "ptrace", tmp_.Sub("work"), "", milliseconds(100));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sbx::oci
