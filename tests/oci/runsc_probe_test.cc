// The capability probe against the installed runsc (label root). On the
// development machines KVM hangs at boot, so this also proves that a timed-out
// KVM boot leaves no sandbox, gofer or container behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "common/fs.h"
#include "common/strings.h"
#include "oci/probe.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::oci {
namespace {

using runsc_testing::TempDir;
using std::chrono::milliseconds;

TEST(RunscProbeTest, AutoPicksAPlatformThatBootsAndLeavesNothingBehind) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  TempDir tmp;
  const std::string work = tmp.Sub("work");
  const std::string cache = tmp.Sub("caps.json");
  SimpleCommandRunner runner;
  auto start = std::chrono::steady_clock::now();
  auto caps = ProbeRunsc(runner, "runsc", "auto", work, cache, milliseconds(3000));
  auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  ASSERT_TRUE(caps.ok()) << caps.status().ToString();
  std::cout << "probe took " << took.count() << " ms: platforms=" << Join(caps->platforms, ",")
            << " chosen=" << caps->platform << " version=" << caps->version << "\n";

  EXPECT_EQ(caps->platform, caps->platforms.front());
  // Whatever KVM does on this host, one of the software platforms boots.
  EXPECT_TRUE(std::find(caps->platforms.begin(), caps->platforms.end(), "systrap") !=
                  caps->platforms.end() ||
              std::find(caps->platforms.begin(), caps->platforms.end(), "ptrace") !=
                  caps->platforms.end());
  EXPECT_FALSE(caps->version.empty());
  EXPECT_TRUE(caps->HasFlag("overlay2"));
  EXPECT_TRUE(caps->HasFlag("ignore-cgroups"));
  if (RunscReleaseDate(caps->version) >= 20240415) {
    EXPECT_TRUE(caps->checkpoint_leave_running_in_place);
    EXPECT_TRUE(caps->overlay2_dir);
  }

  // Nothing is left: no process mentions the probe's directory, and the
  // directory holds no runsc root or bundle.
  EXPECT_THAT(runsc_testing::ProcessesWithArg(work, /*substring=*/true), ::testing::IsEmpty());
  EXPECT_THAT(*ListDir(work), ::testing::IsEmpty());

  // The second start reads the cache and boots nothing.
  start = std::chrono::steady_clock::now();
  auto again = ProbeRunsc(runner, "runsc", "auto", work, cache, milliseconds(3000));
  took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *caps);
  EXPECT_LT(took.count(), 100);
}

TEST(RunscProbeTest, KvmBootIsBoundedByTheTimeout) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  if (!PathExists("/dev/kvm")) GTEST_SKIP() << "no /dev/kvm";
  TempDir tmp;
  const std::string work = tmp.Sub("work");
  SimpleCommandRunner runner;
  auto start = std::chrono::steady_clock::now();
  auto caps = ProbeRunsc(runner, "runsc", "kvm", work, "", milliseconds(1500));
  auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  std::cout << "kvm probe: " << (caps.ok() ? "boots" : caps.status().message()) << " ("
            << took.count() << " ms)\n";
  // Either KVM works here or the hang was cut at the timeout (plus cleanup).
  EXPECT_LT(took.count(), 1500 + 8000);
  EXPECT_THAT(runsc_testing::ProcessesWithArg(work, /*substring=*/true), ::testing::IsEmpty());
  EXPECT_THAT(*ListDir(work), ::testing::IsEmpty());
}

}  // namespace
}  // namespace sbx::oci
