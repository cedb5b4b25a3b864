// NetworkManager with the real Debian CNI plugins: attach, detach, the
// cached result after a restart, and the start-up sweep of namespaces and
// leases whose pods are gone. Needs root and containernetworking-plugins.
#include "daemon/network.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/fs.h"
#include "daemon/netns.h"
#include "tests/daemon/cni_testing.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {
namespace {

using cni_testing::Sh;
using oci::runsc_testing::TempDir;

int HostVeths() { return std::stoi(Sh("ip -o link show type veth | wc -l")); }

class NetworkRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SBX_REQUIRE_ROOT_AND_CNI();
    ASSERT_FALSE(dir_.path().empty());
    options_.netns_dir = dir_.Sub("run/netns");
    options_.state_dir = dir_.Sub("state/network");
    options_.firewall = false;
    options_.subnet = "10.254.78.0/24";
    veths_before_ = HostVeths();
  }

  std::unique_ptr<NetworkManager> Manager() {
    auto m = NetworkManager::Create(options_, runner_);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }

  TempDir dir_;
  NetworkOptions options_;
  oci::SimpleCommandRunner runner_;
  int veths_before_ = 0;
};

TEST_F(NetworkRootTest, AttachGivesEachPodItsOwnNamespaceAndAddressAndDetachFreesThem) {
  auto m = Manager();
  ASSERT_TRUE(m);
  auto a = m->Attach("sbx-net-a", {});
  auto b = m->Attach("sbx-net-b", {{18081, 80, "tcp", "127.0.0.1"}});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(a->ips.size(), 1u);
  ASSERT_EQ(b->ips.size(), 1u);
  EXPECT_NE(a->ips[0], b->ips[0]);
  EXPECT_EQ(a->ips[0].rfind("10.254.78.", 0), 0u) << a->ips[0];
  EXPECT_TRUE(IsNetns(a->netns));
  EXPECT_EQ(HostVeths(), veths_before_ + 2);
  // loopback is up in the pod's namespace, eth0 has the address.
  EXPECT_NE(Sh("nsenter --net=" + a->netns + " ip -o link show lo").find("LOWER_UP"),
            std::string::npos);
  EXPECT_NE(Sh("nsenter --net=" + a->netns + " ip -o -4 addr show eth0").find(a->ips[0] + "/24"),
            std::string::npos);
  // The pods reach each other through the host (no firewall here).
  EXPECT_NE(Sh("nsenter --net=" + a->netns + " busybox ping -c 1 -W 2 " + b->ips[0])
                .find("1 packets received"),
            std::string::npos);

  // A restarted daemon finds the attachment.
  auto again = Manager();
  auto got = again->Get("sbx-net-b");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->ips, b->ips);
  EXPECT_EQ(again->Get("sbx-net-c").status().code(), Code::kNotFound);

  ASSERT_TRUE(again->Detach("sbx-net-a").ok());
  ASSERT_TRUE(again->Detach("sbx-net-b").ok());
  EXPECT_TRUE(again->Detach("sbx-net-b").ok());  // already gone
  EXPECT_FALSE(PathExists(a->netns));
  EXPECT_FALSE(PathExists(b->netns));
  EXPECT_EQ(HostVeths(), veths_before_);
  EXPECT_FALSE(PathExists(options_.state_dir + "/ipam/sbx/" + a->ips[0]));
  EXPECT_FALSE(PathExists(options_.state_dir + "/ipam/sbx/" + b->ips[0]));
}

