// The sandbox firewall's parts that need no network: CIDR parsing, the
// default deny list, and the nft script (checked by nft itself, without
// committing, when root).
#include "daemon/firewall.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "daemon/network_policy.h"
#include "tests/daemon/cni_testing.h"

namespace sbx::daemon {
namespace {

TEST(Cidr, ParsesAddressesAndBlocksAndClearsHostBits) {
  auto a = Cidr::Parse("10.1.2.3/8");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->v6);
  EXPECT_EQ(a->text, "10.0.0.0/8");
  auto b = Cidr::Parse("169.254.169.254");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->text, "169.254.169.254/32");
  auto c = Cidr::Parse("fd00:ec2::254");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->v6);
  EXPECT_EQ(c->text, "fd00:ec2::254/128");
  EXPECT_EQ(Cidr::Parse("fe80::1/10")->text, "fe80::/10");
  EXPECT_EQ(Cidr::Parse("1.2.3.4/0")->text, "0.0.0.0/0");
}

TEST(Cidr, RefusesWhatIsNotABlock) {
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/x", "host.example",
                          "10.0.0.0/8/8", "10.0.0.0/-1"}) {
    EXPECT_FALSE(Cidr::Parse(bad).ok()) << bad;
  }
  auto list = ParseCidrList("10.0.0.0/8, 300.1.1.1", "--egress-deny");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("--egress-deny"), std::string::npos) << list.status().ToString();
  EXPECT_NE(list.status().message().find("300.1.1.1"), std::string::npos);
  EXPECT_FALSE(ParseAddress("10.0.0.0/8", "--dns").ok());
  EXPECT_EQ(ParseCidrList(" 10.0.0.0/8 ,,fc00::/7", "x")->size(), 2u);
}

bool Covers(const std::vector<Cidr>& list, const std::string& addr) {
  // True when some block of `list` equals addr with its prefix applied.
  for (const Cidr& c : list) {
    auto slash = c.text.find('/');
    auto masked = Cidr::Parse(addr + c.text.substr(slash));
    if (masked.ok() && masked->text == c.text) return true;
  }
  return false;
}

TEST(EgressDefaults, DenyTheMetadataServicePrivateRangesAndLoopbackButNotThePublicInternet) {
  auto deny = DefaultEgressDeny();
  for (const char* blocked : {"169.254.169.254", "fd00:ec2::254", "10.1.2.3", "172.16.0.1", "192.168.1.1",
                              "100.64.0.1", "127.0.0.1", "::1", "fe80::1", "224.0.0.1"}) {
    EXPECT_TRUE(Covers(deny, blocked)) << blocked;
  }
  for (const char* open : {"1.1.1.1", "203.0.113.10", "8.8.8.8", "2606:4700::1111", "172.32.0.1"}) {
    EXPECT_FALSE(Covers(deny, open)) << open;
  }
}

