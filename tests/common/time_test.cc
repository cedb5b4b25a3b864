#include "common/time.h"

#include <gtest/gtest.h>

namespace sbx {
namespace {

using std::chrono::milliseconds;

TEST(ParseDurationTest, AcceptsGoStyleDurations) {
  struct Case {
    const char* text;
    int64_t ms;
  } cases[] = {{"0", 0},        {"300ms", 300},   {"2s", 2000},         {"1.5s", 1500},
               {"5m", 300000},  {"1m30s", 90000}, {"1h", 3600000},      {"0s", 0}};
  for (const auto& c : cases) {
    auto d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status().ToString();
    EXPECT_EQ(*d, milliseconds(c.ms)) << c.text;
  }
}

TEST(ParseDurationTest, RejectsMissingOrUnknownUnits) {
  for (const char* text : {"", "5", "s", "2 s", "3d", "-1s", "1m30"}) {
    auto d = ParseDuration(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_NE(d.status().message().find("invalid duration"), std::string::npos);
  }
}

}  // namespace
}  // namespace sbx
