// CNI invocation: configuration lists, the plugin protocol (environment,
// stdin, prevResult chaining, capabilities, DEL order, error objects) with
// small shell plugins that record what they were given. The real Debian
// plugins in a real network namespace are in cni_root_test.cc.
#include "daemon/cni.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon::cni {
namespace {

using oci::runsc_testing::TempDir;

TEST(NetworkConfigListTest, ParsesAListWithItsPlugins) {
  auto l = NetworkConfigList::Parse(
      R"({"cniVersion":"1.0.0","name":"sbx","plugins":[{"type":"bridge","bridge":"sbx0"},
          {"type":"portmap","capabilities":{"portMappings":true}}]})",
      "test.conflist");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->cni_version, "1.0.0");
  EXPECT_EQ(l->name, "sbx");
  ASSERT_EQ(l->plugins.size(), 2u);
  EXPECT_EQ(l->plugins[0]["bridge"], "sbx0");
  EXPECT_EQ(l->plugins[1]["type"], "portmap");
}

TEST(NetworkConfigListTest, BadListsNameTheFileAndTheField) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"not json", "net.conflist: not a JSON object"},
      {R"({"name":"n","plugins":[{"type":"bridge"}]})", "net.conflist: \"cniVersion\""},
      {R"({"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]})", "net.conflist: \"name\""},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[]})", "net.conflist: \"plugins\""},
      {R"({"cniVersion":"1.0.0","name":"n"})", "net.conflist: \"plugins\""},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{}]})",
       "net.conflist: plugins[1].type"},
      {R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]})",
       "net.conflist: plugins[0].type \"../../bin/sh\" must be a plain file name"},
  };
  for (const Case& c : cases) {
    auto l = NetworkConfigList::Parse(c.text, "net.conflist");
    ASSERT_FALSE(l.ok()) << c.text;
    EXPECT_NE(l.status().message().find(c.error), std::string::npos)
        << l.status().ToString() << " should contain " << c.error;
  }
}

TEST(AddResultTest, ReadsTheAddresses) {
  auto r = AddResult::FromJson(Json::parse(
      R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],
          "ips":[{"address":"10.213.0.7/16","gateway":"10.213.0.1","interface":0},
                 {"address":"fd00::7/64"}]})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0].Ip(), "10.213.0.7");
  EXPECT_EQ(r->ips[0].gateway, "10.213.0.1");
  EXPECT_EQ(r->ips[1].Ip(), "fd00::7");
  EXPECT_FALSE(AddResult::FromJson(Json::parse(R"({"ips":[{"gateway":"x"}]})")).ok());
}

// A plugin directory with shell plugins. Each plugin appends
// "<name> <CNI_COMMAND> <CNI_CONTAINERID> <CNI_NETNS> <CNI_IFNAME>" to
// calls.log, saves its stdin as <name>.<command>.json, and prints a result
// that adds its own address to the previous result's.
class CniPluginsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    for (const char* name : {"one", "two"}) {
      WritePlugin(name, std::string(R"(in=$(cat)
echo "$0 $CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME" >> )") + dir_.Sub("calls.log") + R"(
printf '%s' "$in" > )" + dir_.path() + R"(/$(basename $0).$CNI_COMMAND.json
[ "$CNI_COMMAND" = ADD ] || exit 0
n=$(printf '%s' "$in" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("prevResult",{}).get("ips",[])))')
printf '{"cniVersion":"1.0.0","ips":[' 
i=0; while [ $i -le $n ]; do [ $i -gt 0 ] && printf ','; printf '{"address":"10.0.0.%d/24"}' $((i+1)); i=$((i+1)); done
printf ']}'
)");
    }
    WritePlugin("broken", R"(cat >/dev/null
echo '{"cniVersion":"1.0.0","code":11,"msg":"no bridge","details":"sbx0 is down"}'
exit 1
)");
  }

  void WritePlugin(const std::string& name, const std::string& body) {
    std::string path = dir_.Sub(name);
    ASSERT_TRUE(WriteFileAtomic(path, "#!/bin/sh\n" + body, 0755).ok());
  }

  std::vector<std::string> Calls() {
    auto text = ReadFile(dir_.Sub("calls.log"));
    if (!text.ok()) return {};
    std::vector<std::string> out;
    for (const std::string& line : Split(*text, '\n')) {
      if (line.empty()) continue;
      // Plugin paths are absolute; keep the file name.
      out.push_back(line.substr(line.rfind('/', line.find(' ')) + 1));
    }
    return out;
  }

  Json Stdin(const std::string& plugin, const std::string& command) {
    auto text = ReadFile(dir_.Sub(plugin + "." + command + ".json"));
    return text.ok() ? Json::parse(*text, nullptr, false) : Json();
  }

  NetworkConfigList List(const std::string& plugins) {
    return *NetworkConfigList::Parse(
        R"({"cniVersion":"1.0.0","name":"testnet","plugins":)" + plugins + "}", "test");
  }

  TempDir dir_;
  oci::SimpleCommandRunner runner_;
};