TEST_F(NetworkRootTest, SweepReleasesWhatGonePodsHeldIncludingAHalfDoneAttach) {
  auto m = Manager();
  ASSERT_TRUE(m);
  auto kept = m->Attach("sbx-net-kept", {});
  auto gone = m->Attach("sbx-net-gone", {});
  ASSERT_TRUE(kept.ok() && gone.ok());
  // A crash between creating the namespace and the first plugin.
  ASSERT_TRUE(CreateNetns(options_.netns_dir + "/sbx-net-half").ok());

  auto swept = Manager()->Sweep({"sbx-net-kept"});
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(*swept, 2);
  EXPECT_TRUE(IsNetns(kept->netns));
  EXPECT_FALSE(PathExists(gone->netns));
  EXPECT_FALSE(PathExists(options_.netns_dir + "/sbx-net-half"));
  EXPECT_FALSE(PathExists(options_.state_dir + "/ipam/sbx/" + gone->ips[0]));
  EXPECT_TRUE(PathExists(options_.state_dir + "/ipam/sbx/" + kept->ips[0]));
  EXPECT_EQ(HostVeths(), veths_before_ + 1);
  ASSERT_TRUE(m->Detach("sbx-net-kept").ok());
  EXPECT_EQ(HostVeths(), veths_before_);
}

TEST_F(NetworkRootTest, TheFirewallKnowsEachAttachedPodAndKeepsPodsApartByDefault) {
  options_.firewall = true;
  options_.firewall_table = "sbxtest";
  options_.egress.deny = DefaultEgressDeny();
  auto m = Manager();
  ASSERT_TRUE(m);
  auto a = m->Attach("sbx-fw-a", {});
  auto b = m->Attach("sbx-fw-b", {});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::string table = Sh("nft list table inet sbxtest");
  EXPECT_NE(table.find(a->ips[0]), std::string::npos) << table;
  EXPECT_NE(table.find(b->ips[0]), std::string::npos) << table;
  // The sandbox subnet is private: one pod cannot reach another, and gets
  // an immediate refusal rather than silence.
  std::string ping = Sh("nsenter --net=" + a->netns + " busybox ping -c 1 -W 2 " + b->ips[0]);
  EXPECT_EQ(ping.find("1 packets received"), std::string::npos) << ping;

  // With the subnet allowed (a restarted daemon with other settings), a
  // reaches b, but only from its own address: a forged source is dropped.
  NetworkOptions allowing = options_;
  allowing.egress.allow = *ParseCidrList("10.254.78.0/24", "test");
  auto m2 = NetworkManager::Create(allowing, runner_);
  ASSERT_TRUE(m2.ok()) << m2.status().ToString();
  ASSERT_TRUE((*m2)->Sweep({"sbx-fw-a", "sbx-fw-b"}).ok());
  ping = Sh("nsenter --net=" + a->netns + " busybox ping -c 1 -W 2 " + b->ips[0]);
  EXPECT_NE(ping.find("1 packets received"), std::string::npos) << ping;
  const std::string in_b = "nsenter --net=" + b->netns + " ";
  Sh(in_b + "nft add table ip probe");
  Sh(in_b + "nft add chain ip probe in '{ type filter hook input priority 0; }'");
  Sh(in_b + "nft add rule ip probe in icmp type echo-request counter");
  Sh("nsenter --net=" + a->netns + " ip addr add 10.254.78.200/32 dev eth0");
  Sh("nsenter --net=" + a->netns + " busybox ping -c 2 -W 1 -I 10.254.78.200 " + b->ips[0]);
  std::string counted = Sh(in_b + "nft list chain ip probe in");
  EXPECT_NE(counted.find("packets 0 "), std::string::npos) << counted;
  Sh("nsenter --net=" + a->netns + " busybox ping -c 2 -W 1 " + b->ips[0]);
  counted = Sh(in_b + "nft list chain ip probe in");
  EXPECT_NE(counted.find("packets 2 "), std::string::npos) << counted;

  // A restart finds both pods again; the sweep of a gone one rewrites the
  // table without it (and with the default policy again).
  auto again = Manager();
  ASSERT_TRUE(again);
  auto swept = again->Sweep({"sbx-fw-a"});
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(*swept, 1);
  table = Sh("nft list table inet sbxtest");
  EXPECT_NE(table.find(a->ips[0]), std::string::npos) << table;
  EXPECT_EQ(table.find(b->ips[0]), std::string::npos) << table;
  // The last detach removes the table.
  ASSERT_TRUE(again->Detach("sbx-fw-a").ok());
  EXPECT_NE(Sh("nft list table inet sbxtest").find("No such file"), std::string::npos);
  EXPECT_EQ(HostVeths(), veths_before_);
}

