#include "api/decode.h"

#include <gtest/gtest.h>

namespace sbx::api {
namespace {
TEST(DecodeTest, Smoke) {
  auto docs = ParseDocuments("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n", "x.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  auto obj = DecodeObject((*docs)[0]);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
}
}  // namespace
}  // namespace sbx::api
