// Label selectors: string form and metav1.LabelSelector.
#include "api/selector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sbx::api {
namespace {

using ::testing::HasSubstr;
using Labels = std::map<std::string, std::string>;

struct MatchCase {
  const char* selector;
  Labels labels;
  bool matches;
};

class SelectorMatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(SelectorMatchTest, Matches) {
  const auto& c = GetParam();
  auto sel = ParseLabelSelector(c.selector);
  ASSERT_TRUE(sel.ok()) << sel.status().ToString();
  EXPECT_EQ(sel->Matches(c.labels), c.matches) << c.selector;
}

const Labels kAppWeb = {{"app", "web"}, {"tier", "front"}};

INSTANTIATE_TEST_SUITE_P(
    Table, SelectorMatchTest,
    ::testing::Values(
        MatchCase{"", kAppWeb, true}, MatchCase{"", {}, true}, MatchCase{"app=web", kAppWeb, true},
        MatchCase{"app==web", kAppWeb, true}, MatchCase{"app=db", kAppWeb, false},
        MatchCase{"app!=db", kAppWeb, true}, MatchCase{"app!=web", kAppWeb, false},
        MatchCase{"missing!=x", kAppWeb, true},  // absent label satisfies !=
        MatchCase{"app in (db, web)", kAppWeb, true}, MatchCase{"app in (db)", kAppWeb, false},
        MatchCase{"app notin (db)", kAppWeb, true}, MatchCase{"app notin (web)", kAppWeb, false},
        MatchCase{"missing notin (x)", kAppWeb, true}, MatchCase{"app", kAppWeb, true},
        MatchCase{"missing", kAppWeb, false}, MatchCase{"!missing", kAppWeb, true},
        MatchCase{"!app", kAppWeb, false}, MatchCase{"app=web,tier=front", kAppWeb, true},
        MatchCase{"app=web, tier=back", kAppWeb, false},
        MatchCase{"app in (web),!missing,tier", kAppWeb, true},
        MatchCase{"example.com/role=x", {{"example.com/role", "x"}}, true},
        MatchCase{"n>3", {{"n", "5"}}, true}, MatchCase{"n<3", {{"n", "5"}}, false},
        MatchCase{"empty=", {{"empty", ""}}, true}));

struct ErrorCase {
  const char* selector;
  const char* want;
};

class SelectorErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SelectorErrorTest, NamesTheBadTerm) {
  auto sel = ParseLabelSelector(GetParam().selector);
  ASSERT_FALSE(sel.ok()) << GetParam().selector;
  EXPECT_EQ(sel.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(sel.status().message(), HasSubstr(GetParam().want));
}

INSTANTIATE_TEST_SUITE_P(
    Table, SelectorErrorTest,
    ::testing::Values(ErrorCase{"app=web,a in (x", "term \"a in (x\""},
                      ErrorCase{"app=web,tier in ()", "term \"tier in ()\""},
                      ErrorCase{"-bad=x", "term \"-bad=x\": invalid label key"},
                      ErrorCase{"a=b c", "term \"a=b c\""},
                      ErrorCase{"a=-x-", "invalid label value \"-x-\""},
                      ErrorCase{"a,,b", "term \"\""}, ErrorCase{"!", "identifier after '!'"},
                      ErrorCase{"a>x", "must be an integer"}, ErrorCase{"a in x", "expected '('"}));

TEST(SelectorTest, ToStringIsCanonical) {
  auto sel = ParseLabelSelector("tier in (b, a),  app==web,!x,y,z!=1");
  ASSERT_TRUE(sel.ok()) << sel.status().ToString();
  EXPECT_EQ(sel->ToString(), "app=web,tier in (a,b),!x,y,z!=1");
  auto again = ParseLabelSelector(sel->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToString(), sel->ToString());
}

TEST(SelectorTest, FromJson) {
  auto sel = LabelSelectorFromJson(Json::parse(R"({
    "matchLabels": {"app": "web"},
    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]},
                         {"key": "legacy", "operator": "DoesNotExist"}]})"));
  ASSERT_TRUE(sel.ok()) << sel.status().ToString();
  EXPECT_EQ(sel->ToString(), "app=web,!legacy,tier in (edge,front)");
  EXPECT_TRUE(sel->Matches(kAppWeb));
  EXPECT_FALSE(sel->Matches({{"app", "web"}, {"tier", "back"}}));
}

TEST(SelectorTest, FromJsonEmptyMatchesAllAndNullMatchesNothing) {
  auto all = LabelSelectorFromJson(Json::object());
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Matches({}));
  auto none = LabelSelectorFromJson(Json());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->Matches(kAppWeb));
}

TEST(SelectorTest, FromJsonErrors) {
  struct Case {
    const char* json;
    const char* want;
  } cases[] = {
      {R"({"matchExpressions":[{"key":"a","operator":"Near"}]})",
       "selector.matchExpressions[0].operator: Unsupported value: \"Near\""},
      {R"({"matchExpressions":[{"key":"a","operator":"In"}]})",
       "selector.matchExpressions[0].values: Required value"},
      {R"({"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]})",
       "selector.matchExpressions[0].values: Forbidden"},
      {R"({"matchLabels":{"a":"-"}})", "selector.matchLabels[a]"},
      {R"({"matchLabelz":{}})", "unknown field \"matchLabelz\""},
  };
  for (const auto& c : cases) {
    auto sel = LabelSelectorFromJson(Json::parse(c.json));
    ASSERT_FALSE(sel.ok()) << c.json;
    EXPECT_EQ(sel.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(sel.status().message(), HasSubstr(c.want));
  }
}

}  // namespace
}  // namespace sbx::api
