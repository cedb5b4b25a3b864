// ParseDocuments: YAML/JSON manifests to JSON documents.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/decode.h"

namespace sbx::api {
namespace {

using ::testing::HasSubstr;

struct ParseCase {
  const char* name;
  const char* text;
  const char* want;  // JSON array of documents
};

class ParseDocumentsTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseDocumentsTest, ParsesTo) {
  const ParseCase& c = GetParam();
  auto docs = ParseDocuments(c.text, "m.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  EXPECT_EQ(Json(*docs), Json::parse(c.want));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseDocumentsTest,
    ::testing::Values(
        ParseCase{"SingleYamlDocument", "kind: A\nmetadata:\n  name: x\n",
                  R"([{"kind":"A","metadata":{"name":"x"}}])"},
        ParseCase{"MultiDocumentSkipsEmptyAndCommentOnly",
                  "---\nkind: A\n---\n# only a comment\n---\n\n---\nkind: B\n",
                  R"([{"kind":"A"},{"kind":"B"}])"},
        ParseCase{"QuotedScalarsStayStrings", "a: \"1\"\nb: 'true'\nc: \"null\"\nd: |\n  42\n",
                  R"([{"a":"1","b":"true","c":"null","d":"42\n"}])"},
        ParseCase{"PlainScalarsByCoreSchema",
                  "a: 1\nb: -7\nc: 0x1F\nd: 0o17\ne: 1.5\nf: 1e3\ng: true\nh: False\n"
                  "i: null\nj: ~\nk:\nl: yes\nm: 1.2.3\nn: +3\no: .5\n",
                  R"([{"a":1,"b":-7,"c":31,"d":15,"e":1.5,"f":1000.0,"g":true,"h":false,
                      "i":null,"j":null,"k":null,"l":"yes","m":"1.2.3","n":3,"o":0.5}])"},
        ParseCase{"LeadingZeroIsOctalAsKubectlReadsFileModes", "a: 0400\nb: 0644\nc: 0\nd: 089\n",
                  R"([{"a":256,"b":420,"c":0,"d":89}])"},
        ParseCase{"ExplicitTags", "a: !!str 12\nb: !!int \"12\"\nc: !!float 1\n",
                  R"([{"a":"12","b":12,"c":1.0}])"},
        ParseCase{"Sequences", "a:\n- x\n- 2\nb: [1, \"2\"]\n", R"([{"a":["x",2],"b":[1,"2"]}])"},
        ParseCase{"JsonObject", "  {\"kind\": \"A\", \"n\": 1, \"s\": \"1\"}",
                  R"([{"kind":"A","n":1,"s":"1"}])"},
        ParseCase{"YamlFlowMappingInsideYaml", "a: {kind: A, n: 1}\n",
                  R"([{"a":{"kind":"A","n":1}}])"},
        ParseCase{"ListIsExpanded", "apiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n",
                  R"([{"kind":"A"},{"kind":"B"}])"},
        ParseCase{"JsonListIsExpanded",
                  R"({"apiVersion":"v1","kind":"List","items":[{"kind":"A"}]})",
                  R"([{"kind":"A"}])"},
        ParseCase{"TypedListItemsGetTheirKind",
                  "apiVersion: agents.x-k8s.io/v1beta1\nkind: SandboxList\nitems:\n"
                  "- metadata: {name: a}\n",
                  R"([{"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox",
                       "metadata":{"name":"a"}}])"},
        ParseCase{"EmptyText", "", "[]"},
        ParseCase{"AnchorsAndAliases", "a: &x {b: 1}\nc: *x\n", R"([{"a":{"b":1},"c":{"b":1}}])"}),
    [](const auto& info) { return info.param.name; });

struct ParseErrorCase {
  const char* name;
  const char* text;
  const char* want;  // substring of the message
};

class ParseDocumentsErrorTest : public ::testing::TestWithParam<ParseErrorCase> {};

TEST_P(ParseDocumentsErrorTest, FailsWith) {
  const ParseErrorCase& c = GetParam();
  auto docs = ParseDocuments(c.text, "sandbox.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_EQ(docs.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(docs.status().message(), HasSubstr(c.want));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseDocumentsErrorTest,
    ::testing::Values(
        ParseErrorCase{"BadIndentation", "a: 1\nb:\n  c: 2\n d: 3\n", "sandbox.yaml: line 4: "},
        ParseErrorCase{"UnclosedFlowSequence", "a: 1\nb: [1, 2\nc: 3\n", "sandbox.yaml: line "},
        ParseErrorCase{"TextThatOpensLikeJsonIsJson", "{kind: A}", "sandbox.yaml: line 1: "},
        ParseErrorCase{"DuplicateYamlKey", "kind: A\nmetadata:\n  name: a\n  name: b\n",
                       "sandbox.yaml: line 4: duplicate key \"name\""},
        ParseErrorCase{"DuplicateKeyInLaterDocument", "kind: A\n---\nkind: B\nkind: C\n",
                       "sandbox.yaml: line 4: duplicate key \"kind\""},
        ParseErrorCase{"DuplicateJsonKey", "{\"kind\": \"A\",\n \"kind\": \"B\"}",
                       "sandbox.yaml: line 2: duplicate key \"kind\""},
        ParseErrorCase{"MalformedJson", "{\"kind\": \"A\",\n\n \"x\": }", "sandbox.yaml: line 3: "},
        ParseErrorCase{"ScalarDocument", "just a string\n", "must be a mapping"},
        ParseErrorCase{"SequenceDocument", "- a\n- b\n", "must be a mapping"},
        ParseErrorCase{"JsonArray", "[1, 2]", "must be an object"},
        ParseErrorCase{"ListItemsNotAList", "kind: List\nitems: 3\n", "items must be a list"},
        ParseErrorCase{"BadTag", "a: !!int abc\n", "line 1: cannot resolve \"abc\" as !!int"}),
    [](const auto& info) { return info.param.name; });

TEST(ParseDocumentsTest, AliasBombIsRefused) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
    for (int j = 0; j < 9; ++j) text += ", " + prev;
    text += "]\n";
  }
  auto docs = ParseDocuments(text, "bomb.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(docs.status().message(), HasSubstr("excessive aliasing"));
}

}  // namespace
}  // namespace sbx::api
