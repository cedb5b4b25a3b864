#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "common/fs.h"
#include "oci/digest.h"

namespace sbx::oci {
namespace {

// sha256("abc") from FIPS 180-2.
constexpr char kAbc[] = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kEmpty[] = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestTest, HashesBuffersAndStreams) {
  EXPECT_EQ(Sha256Digest("abc"), kAbc);
  EXPECT_EQ(Sha256Digest(""), kEmpty);
  Sha256 h;
  h.Update("a");
  h.Update("");
  h.Update("bc");
  EXPECT_EQ(h.Digest(), kAbc);
}

TEST(DigestTest, HashesFilesAndReportsSize) {
  char dir[] = "/tmp/sbx-digest-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/f";
  std::string big(200000, 'x');
  ASSERT_TRUE(WriteFileAtomic(path, big).ok());
  int64_t size = 0;
  Result<std::string> d = Sha256File(path, &size);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, Sha256Digest(big));
  EXPECT_EQ(size, 200000);
  EXPECT_EQ(Sha256File(std::string(dir) + "/missing").status().code(), Code::kNotFound);
  ASSERT_TRUE(RemoveAll(dir).ok());
}

TEST(DigestTest, HexHelpers) {
  EXPECT_EQ(HexEncode(std::string("\x00\x0f\xf0\xff", 4)), "000ff0ff");
  EXPECT_TRUE(IsLowerHex("0123456789abcdef"));
  EXPECT_FALSE(IsLowerHex("ABC"));
  EXPECT_FALSE(IsLowerHex("xyz"));
}

struct ValidateCase {
  std::string digest;
  bool ok;
  std::string message;
};

class ValidateDigestTest : public testing::TestWithParam<ValidateCase> {};

TEST_P(ValidateDigestTest, AcceptsOnlySha256WithLowerHex) {
  const ValidateCase& c = GetParam();
  Result<std::string> hex = ValidateDigest(c.digest);
  ASSERT_EQ(hex.ok(), c.ok) << c.digest;
  if (c.ok) {
    EXPECT_EQ("sha256:" + *hex, c.digest);
  } else {
    EXPECT_EQ(hex.status().code(), Code::kInvalidArgument);
    EXPECT_NE(hex.status().message().find(c.message), std::string::npos) << hex.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ValidateDigestTest,
    testing::Values(ValidateCase{kAbc, true, ""}, ValidateCase{"", false, "invalid digest"},
                    ValidateCase{"ba7816bf", false, "invalid digest"},
                    ValidateCase{"sha512:" + std::string(128, 'a'), false, "unsupported"},
                    ValidateCase{"sha256:abc", false, "64 lower-case hex"},
                    ValidateCase{"sha256:" + std::string(64, 'A'), false, "64 lower-case hex"},
                    ValidateCase{"sha256:" + std::string(64, 'g'), false, "64 lower-case hex"},
                    ValidateCase{"sha256:" + std::string(65, 'a'), false, "64 lower-case hex"}));

}  // namespace
}  // namespace sbx::oci
