// The real Debian CNI plugins (bridge, host-local, portmap, loopback) in a
// real network namespace pinned by CreateNetns. Needs root and
// containernetworking-plugins; skipped without them, failed under CI=true.
#include <gtest/gtest.h>

#include "common/fs.h"
#include "common/strings.h"
#include "daemon/cni.h"
#include "daemon/netns.h"
#include "tests/daemon/cni_testing.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon::cni {
namespace {

using cni_testing::Sh;
using oci::runsc_testing::TempDir;

constexpr char kPluginDir[] = "/usr/lib/cni";
constexpr char kBridge[] = "sbxtest0";

class CniRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SBX_REQUIRE_ROOT_AND_CNI();
    ASSERT_FALSE(dir_.path().empty());
    netns_ = dir_.Sub("netns/sbx-test");
  }
  void TearDown() override {
    (void)RemoveNetns(netns_);
    Sh(std::string("ip link del ") + kBridge);
  }

  NetworkConfigList List() {
    auto l = NetworkConfigList::Parse(R"({"cniVersion":"1.0.0","name":"sbxtest","plugins":[
        {"type":"bridge","bridge":")" + std::string(kBridge) +
                                          R"(","isGateway":true,"ipMasq":false,
         "ipam":{"type":"host-local","ranges":[[{"subnet":"10.254.77.0/24"}]],
                 "routes":[{"dst":"0.0.0.0/0"}],"dataDir":")" +
                                          dir_.Sub("ipam") + R"("}},
        {"type":"portmap","capabilities":{"portMappings":true}}]})",
                                      "test");
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return *l;
  }

  TempDir dir_;
  std::string netns_;
  oci::SimpleCommandRunner runner_;
};

TEST_F(CniRootTest, PinnedNamespaceExistsUntilRemoved) {
  ASSERT_TRUE(CreateNetns(netns_).ok());
  EXPECT_TRUE(IsNetns(netns_));
  EXPECT_FALSE(IsNetns(dir_.path()));
  Status again = CreateNetns(netns_);
  EXPECT_EQ(again.code(), Code::kAlreadyExists) << again.ToString();
  // Only a loopback device, and not the host's namespace.
  EXPECT_EQ(Sh("nsenter --net=" + netns_ + " ip -o link | wc -l"), "1\n");
  EXPECT_NE(Sh("readlink /proc/self/ns/net"), Sh("nsenter --net=" + netns_ + " readlink /proc/self/ns/net"));
  ASSERT_TRUE(RemoveNetns(netns_).ok());
  EXPECT_FALSE(PathExists(netns_));
  EXPECT_TRUE(RemoveNetns(netns_).ok());  // already gone
}

TEST_F(CniRootTest, BridgeHostLocalAndPortmapAttachAndDetachASandboxNamespace) {
  ASSERT_TRUE(CreateNetns(netns_).ok());
  Plugins plugins(runner_, {kPluginDir});
  Attachment a;
  a.container_id = "sbx-cni-root-test";
  a.netns = netns_;
  a.runtime_config = {{"portMappings",
                       {{{"hostPort", 18080}, {"containerPort", 80}, {"protocol", "tcp"}}}}};
  NetworkConfigList list = List();
  auto added = plugins.Add(list, a);
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  ASSERT_EQ(added->ips.size(), 1u);
  const std::string ip = added->ips[0].Ip();
  EXPECT_EQ(ip.rfind("10.254.77.", 0), 0u) << ip;
  EXPECT_EQ(added->ips[0].gateway, "10.254.77.1");

  // eth0 inside has the address; the host side is on the bridge, which is
  // the gateway; the namespace reaches it.
  EXPECT_NE(Sh("nsenter --net=" + netns_ + " ip -o -4 addr show eth0").find(ip + "/24"),
            std::string::npos);
  EXPECT_NE(Sh(std::string("ip -o -4 addr show ") + kBridge).find("10.254.77.1/24"),
            std::string::npos);
  EXPECT_NE(Sh("nsenter --net=" + netns_ + " busybox ping -c 1 -W 2 10.254.77.1").find("1 packets received"),
            std::string::npos);
  // host-local keeps the lease under its dataDir.
  EXPECT_TRUE(PathExists(dir_.Sub("ipam/sbxtest/" + ip)));

  // CHECK of a pod without port mappings (portmap 1.1.1's CHECK also looks
  // for its IPv6 chain when the pod has no IPv6 address, and fails).
  cni::Attachment no_ports = a;
  no_ports.runtime_config = Json::object();
  Status checked = plugins.Check(list, no_ports, added->raw);
  EXPECT_TRUE(checked.ok()) << checked.ToString();
  // The published port is a DNAT rule for the pod's address.
  EXPECT_NE(Sh("iptables -t nat -S | grep -- '--dport 18080'").find(ip + ":80"), std::string::npos);

  ASSERT_TRUE(plugins.Del(list, a, added->raw).ok());
  EXPECT_EQ(Sh("nsenter --net=" + netns_ + " ip -o link show eth0 >/dev/null 2>&1 || echo absent"),
            "absent\n");
  EXPECT_EQ(Sh("iptables -t nat -S | grep -c -- '--dport 18080'"), "0\n");
  EXPECT_FALSE(PathExists(dir_.Sub("ipam/sbxtest/" + ip)));
  // A second DEL (a retry after a crash) succeeds: nothing is left to free.
  Status again = plugins.Del(list, a, added->raw);
  EXPECT_TRUE(again.ok()) << again.ToString();
  ASSERT_TRUE(RemoveNetns(netns_).ok());
}

TEST_F(CniRootTest, LoopbackPluginBringsUpLo) {
  ASSERT_TRUE(CreateNetns(netns_).ok());
  Plugins plugins(runner_, {kPluginDir});
  auto lo = NetworkConfigList::Parse(
      R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})", "test");
  ASSERT_TRUE(lo.ok());
  Attachment a;
  a.container_id = "sbx-cni-root-test";
  a.netns = netns_;
  a.ifname = "lo";
  EXPECT_EQ(Sh("nsenter --net=" + netns_ + " ip -o link show lo | grep -c LOWER_UP"), "0\n");
  auto r = plugins.Add(*lo, a);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Sh("nsenter --net=" + netns_ + " ip -o link show lo | grep -c LOWER_UP"), "1\n");
}

}  // namespace
}  // namespace sbx::daemon::cni