TEST_F(CniPluginsTest, AddChainsResultsAndDelRunsInReverseWithTheCachedResult) {
  Plugins plugins(runner_, {"/nonexistent", dir_.path()});
  Attachment a;
  a.container_id = "sbx-abc";
  a.netns = "/run/sbx/netns/sbx-abc";
  auto list = List(R"([{"type":"one","x":1},{"type":"two"}])");
  auto r = plugins.Add(list, a);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // "two" saw "one"'s result and added a second address.
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[1].Ip(), "10.0.0.2");
  Json one = Stdin("one", "ADD"), two = Stdin("two", "ADD");
  EXPECT_EQ(one["cniVersion"], "1.0.0");
  EXPECT_EQ(one["name"], "testnet");
  EXPECT_EQ(one["x"], 1);
  EXPECT_FALSE(one.contains("prevResult"));
  EXPECT_EQ(two["prevResult"]["ips"].size(), 1u);

  ASSERT_TRUE(plugins.Check(list, a, r->raw).ok());
  ASSERT_TRUE(plugins.Del(list, a, r->raw).ok());
  EXPECT_EQ(Stdin("one", "DEL")["prevResult"], r->raw);
  EXPECT_EQ(Stdin("two", "CHECK")["prevResult"], r->raw);
  EXPECT_EQ(Calls(), (std::vector<std::string>{
                         "one ADD sbx-abc /run/sbx/netns/sbx-abc eth0",
                         "two ADD sbx-abc /run/sbx/netns/sbx-abc eth0",
                         "one CHECK sbx-abc /run/sbx/netns/sbx-abc eth0",
                         "two CHECK sbx-abc /run/sbx/netns/sbx-abc eth0",
                         "two DEL sbx-abc /run/sbx/netns/sbx-abc eth0",
                         "one DEL sbx-abc /run/sbx/netns/sbx-abc eth0",
                     }));
}

TEST_F(CniPluginsTest, CapabilityArgumentsReachOnlyThePluginsThatDeclareThem) {
  Plugins plugins(runner_, {dir_.path()});
  Attachment a;
  a.container_id = "c";
  a.netns = "/x";
  a.runtime_config = {{"portMappings", {{{"hostPort", 8080}, {"containerPort", 80}}}},
                      {"bandwidth", {{"ingressRate", 1}}}};
  auto list = List(R"([{"type":"one"},
      {"type":"two","capabilities":{"portMappings":true,"bandwidth":false},
       "runtimeConfig":{"portMappings":"from the file"}}])");
  ASSERT_TRUE(plugins.Add(list, a).ok());
  EXPECT_FALSE(Stdin("one", "ADD").contains("runtimeConfig"));
  Json two = Stdin("two", "ADD");
  EXPECT_EQ(two["runtimeConfig"], Json({{"portMappings", a.runtime_config["portMappings"]}}));
  EXPECT_FALSE(two.contains("capabilities") && !two["capabilities"].is_object());
}

TEST_F(CniPluginsTest, PluginErrorsNameThePluginAndCarryItsMessage) {
  Plugins plugins(runner_, {dir_.path()});
  Attachment a;
  a.container_id = "c";
  a.netns = "/x";
  auto r = plugins.Add(List(R"([{"type":"one"},{"type":"broken"}])"), a);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "CNI plugin broken ADD: no bridge: sbx0 is down");

  auto missing = plugins.Add(List(R"([{"type":"absent"}])"), a);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("\"absent\" not found in " + dir_.path()),
            std::string::npos)
      << missing.status().ToString();
}

TEST_F(CniPluginsTest, DelGoesOnPastAFailingPluginAndReportsTheFirstError) {
  Plugins plugins(runner_, {dir_.path()});
  Attachment a;
  a.container_id = "c";
  a.netns = "/x";
  Status s = plugins.Del(List(R"([{"type":"one"},{"type":"broken"},{"type":"two"}])"), a, Json());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("CNI plugin broken DEL"), std::string::npos) << s.ToString();
  EXPECT_EQ(Calls(), (std::vector<std::string>{"two DEL c /x eth0", "one DEL c /x eth0"}));
  EXPECT_FALSE(Stdin("one", "DEL").contains("prevResult"));
}

}  // namespace
}  // namespace sbx::daemon::cni