TEST_F(NetworkRootTest, DetachRunsTheListThatAttachedAfterTheSettingsChanged) {
  auto before = Manager();
  ASSERT_TRUE(before);
  auto a = before->Attach("sbx-net-moved", {});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const std::string lease = options_.state_dir + "/ipam/sbx/" + a->ips[0];
  ASSERT_TRUE(PathExists(lease));
  // The daemon restarts with a conflist of another subnet and
  // lease directory (its cached results stay where they were).
  NetworkOptions other_net = options_;
  other_net.firewall = false;
  other_net.subnet = "10.254.82.0/24";
  other_net.state_dir = dir_.Sub("state2/network");
  std::string other = dir_.Sub("other.conflist");
  ASSERT_TRUE(WriteFileAtomic(other, BuiltinConflist(other_net)).ok());
  NetworkOptions changed = options_;
  changed.conflist_path = other;
  auto after = NetworkManager::Create(changed, runner_);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_TRUE((*after)->Detach("sbx-net-moved").ok());
  EXPECT_FALSE(PathExists(lease));
  EXPECT_EQ(HostVeths(), veths_before_);
}

// Attach/detach cycles (every fifth pod with a published port), part of
// them in a child process killed with SIGKILL at an arbitrary point; after
// the restart's sweep nothing is left: no namespace, mount, veth, lease,
// cached result or port-mapping rule.
TEST_F(NetworkRootTest, AThousandCyclesAndAKillInTheMiddleLeaveNothingBehind) {
  constexpr int kCycles = 1000;
  auto cycle = [](NetworkManager& m, int i) {
    std::vector<PortMapping> ports;
    if (i % 5 == 0) ports.push_back({20000 + i % 1000, 80, "tcp", "127.0.0.1"});
    const std::string pod = "sbx-cyc-" + std::to_string(i);
    auto a = m.Attach(pod, ports);
    if (!a.ok()) return a.status();
    return m.Detach(pod);
  };
  // Two pods at a time (one per thread, as two sandbox workers would). The
  // child counts its finished cycles in a shared file.
  const std::string progress = dir_.Sub("progress");
  ASSERT_TRUE(WriteFileAtomic(progress, "0").ok());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    oci::SimpleCommandRunner runner;
    auto m = NetworkManager::Create(options_, runner);
    if (!m.ok()) ::_exit(2);
    std::atomic<int> finished{0};
    auto worker = [&](int first) {
      for (int i = first;; i += 2) {
        if (!cycle(**m, i).ok()) ::_exit(3);
        (void)WriteFileAtomic(progress, std::to_string(++finished));
      }
    };
    std::thread(worker, 1).detach();
    worker(0);
  }
  int done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (done < kCycles / 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int status;
    ASSERT_EQ(::waitpid(child, &status, WNOHANG), 0) << "the cycling child exited early";
    auto text = ReadFile(progress);
    if (text.ok() && !text->empty()) done = std::stoi(*text);
  }
  // Mid-cycle: somewhere in a plugin run, a namespace creation or a write.
  std::this_thread::sleep_for(std::chrono::milliseconds(37));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  done = std::stoi(*ReadFile(progress));
  ASSERT_GE(done, kCycles / 3);

  auto m = Manager();
  ASSERT_TRUE(m);
  auto swept = m->Sweep({});
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  // The rest, under ids the child never used.
  std::vector<Status> failed(2, Status::Ok());
  auto worker = [&](int w) {
    for (int i = done + w; i < kCycles && failed[w].ok(); i += 2) failed[w] = cycle(*m, 100000 + i);
  };
  std::thread other(worker, 1);
  worker(0);
  other.join();
  ASSERT_TRUE(failed[0].ok()) << failed[0].ToString();
  ASSERT_TRUE(failed[1].ok()) << failed[1].ToString();

  EXPECT_EQ(Sh("ls -A " + options_.netns_dir + " | wc -l"), "0\n");
  EXPECT_EQ(Sh("grep -c " + options_.netns_dir + " /proc/self/mountinfo"), "0\n");
  EXPECT_EQ(Sh("ls -A " + options_.state_dir + "/results | wc -l"), "0\n");
  EXPECT_EQ(Sh("ls " + options_.state_dir + "/ipam/sbx | grep -c '^10\\.'"), "0\n");
  EXPECT_EQ(HostVeths(), veths_before_);
  EXPECT_EQ(Sh("iptables -t nat -S | grep -c sbx-cyc-"), "0\n");
}

