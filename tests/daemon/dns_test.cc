// The sandboxes' resolv.conf: from the settings, from the host, and past a
// loopback stub resolver to systemd-resolved's upstream list.
#include "daemon/dns.h"

#include <gtest/gtest.h>

#include "common/fs.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {
namespace {

using oci::runsc_testing::TempDir;

TEST(ResolvConf, ParsesNameserversSearchAndOptions) {
  ResolvConf c = ParseResolvConf(
      "# comment\nnameserver 10.0.0.2\nnameserver  fe80::1%eth0\nnameserver not-an-ip\n"
      "search a.example b.example ; trailing\noptions ndots:2 timeout:1\nnameserver 2001:db8::53\n");
  EXPECT_EQ(c.nameservers, (std::vector<std::string>{"10.0.0.2", "2001:db8::53"}));
  EXPECT_EQ(c.search, (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(c.options, (std::vector<std::string>{"ndots:2", "timeout:1"}));
  std::string text = FormatResolvConf(c);
  EXPECT_NE(text.find("nameserver 10.0.0.2\nnameserver 2001:db8::53\nsearch a.example b.example\n"
                      "options ndots:2 timeout:1\n"),
            std::string::npos)
      << text;
}

TEST(ResolvConf, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.53"));
  EXPECT_TRUE(IsLoopbackAddress("::1"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.2"));
  EXPECT_FALSE(IsLoopbackAddress("::2"));
}

TEST(SandboxResolvConf, TheSettingsWinAndAreChecked) {
  auto c = SandboxResolvConf({"10.99.0.53", "2001:db8::53"}, "/nonexistent", "/nonexistent");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->nameservers.size(), 2u);
  auto bad = SandboxResolvConf({"dns.example"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--dns"), std::string::npos);
  auto loop = SandboxResolvConf({"127.0.0.53"});
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.status().message().find("loopback"), std::string::npos);
}

TEST(SandboxResolvConf, TheHostsResolversUnlessTheyAreALoopbackStub) {
  TempDir dir;
  const std::string host = dir.Sub("resolv.conf"), resolved = dir.Sub("resolved.conf");
  ASSERT_TRUE(WriteFileAtomic(host, "nameserver 10.0.0.2\nsearch corp.example\n").ok());
  auto c = SandboxResolvConf({}, host, resolved);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->nameservers, std::vector<std::string>{"10.0.0.2"});
  EXPECT_EQ(c->search, std::vector<std::string>{"corp.example"});

  ASSERT_TRUE(WriteFileAtomic(host, "nameserver 127.0.0.53\noptions edns0\n").ok());
  ASSERT_TRUE(WriteFileAtomic(resolved, "nameserver 10.0.0.2\nnameserver 127.0.0.1\n").ok());
  c = SandboxResolvConf({}, host, resolved);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->nameservers, std::vector<std::string>{"10.0.0.2"});
  EXPECT_EQ(c->source, resolved);

  ASSERT_TRUE(WriteFileAtomic(resolved, "nameserver 127.0.0.1\n").ok());
  c = SandboxResolvConf({}, host, resolved);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->nameservers.empty());
}

TEST(PodResolvConf, FollowsDnsPolicyAndMergesDnsConfigAsTheKubeletDoes) {
  ResolvConf cluster = ParseResolvConf("nameserver 10.213.0.1\nsearch svc.cluster.local cluster.local\noptions ndots:5\n");
  ResolvConf upstream = ParseResolvConf("nameserver 10.0.0.2\nsearch corp.example\n");
  auto spec = [](const char* j) { return nlohmann::json::parse(j); };
  auto c = PodResolvConf(spec("{}"), cluster, upstream, "spec");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->nameservers, std::vector<std::string>{"10.213.0.1"});
  c = PodResolvConf(spec(R"({"dnsPolicy": "Default"})"), cluster, upstream, "spec");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->nameservers, std::vector<std::string>{"10.0.0.2"});
  // None: only dnsConfig (what upstream's secure default sets).
  c = PodResolvConf(spec(R"({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["8.8.8.8", "1.1.1.1"],
                             "searches": ["a.example"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}})"),
                    cluster, upstream, "spec");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(FormatResolvConf(*c), "nameserver 8.8.8.8\nnameserver 1.1.1.1\nsearch a.example\noptions ndots:2 edns0\n");
  // ClusterFirst with dnsConfig: appended, a same-named option replaced.
  c = PodResolvConf(spec(R"({"dnsConfig": {"nameservers": ["9.9.9.9"], "options": [{"name": "ndots", "value": "1"}]}})"),
                    cluster, upstream, "spec");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->nameservers, (std::vector<std::string>{"10.213.0.1", "9.9.9.9"}));
  EXPECT_EQ(c->options, std::vector<std::string>{"ndots:1"});
}

TEST(PodResolvConf, BadInputNamesTheField) {
  ResolvConf none;
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({"dnsPolicy": "None"})", "spec.dnsConfig.nameservers: Required value"},
      {R"({"dnsPolicy": "Sometimes"})", "spec.dnsPolicy: Unsupported value"},
      {R"({"dnsConfig": {"nameservers": ["dns.example"]}})", "spec.dnsConfig.nameservers[0]"},
      {R"({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"]}})",
       "spec.dnsConfig.nameservers: Invalid value"},
  };
  for (const Case& c : cases) {
    auto r = PodResolvConf(nlohmann::json::parse(c.json), none, none, "spec");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().message().rfind(c.field, 0), 0u) << r.status().message();
  }
}

}  // namespace
}  // namespace sbx::daemon
