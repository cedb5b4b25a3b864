// Kubernetes quantities.
#include "api/quantity.h"

#include <gtest/gtest.h>

namespace sbx::api {
namespace {

struct QuantityCase {
  const char* text;
  int64_t value;
  int64_t milli;
};

class QuantityTest : public ::testing::TestWithParam<QuantityCase> {};

TEST_P(QuantityTest, Parses) {
  const auto& c = GetParam();
  auto v = ParseQuantityValue(c.text);
  ASSERT_TRUE(v.ok()) << c.text << ": " << v.status().ToString();
  EXPECT_EQ(*v, c.value) << c.text;
  auto m = ParseQuantityMilli(c.text);
  ASSERT_TRUE(m.ok()) << c.text << ": " << m.status().ToString();
  EXPECT_EQ(*m, c.milli) << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Table, QuantityTest,
    ::testing::Values(
        QuantityCase{"0", 0, 0}, QuantityCase{"1", 1, 1000},
        QuantityCase{"100Mi", 104857600, 104857600000},
        QuantityCase{"1Gi", 1073741824, 1073741824000},
        QuantityCase{"1.5Gi", 1610612736, 1610612736000}, QuantityCase{"2Ki", 2048, 2048000},
        QuantityCase{"1G", 1000000000, 1000000000000}, QuantityCase{"1k", 1000, 1000000},
        QuantityCase{"0.5", 1, 500}, QuantityCase{"500m", 1, 500}, QuantityCase{"1500m", 2, 1500},
        QuantityCase{"2000m", 2, 2000}, QuantityCase{"1e3", 1000, 1000000},
        QuantityCase{"1E3", 1000, 1000000}, QuantityCase{"1.5e-3", 1, 2},
        QuantityCase{"100u", 1, 1}, QuantityCase{"10n", 1, 1}, QuantityCase{"+3", 3, 3000},
        QuantityCase{"-1", -1, -1000}, QuantityCase{"-500m", 0, -500}, QuantityCase{".25", 1, 250},
        QuantityCase{"4.", 4, 4000}));

TEST(QuantityTest, LargestBinarySuffix) {
  auto v = ParseQuantityValue("1Ei");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, int64_t{1} << 60);
}

TEST(QuantityTest, MilliOverflowIsAnError) {
  EXPECT_FALSE(ParseQuantityMilli("1Ei").ok());
  EXPECT_FALSE(ParseQuantityValue("8Ei").ok());
  EXPECT_FALSE(ParseQuantityValue("1e30").ok());
}

TEST(QuantityTest, RejectsMalformed) {
  for (const char* bad : {"", "Mi", "1.2.3", "1Mb", "one", "1e", "1e+", "1 Gi", "--1", "1ki",
                          "0x10", ".", "1e99999"}) {
    auto v = ParseQuantityValue(bad);
    EXPECT_FALSE(v.ok()) << bad;
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), Code::kInvalidArgument) << bad;
    }
  }
}

}  // namespace
}  // namespace sbx::api