// A plugin after portmap fails: the undo's DEL must be given the port
// mappings, or portmap skips its DEL and the DNAT rules stay.
TEST_F(NetworkRootTest, AnAttachFailingAfterPortmapRemovesItsPortMappings) {
  ASSERT_TRUE(MakeDirs(dir_.Sub("plugins"), 0755).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.Sub("plugins/failer"),
                              "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
                              "echo '{\"code\":100,\"msg\":\"refused\"}'\nexit 1\n",
                              0755)
                  .ok());
  cni::Json list = cni::Json::parse(BuiltinConflist(options_));
  list["plugins"].push_back({{"type", "failer"}});
  ASSERT_TRUE(WriteFileAtomic(dir_.Sub("failing.conflist"), list.dump()).ok());
  options_.conflist_path = dir_.Sub("failing.conflist");
  options_.plugin_dirs = {dir_.Sub("plugins"), "/usr/lib/cni"};
  auto m = Manager();
  ASSERT_TRUE(m);
  auto a = m->Attach("sbx-net-ports", {{18082, 80, "tcp", "127.0.0.1"}});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("CNI plugin failer ADD: refused"), std::string::npos)
      << a.status().ToString();
  EXPECT_EQ(Sh("iptables -t nat -S | grep -c sbx-net-ports"), "0\n");
  EXPECT_EQ(Sh("iptables -t nat -S | grep -c -- '--dport 18082'"), "0\n");
  EXPECT_EQ(HostVeths(), veths_before_);
  EXPECT_FALSE(PathExists(options_.netns_dir + "/sbx-net-ports"));
}

TEST_F(NetworkRootTest, BadConfigurationNamesTheFileAndChangesNothing) {
  std::string path = dir_.Sub("bad.conflist");
  ASSERT_TRUE(WriteFileAtomic(path, R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"nosuch"}]})").ok());
  options_.conflist_path = path;
  auto m = NetworkManager::Create(options_, runner_);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(path), std::string::npos) << m.status().ToString();
  EXPECT_NE(m.status().message().find("\"nosuch\" not found"), std::string::npos)
      << m.status().ToString();
  EXPECT_FALSE(PathExists(options_.netns_dir));

  options_.conflist_path = dir_.Sub("missing.conflist");
  m = NetworkManager::Create(options_, runner_);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("missing.conflist"), std::string::npos)
      << m.status().ToString();
}

TEST_F(NetworkRootTest, AFailedAttachLeavesNothing) {
  // A subnet with no free address after the gateway: host-local fails.
  options_.subnet = "10.254.79.0/30";
  auto m = Manager();
  ASSERT_TRUE(m);
  auto first = m->Attach("sbx-net-1", {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = m->Attach("sbx-net-2", {});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("CNI plugin ptp ADD"), std::string::npos)
      << second.status().ToString();
  EXPECT_FALSE(PathExists(options_.netns_dir + "/sbx-net-2"));
  EXPECT_EQ(HostVeths(), veths_before_ + 1);
  ASSERT_TRUE(m->Detach("sbx-net-1").ok());
  EXPECT_EQ(HostVeths(), veths_before_);
}

}  // namespace
}  // namespace sbx::daemon