TEST(FirewallScript, HoldsEachSandboxsInterfaceAndAddressAndTheSettings) {
  oci::SimpleCommandRunner runner;
  EgressPolicy p;
  p.deny = DefaultEgressDeny();
  p.allow = *ParseCidrList("10.99.0.0/24", "x");
  p.dns = *ParseCidrList("10.99.0.53", "x");
  Firewall fw(runner, p, "sbxunit");
  // Nothing attached: the script only removes the table.
  EXPECT_EQ(fw.Script().find("chain"), std::string::npos) << fw.Script();
  EXPECT_NE(fw.Script().find("delete table inet sbxunit"), std::string::npos);

  fw.Remember("sbx-a", {{"veth1234"}, {"10.213.0.5"}, nullptr});
  fw.Remember("sbx-b", {{"veth5678", "bad name;"}, {"10.213.0.6", "fd00:1::6"}, nullptr});
  std::string s = fw.Script();
  EXPECT_NE(s.find("\"veth1234\" . 10.213.0.5"), std::string::npos) << s;
  EXPECT_NE(s.find("\"veth5678\" . 10.213.0.6"), std::string::npos) << s;
  EXPECT_NE(s.find("\"veth5678\" . fd00:1::6"), std::string::npos) << s;
  EXPECT_EQ(s.find("bad name"), std::string::npos) << s;  // not a Linux interface name
  EXPECT_NE(s.find("169.254.0.0/16"), std::string::npos);
  EXPECT_NE(s.find("fc00::/7"), std::string::npos);
  EXPECT_NE(s.find("set allow4 { type ipv4_addr; flags interval; auto-merge; elements = { 10.99.0.0/24 }"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("masquerade"), std::string::npos);

  if (::geteuid() != 0 || !oci::FindExecutable("nft").ok()) {
    if (oci::runsc_testing::InCi()) FAIL() << "needs root and nft (CI=true)";
    GTEST_SKIP() << "needs root and nft to check the script";
  }
  oci::CommandSpec check;
  check.argv = {"nft", "-c", "-f", "-"};
  check.stdin_data = s;
  auto r = runner.Run(check);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->err << "\n" << s;
}

bool NftAccepts(const std::string& script, std::string* err) {
  oci::CommandSpec check;
  check.argv = {"nft", "-c", "-f", "-"};
  check.stdin_data = script;
  auto r = oci::SimpleCommandRunner().Run(check);
  if (!r.ok()) return false;
  *err = r->err;
  return r->exit_code == 0;
}

TEST(FirewallScript, PoliciesBecomeChainsPerSandboxWithSelectorsResolvedToAddresses) {
  oci::SimpleCommandRunner runner;
  EgressPolicy p;
  p.deny = DefaultEgressDeny();
  Firewall fw(runner, p, "sbxunit");
  PolicyPod a;
  a.ns = "default";
  a.labels = {{"app", "a"}};
  a.named_ports = {{"http", 8080}};
  a.policy = api::Json::parse(R"({
    "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": 9000, "endPort": 9010}]},
               {"to": [{"ipBlock": {"cidr": "10.99.0.0/24", "except": ["10.99.0.53/32"]}}]}],
    "ingress": [{"from": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": "http"}]}]})");
  PolicyPod b;
  b.ns = "default";
  b.labels = {{"app", "b"}};
  PolicyPod other_ns = b;
  other_ns.ns = "elsewhere";
  fw.Remember("sbx-a", {{"veth1"}, {"10.213.0.5"}, a.ToJson()});
  fw.Remember("sbx-b", {{"veth2"}, {"10.213.0.6"}, b.ToJson()});
  fw.Remember("sbx-c", {{"veth3"}, {"10.213.0.7"}, other_ns.ToJson()});
  std::string s = fw.Script();
  // a's egress: b's address (not c's: another namespace) on 9000-9010, and
  // the private block but its resolver.
  EXPECT_NE(s.find("ip daddr { 10.213.0.6 } meta l4proto tcp th dport 9000-9010 accept"), std::string::npos) << s;
  EXPECT_EQ(s.find("10.213.0.7 } meta l4proto"), std::string::npos) << s;
  EXPECT_NE(s.find("ip daddr 10.99.0.0/24 ip daddr != { 10.99.0.53/32 } accept"), std::string::npos) << s;
  // a's ingress: the named port resolved to its container port.
  EXPECT_NE(s.find("ip saddr 198.51.100.0/24 meta l4proto tcp th dport 8080 return"), std::string::npos) << s;
  EXPECT_NE(s.find("10.213.0.5 : jump eg_0"), std::string::npos) << s;
  // b and c have no policy: no chain, the daemon's defaults.
  EXPECT_EQ(s.find("10.213.0.6 : jump"), std::string::npos) << s;

  // A live edit: b gets the secure default.
  b.policy = SecureDefaultPolicy();
  fw.Remember("sbx-b", {{"veth2"}, {"10.213.0.6"}, b.ToJson()});
  s = fw.Script();
  EXPECT_NE(s.find("10.213.0.6 : jump eg_1"), std::string::npos) << s;
  EXPECT_NE(s.find("ip daddr 0.0.0.0/0 ip daddr != { 10.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16 }"),
            std::string::npos)
      << s;

  if (::geteuid() != 0 || !oci::FindExecutable("nft").ok()) {
    if (oci::runsc_testing::InCi()) FAIL() << "needs root and nft (CI=true)";
    GTEST_SKIP() << "needs root and nft to check the script";
  }
  std::string err;
  EXPECT_TRUE(NftAccepts(s, &err)) << err << "\n" << s;
}

TEST(NetworkPolicy, BadPoliciesAreRefusedNamingTheField) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]})", "spec.networkPolicy.egress[0].to[0].ipBlock.cidr"},
      {R"({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/8"]}}]}]})",
       "spec.networkPolicy.egress[0].to[0].ipBlock.except[0]"},
      {R"({"ingress": [{"from": [{}]}]})", "spec.networkPolicy.ingress[0].from[0]"},
      {R"({"ingress": [{"ports": [{"port": 70000}]}]})", "spec.networkPolicy.ingress[0].ports[0].port"},
      {R"({"ingress": [{"ports": [{"protocol": "ICMP"}]}]})", "spec.networkPolicy.ingress[0].ports[0].protocol"},
      {R"({"egress": [{"ports": [{"port": 90, "endPort": 80}]}]})", "spec.networkPolicy.egress[0].ports[0].endPort"},
      {R"({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]})",
       "spec.networkPolicy.egress[0].to[0]"},
      {R"({"podSelector": {}})", "spec.networkPolicy.podSelector"},
  };
  for (const Case& c : cases) {
    auto r = ParseNetworkPolicy(api::Json::parse(c.json), "spec.networkPolicy");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().message().rfind(c.field, 0), 0u) << r.status().message();
  }
  EXPECT_TRUE(ParseNetworkPolicy(SecureDefaultPolicy(), "x").ok());
  EXPECT_TRUE(ParseNetworkPolicy(api::Json::object(), "x").ok());
}

TEST(NetworkPolicy, TemplatesAreManagedWithTheSecureDefaultUnlessUnmanaged) {
  EXPECT_EQ(TemplatePolicy(api::Json::parse(R"({"spec": {}})")), SecureDefaultPolicy());
  auto custom = api::Json::parse(R"({"spec": {"networkPolicy": {"egress": []}}})");
  EXPECT_EQ(TemplatePolicy(custom), custom["spec"]["networkPolicy"]);
  EXPECT_TRUE(TemplatePolicy(api::Json::parse(R"({"spec": {"networkPolicyManagement": "Unmanaged",
                                                           "networkPolicy": {"egress": []}}})"))
                  .is_null());
}

}  // namespace
}  // namespace sbx::daemon
