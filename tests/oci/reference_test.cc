#include "oci/reference.h"

#include <gtest/gtest.h>

namespace sbx::oci {
namespace {

struct NormaliseCase {
  std::string input;
  std::string normalised;
  std::string familiar;
};

void PrintTo(const NormaliseCase& c, std::ostream* os) { *os << '"' << c.input << '"'; }

class ReferenceNormalisesTest : public testing::TestWithParam<NormaliseCase> {};

TEST_P(ReferenceNormalisesTest, AsDockerDoes) {
  const NormaliseCase& c = GetParam();
  Result<ImageReference> ref = ParseImageReference(c.input);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->String(), c.normalised);
  EXPECT_EQ(ref->Familiar(), c.familiar);
  // Normalising is idempotent.
  Result<ImageReference> again = ParseImageReference(ref->String());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *ref);
}

const std::string kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceNormalisesTest,
    testing::Values(
        NormaliseCase{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
        NormaliseCase{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
        NormaliseCase{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
        NormaliseCase{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
        NormaliseCase{"index.docker.io/busybox", "docker.io/library/busybox:latest",
                      "busybox:latest"},
        NormaliseCase{"me/app", "docker.io/me/app:latest", "me/app:latest"},
        NormaliseCase{"library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"},
        NormaliseCase{"localhost/x", "localhost/x:latest", "localhost/x:latest"},
        NormaliseCase{"localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"},
        NormaliseCase{"localhost:5000/x:v1", "localhost:5000/x:v1", "localhost:5000/x:v1"},
        NormaliseCase{"ghcr.io/a/b/c:1.0-rc_1", "ghcr.io/a/b/c:1.0-rc_1", "ghcr.io/a/b/c:1.0-rc_1"},
        NormaliseCase{"Registry/x", "Registry/x:latest", "Registry/x:latest"},
        NormaliseCase{"[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"},
        NormaliseCase{"me/a.b__c-d--e", "docker.io/me/a.b__c-d--e:latest", "me/a.b__c-d--e:latest"},
        NormaliseCase{"ghcr.io/a/b@sha256:" + kHex, "ghcr.io/a/b@sha256:" + kHex,
                      "ghcr.io/a/b@sha256:" + kHex},
        NormaliseCase{"busybox:1@sha256:" + kHex, "docker.io/library/busybox:1@sha256:" + kHex,
                      "busybox:1@sha256:" + kHex}));

struct InvalidCase {
  std::string input;
  std::string why;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << '"' << c.input << '"'; }

class ReferenceRefusesTest : public testing::TestWithParam<InvalidCase> {};

TEST_P(ReferenceRefusesTest, WithMessageNamingReference) {
  const InvalidCase& c = GetParam();
  Result<ImageReference> ref = ParseImageReference(c.input);
  ASSERT_FALSE(ref.ok()) << c.input << " parsed as " << ref->String();
  EXPECT_EQ(ref.status().code(), Code::kInvalidArgument);
  EXPECT_NE(ref.status().message().find("\"" + c.input + "\""), std::string::npos)
      << ref.status().message();
  EXPECT_NE(ref.status().message().find(c.why), std::string::npos) << ref.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceRefusesTest,
    testing::Values(InvalidCase{"", "empty"}, InvalidCase{"Busybox", "must be lowercase"},
                    InvalidCase{"me/App", "must be lowercase"},
                    InvalidCase{"ghcr.io/A/b", "must be lowercase"}, InvalidCase{kHex, "image ID"},
                    InvalidCase{"busybox:", "invalid tag"},
                    InvalidCase{"busybox:-x", "invalid tag"},
                    InvalidCase{"busybox:" + std::string(129, 'a'), "invalid tag"},
                    InvalidCase{":tag", "missing repository"},
                    InvalidCase{"a//b", "empty path component"},
                    InvalidCase{"ghcr.io/", "empty path component"},
                    InvalidCase{"a/b_", "invalid path component"},
                    InvalidCase{"a/-b", "invalid path component"}, InvalidCase{"a/b c", "invalid"},
                    InvalidCase{"a@sha256:abc", "invalid digest"},
                    InvalidCase{"a@md5:" + kHex.substr(0, 32), "unsupported digest algorithm"},
                    InvalidCase{"-bad.io/x", "invalid registry domain"},
                    InvalidCase{"x/" + std::string(300, 'a'), "255 characters"}));

}  // namespace
}  // namespace sbx::oci
