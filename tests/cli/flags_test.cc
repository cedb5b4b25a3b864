#include "cli/flags.h"

#include <gtest/gtest.h>

#include "common/strings.h"

namespace sbx::cli {
namespace {

std::vector<FlagSpec> Specs() {
  return {
      {"namespace", 'n', FlagType::kString, "", ""},
      {"filename", 'f', FlagType::kStringList, "", ""},
      {"stdin", 'i', FlagType::kBool, "", ""},
      {"tty", 't', FlagType::kBool, "", ""},
      {"wait", 0, FlagType::kBool, "true", ""},
      {"tail", 0, FlagType::kInt, "-1", ""},
      {"timeout", 0, FlagType::kDuration, "30s", ""},
  };
}

// A compact rendering of the parse for table comparison.
std::string Render(const ParsedFlags& f) {
  std::string s = "args=" + Join(f.args, ",");
  if (f.saw_double_dash) s += " --=" + Join(f.passthrough, ",");
  if (f.Has("namespace")) s += " ns=" + f.String("namespace");
  if (f.Has("filename")) s += " f=" + Join(f.Strings("filename"), ",");
  if (f.Bool("stdin")) s += " i";
  if (f.Bool("tty")) s += " t";
  if (!f.Bool("wait")) s += " nowait";
  if (f.Has("tail")) s += " tail=" + std::to_string(f.Int("tail"));
  if (f.Has("timeout")) s += " timeout=" + std::to_string(f.Duration("timeout").count()) + "ms";
  return s;
}

TEST(ParseFlagsTest, AcceptsPflagSpellings) {
  struct Case {
    std::vector<std::string> argv;
    std::string want;
  } cases[] = {
      {{}, "args="},
      {{"get", "sandboxes"}, "args=get,sandboxes"},
      {{"-n", "team"}, "args= ns=team"},
      {{"-nteam"}, "args= ns=team"},
      {{"-n=team"}, "args= ns=team"},
      {{"--namespace", "team"}, "args= ns=team"},
      {{"--namespace=team"}, "args= ns=team"},
      {{"-n", "a", "-n", "b"}, "args= ns=b"},
      {{"-f", "a.yaml", "--filename=b.yaml", "-fc.yaml"}, "args= f=a.yaml,b.yaml,c.yaml"},
      {{"-f", "-"}, "args= f=-"},
      {{"-"}, "args=-"},
      {{"-it", "sb"}, "args=sb i t"},
      {{"-i=false"}, "args="},
      {{"--wait=false"}, "args= nowait"},
      {{"--wait"}, "args="},
      {{"--tail", "20"}, "args= tail=20"},
      {{"--tail=-1"}, "args= tail=-1"},
      {{"--timeout=1m30s"}, "args= timeout=90000ms"},
      {{"--timeout", "500ms"}, "args= timeout=500ms"},
      {{"--timeout=0"}, "args= timeout=0ms"},
      {{"sb", "--", "sh", "-c", "echo --x"}, "args=sb --=sh,-c,echo --x"},
      {{"-i", "sb", "--", "-n", "x"}, "args=sb --=-n,x i"},
      {{"--"}, "args= --="},
  };
  for (const auto& c : cases) {
    Result<ParsedFlags> got = ParseFlags(Specs(), c.argv);
    ASSERT_TRUE(got.ok()) << Join(c.argv, " ") << ": " << got.status().ToString();
    EXPECT_EQ(Render(*got), c.want) << Join(c.argv, " ");
  }
}

TEST(ParseFlagsTest, RejectsWithPflagMessages) {
  struct Case {
    std::vector<std::string> argv;
    std::string want;
  } cases[] = {
      {{"--bogus"}, "unknown flag: --bogus"},
      {{"--bogus=1"}, "unknown flag: --bogus"},
      {{"-x"}, "unknown shorthand flag: 'x' in -x"},
      {{"-ix"}, "unknown shorthand flag: 'x' in -ix"},
      {{"-n"}, "flag needs an argument: 'n' in -n"},
      {{"--namespace"}, "flag needs an argument: --namespace"},
      {{"--tail=abc"}, "invalid argument \"abc\" for \"--tail\" flag: not an integer"},
      {{"--wait=maybe"}, "invalid argument \"maybe\" for \"--wait\" flag: not a boolean"},
      {{"--timeout=10"},
       "invalid argument \"10\" for \"--timeout\" flag: time: missing unit in duration \"10\""},
      {{"--timeout=3x"},
       "invalid argument \"3x\" for \"--timeout\" flag: time: unknown unit \"x\" in duration "
       "\"3x\""},
  };
  for (const auto& c : cases) {
    Result<ParsedFlags> got = ParseFlags(Specs(), c.argv);
    ASSERT_FALSE(got.ok()) << Join(c.argv, " ");
    EXPECT_EQ(got.status().message(), c.want);
  }
}

TEST(ParseFlagsTest, DefaultsApplyWhenAbsent) {
  Result<ParsedFlags> got = ParseFlags(Specs(), {});
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->Bool("wait"));
  EXPECT_EQ(got->Int("tail"), -1);
  EXPECT_EQ(got->Duration("timeout"), std::chrono::seconds(30));
  EXPECT_TRUE(got->Strings("filename").empty());
  EXPECT_FALSE(got->Has("namespace"));
}

TEST(ParseGoDurationTest, FollowsGoSyntax) {
  struct Case {
    const char* text;
    int64_t ms;
  } ok_cases[] = {{"0", 0},       {"1s", 1000},    {"60s", 60000},      {"1.5s", 1500},
                  {"2m", 120000}, {"1h", 3600000}, {"1h2m3s", 3723000}, {"250ms", 250},
                  {"-1s", -1000}};
  for (const auto& c : ok_cases) {
    Result<std::chrono::milliseconds> d = ParseGoDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text;
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
  for (const char* bad : {"", "s", "1", "1d", ".s", "abc"}) {
    EXPECT_FALSE(ParseGoDuration(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace sbx::cli
