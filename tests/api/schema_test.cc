// The schema walker on small hand-written schemas: each OpenAPI keyword it
// implements, independent of the CRDs.
#include "api/schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sbx::api {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const Json kSchema = Json::parse(R"({
  "type": "object",
  "required": ["name"],
  "properties": {
    "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
    "short": {"type": "string", "minLength": 2},
    "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
    "count": {"type": "integer", "format": "int32", "minimum": 1, "exclusiveMaximum": true,
              "maximum": 10},
    "ratio": {"type": "number"},
    "flag": {"type": "boolean"},
    "maybe": {"type": "string", "nullable": true},
    "when": {"type": "string", "format": "date-time"},
    "port": {"x-kubernetes-int-or-string": true},
    "tags": {"type": "array", "x-kubernetes-list-type": "set", "maxItems": 3,
             "items": {"type": "string"}},
    "items": {"type": "array", "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["id"],
              "items": {"type": "object", "properties": {"id": {"type": "string"},
                                                         "v": {"type": "integer",
                                                               "default": 7}}}},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    "nested": {"type": "object", "properties": {"inner": {"type": "string", "default": "d"}}}
  }
})");

SchemaFindings Check(const std::string& doc_json, Json* out = nullptr) {
  Json doc = Json::parse(doc_json);
  SchemaFindings f = CheckAgainstSchema(kSchema, &doc);
  if (out != nullptr) *out = doc;
  return f;
}

TEST(SchemaTest, AcceptsValidDocumentAndFillsDefaults) {
  Json out;
  auto f = Check(R"({"name": "abc", "count": 3, "ratio": 0.5, "flag": true, "maybe": null,
                     "when": "2026-01-01T00:00:00+01:00", "port": "http",
                     "tags": ["a", "b"], "items": [{"id": "x"}, {"id": "y", "v": 1}],
                     "labels": {"k": "v"}, "free": {"anything": [1, {"goes": true}]},
                     "nested": {}})",
                 &out);
  EXPECT_TRUE(f.ok()) << testing::PrintToString(f.errors)
                      << testing::PrintToString(f.unknown_fields);
  EXPECT_EQ(out["mode"], "A");
  EXPECT_EQ(out["items"][0]["v"], 7);
  EXPECT_EQ(out["items"][1]["v"], 1);
  EXPECT_EQ(out["nested"]["inner"], "d");
  EXPECT_TRUE(out["maybe"].is_null());
  EXPECT_EQ(out["when"], "2025-12-31T23:00:00Z");
  EXPECT_EQ(Check(R"({"name": "a", "port": 8080})").ok(), true);
}

TEST(SchemaTest, NonNullableNullIsDroppedBeforeDefaulting) {
  Json out;
  EXPECT_TRUE(Check(R"({"name": "a", "mode": null, "flag": null})", &out).ok());
  EXPECT_EQ(out["mode"], "A");
  EXPECT_FALSE(out.contains("flag"));
}

TEST(SchemaTest, UnknownFieldsAreCollectedEverywhere) {
  auto f = Check(R"({"name": "a", "x": 1, "nested": {"y": 2}, "items": [{"id": "i", "z": 3}],
                     "free": {"ok": 1}, "labels": {"fine": "v"}})");
  EXPECT_THAT(f.unknown_fields, ElementsAre("items[0].z", "nested.y", "x"));
  EXPECT_THAT(f.errors, IsEmpty());
}

struct ErrorCase {
  const char* doc;
  const char* error;
};

class SchemaErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SchemaErrorTest, Reports) {
  auto f = Check(GetParam().doc);
  EXPECT_THAT(f.errors, ElementsAre(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Table, SchemaErrorTest,
    ::testing::Values(
        ErrorCase{R"({})", "name: Required value"},
        ErrorCase{R"({"name": 1})",
                  "name: Invalid value: \"integer\": name in body must be of type string: "
                  "\"integer\""},
        ErrorCase{R"({"name": "abcdef"})", "name: Too long: may not be longer than 5"},
        ErrorCase{R"({"name": "ab1"})",
                  "name: Invalid value: \"ab1\": name in body should match '^[a-z]+$'"},
        ErrorCase{R"({"name": "a", "short": "x"})",
                  "short: Invalid value: \"x\": short in body should be at least 2 chars long"},
        ErrorCase{R"({"name": "a", "mode": "C"})",
                  "mode: Unsupported value: \"C\": supported values: \"A\", \"B\""},
        ErrorCase{R"({"name": "a", "count": 0})",
                  "count: Invalid value: 0: must be greater than or equal to 1"},
        ErrorCase{R"({"name": "a", "count": 10})",
                  "count: Invalid value: 10: must be less than 10"},
        ErrorCase{R"({"name": "a", "count": 1.5})",
                  "count: Invalid value: \"number\": count in body must be of type integer: "
                  "\"number\""},
        ErrorCase{R"({"name": "a", "ratio": "x"})",
                  "ratio: Invalid value: \"string\": ratio in body must be of type number: "
                  "\"string\""},
        ErrorCase{R"({"name": "a", "when": "yesterday"})",
                  "when: Invalid value: \"yesterday\": when in body must be of type date-time: "
                  "\"yesterday\""},
        ErrorCase{R"({"name": "a", "port": 1.5})",
                  "port: Invalid value: \"number\": port in body must be of type int-or-string: "
                  "\"number\""},
        ErrorCase{R"({"name": "a", "tags": ["a", "a"]})", "tags[1]: Duplicate value: \"a\""},
        ErrorCase{R"({"name": "a", "tags": ["a", "b", "c", "d"]})",
                  "tags: Too many: 4: must have at most 3 items"},
        ErrorCase{R"({"name": "a", "items": [{"id": "x"}, {"id": "x"}]})",
                  "items[1]: Duplicate value: {\"id\":\"x\"}"},
        ErrorCase{R"({"name": "a", "labels": {"k": 1}})",
                  "labels[k]: Invalid value: \"integer\": labels[k] in body must be of type "
                  "string: \"integer\""},
        ErrorCase{R"({"name": "a", "tags": [null]})",
                  "tags[0]: Invalid value: \"null\": tags[0] in body must be of type string: "
                  "\"null\""}));

TEST(SchemaTest, EmbeddedSchemasExistForEveryServedVersion) {
  for (const auto& [kind, version] :
       std::vector<std::pair<const char*, const char*>>{{"Sandbox", "v1beta1"},
                                                        {"Sandbox", "v1alpha1"},
                                                        {"SandboxTemplate", "v1beta1"},
                                                        {"SandboxTemplate", "v1alpha1"},
                                                        {"SandboxClaim", "v1beta1"},
                                                        {"SandboxClaim", "v1alpha1"},
                                                        {"SandboxWarmPool", "v1beta1"},
                                                        {"SandboxWarmPool", "v1alpha1"},
                                                        {"Namespace", "v1"},
                                                        {"Secret", "v1"},
                                                        {"ConfigMap", "v1"},
                                                        {"Event", "v1"}}) {
    const Json* s = FindSchema(kind, version);
    ASSERT_NE(s, nullptr) << kind << " " << version;
    EXPECT_TRUE(s->at("properties").at("metadata").at("properties").contains("ownerReferences"))
        << kind;
  }
  EXPECT_EQ(FindSchema("Sandbox", "v2"), nullptr);
  EXPECT_EQ(FindSchema("Pod", "v1"), nullptr);
  // The sbx extension survives schema regeneration.
  EXPECT_TRUE(FindSchema("Sandbox", "v1beta1")
                  ->at("properties")
                  .at("status")
                  .at("properties")
                  .contains("containerStatuses"));
}

}  // namespace
}  // namespace sbx::api
