// Unit tests of SandboxRuntime's pure parts; the runtime itself runs against
// real runsc in tests/integration.
#include "daemon/runtime.h"

#include <gtest/gtest.h>

namespace sbx::daemon {
namespace {

using std::chrono::milliseconds;

TEST(RelistWaitTest, SmallHostRelistsEveryInterval) {
  RuntimeOptions o;
  EXPECT_EQ(RelistWait(milliseconds(0), o), o.relist_interval);
  EXPECT_EQ(RelistWait(milliseconds(40), o), o.relist_interval);
  EXPECT_EQ(RelistWait(milliseconds(111), o), o.relist_interval);
}

TEST(RelistWaitTest, SlowListKeepsToATenthOfTheTime) {
  RuntimeOptions o;
  EXPECT_EQ(RelistWait(milliseconds(200), o), milliseconds(1800));
  milliseconds took(2500);
  milliseconds wait = RelistWait(took, o);
  EXPECT_EQ(wait, milliseconds(22500));
  EXPECT_DOUBLE_EQ(static_cast<double>(took.count()) / static_cast<double>((took + wait).count()),
                   0.1);
  // 1,000 idle sandboxes: `runsc list` took 3.4 s on 2 vCPUs.
  EXPECT_EQ(RelistWait(milliseconds(3400), o), o.relist_interval_max);
}

TEST(RelistWaitTest, CappedAtTheMaximum) {
  RuntimeOptions o;
  o.relist_interval_max = milliseconds(5000);
  EXPECT_EQ(RelistWait(milliseconds(3400), o), milliseconds(5000));
  EXPECT_EQ(RelistWait(milliseconds(60000), o), milliseconds(5000));
}

TEST(RelistWaitTest, MaximumBelowTheIntervalMeansTheInterval) {
  RuntimeOptions o;
  o.relist_interval = milliseconds(2000);
  o.relist_interval_max = milliseconds(500);
  EXPECT_EQ(RelistWait(milliseconds(0), o), milliseconds(2000));
  EXPECT_EQ(RelistWait(milliseconds(10000), o), milliseconds(2000));
}

}  // namespace
}  // namespace sbx::daemon
