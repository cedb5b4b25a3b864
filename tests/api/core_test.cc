// Secret and ConfigMap values; base64.
#include "api/core.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/decode.h"
#include "common/base64.h"

namespace sbx::api {
namespace {

using ::testing::HasSubstr;

Object Decode(const std::string& yaml) {
  auto docs = ParseDocuments(yaml, "x.yaml");
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  auto obj = DecodeObject((*docs)[0]);
  EXPECT_TRUE(obj.ok()) << obj.status().ToString();
  return *obj;
}

TEST(CoreTest, SecretValueDecodesDataIncludingMergedStringData) {
  Object s = Decode(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: default}\n"
      "data: {token: c2VjcmV0}\nstringData: {user: alice}\n");
  EXPECT_EQ(*SecretValue(s, "token"), "secret");
  EXPECT_EQ(*SecretValue(s, "user"), "alice");
  auto missing = SecretValue(s, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "couldn't find key \"nope\" in Secret \"default/creds\"");
}

TEST(CoreTest, ConfigMapValuePrefersDataThenBinaryData) {
  Object cm = Decode(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: ns}\n"
      "data: {a: plain}\nbinaryData: {b: AAEC}\n");
  EXPECT_EQ(*ConfigMapValue(cm, "a"), "plain");
  EXPECT_EQ(*ConfigMapValue(cm, "b"), std::string("\0\1\2", 3));
  auto missing = ConfigMapValue(cm, "c");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("\"c\" in ConfigMap \"ns/cfg\""));
}

TEST(Base64Test, RoundTrips) {
  struct Case {
    std::string plain, encoded;
  } cases[] = {{"", ""},
               {"f", "Zg=="},
               {"fo", "Zm8="},
               {"foo", "Zm9v"},
               {"foob", "Zm9vYg=="},
               {"fooba", "Zm9vYmE="},
               {"foobar", "Zm9vYmFy"},
               {std::string("\xff\xfe\x00", 3), "//4A"}};
  for (const auto& c : cases) {
    EXPECT_EQ(Base64Encode(c.plain), c.encoded);
    auto d = Base64Decode(c.encoded);
    ASSERT_TRUE(d.ok()) << c.encoded;
    EXPECT_EQ(*d, c.plain);
  }
}

TEST(Base64Test, SkipsLineBreaksLikeGo) { EXPECT_EQ(*Base64Decode("Zm9v\nYmFy\r\n"), "foobar"); }

TEST(Base64Test, RejectsMalformed) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {{"Zg", "at input byte 2"},       {"Zg=", "at input byte 3"},
               {"Z===", "at input byte 1"},     {"Zm9v!A==", "at input byte 4"},
               {"Zg==Zg==", "at input byte 4"}, {"Zg=a", "at input byte 3"}};
  for (const auto& c : cases) {
    auto d = Base64Decode(c.text);
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(d.status().message(), HasSubstr(c.want)) << c.text;
  }
}

}  // namespace
}  // namespace sbx::api
