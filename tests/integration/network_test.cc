// Sandbox networking end to end: a sandbox whose template asks for
// `sbx.dev/network: sandbox` gets its own namespace from the real CNI
// plugins, an address in status.podIPs, and reaches a server on the host
// through gVisor's network stack; deleting it (also after a kill -9 of
// sbxd) leaves no namespace, veth or lease. Real sbxd, sbx, runsc, CNI.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <string>

#include "common/fs.h"
#include "tests/integration/suite.h"

extern char** environ;

namespace sbx::testing {
namespace {

using nlohmann::json;

constexpr char kBridge[] = "sbxit0";
constexpr char kGateway[] = "10.254.81.1";
constexpr int kHostPort = 18099;

std::string NetSandbox(const std::string& name, const std::string& mode) {
  std::string annotations =
      mode.empty() ? "" : "      annotations:\n        sbx.dev/network: " + mode + "\n";
  return "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: " + name +
         "\nspec:\n  podTemplate:\n    metadata:\n" + annotations +
         "      labels:\n        app: " + name +
         "\n    spec:\n      containers:\n      - name: main\n        image: test/busybox:1\n"
         "        command: [\"sleep\", \"3600\"]\n";
}

int Count(const std::string& cmd) { return std::atoi(Sh(cmd).out.c_str()); }

class Network : public DaemonSuite {
 protected:
  static void SetUpTestSuite() {
    if (!MissingRootOrRunsc().empty()) return;
    dir_ = Sh("mktemp -d /tmp/sbx-net-XXXXXX").out;
    while (!dir_.empty() && dir_.back() == '\n') dir_.pop_back();
    (void)MakeDirs(dir_ + "/www", 0755);
    (void)WriteFileAtomic(dir_ + "/www/index.html", "hello from the host\n", 0644);
    const std::string conflist = dir_ + "/net.conflist";
    (void)WriteFileAtomic(conflist, std::string(R"({"cniVersion":"1.0.0","name":"sbxit","plugins":[
      {"type":"bridge","bridge":")") + kBridge + R"(","isGateway":true,"ipMasq":false,
       "ipam":{"type":"host-local","ranges":[[{"subnet":"10.254.81.0/24"}]],
               "routes":[{"dst":"0.0.0.0/0"}],"dataDir":")" + dir_ + R"(/ipam"}},
      {"type":"portmap","capabilities":{"portMappings":true}}]})",
                          0644);
    // A web server on the host, on every address (the bridge appears with
    // the first sandbox).
    const std::string www = dir_ + "/www";
    const char* argv[] = {"busybox", "httpd", "-f", "-p", "18099", "-h", www.c_str(), nullptr};
    if (posix_spawnp(&httpd_, "busybox", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
      httpd_ = -1;
    }
    StartDaemon("--cni-conflist=" + conflist);
  }
  static void TearDownTestSuite() {
    DaemonSuite::TearDownTestSuite();
    if (httpd_ > 0) {
      ::kill(httpd_, SIGKILL);
      ::waitpid(httpd_, nullptr, 0);
    }
    Sh(std::string("ip link del ") + kBridge + " 2>/dev/null");
    if (!dir_.empty()) (void)RemoveAll(dir_);
  }

  std::string FetchFromSandbox(const std::string& name) {
    CmdResult r = d().Sbx("exec " + name + " -- sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 " +
                          kGateway + " " + std::to_string(kHostPort) + "\"");
    return r.out + r.err;
  }
  int Netns() { return Count("ls " + d().dir() + "/run/netns 2>/dev/null | wc -l"); }
  int Leases() { return Count("ls " + dir_ + "/ipam/sbxit 2>/dev/null | grep -c '^10\\.'"); }
  int Veths() { return Count(std::string("ip -o link show master ") + kBridge + " 2>/dev/null | wc -l"); }

  static inline std::string dir_;
  static inline pid_t httpd_ = -1;
};

TEST_F(Network, ASandboxWithItsOwnNetworkReachesTheHostAndLeavesNothingWhenDeleted) {
  ApplyReady("net", NetSandbox("net", "sandbox"));
  json sb = d().GetJson("sandbox net");
  json ips = sb["status"].value("podIPs", json::array());
  ASSERT_EQ(ips.size(), 1u) << sb.dump();
  const std::string ip = ips[0];
  EXPECT_EQ(ip.rfind("10.254.81.", 0), 0u) << ip;
  // gVisor's stack has the address; the host's web server answers.
  EXPECT_NE(d().Sbx("exec net -- busybox ip -o -4 addr show eth0").out.find(ip + "/24"),
            std::string::npos);
  std::string page = FetchFromSandbox("net");
  EXPECT_NE(page.find("hello from the host"), std::string::npos)
      << page << d().Sbx("exec net -- busybox ip route").out;
  EXPECT_EQ(Netns(), 1);
  EXPECT_EQ(Veths(), 1);
  EXPECT_EQ(Leases(), 1);

  DeleteAndWait("net");
  EXPECT_EQ(Netns(), 0);
  EXPECT_EQ(Veths(), 0);
  EXPECT_EQ(Leases(), 0);
}

TEST_F(Network, WithoutTheAnnotationASandboxHasNoNetwork) {
  ApplyReady("offline", NetSandbox("offline", ""));
  json sb = d().GetJson("sandbox offline");
  EXPECT_TRUE(sb["status"].value("podIPs", json::array()).empty()) << sb.dump();
  CmdResult links = d().Sbx("exec offline -- busybox ip -o link");
  EXPECT_NE(links.out.find("lo"), std::string::npos) << links.out << links.err;
  EXPECT_EQ(links.out.find("eth0"), std::string::npos) << links.out;
  EXPECT_EQ(Netns(), 0);
  DeleteAndWait("offline");
}

TEST_F(Network, ABadNetworkModeIsReportedNamingTheAnnotation) {
  CmdResult r = d().Sbx("apply -f -", NetSandbox("badnet", "bridge"));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_TRUE(d().WaitFor("sandbox badnet", 20000, [](const json& j) {
    for (const auto& c : j.value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == "Ready" &&
          c.value("message", "").find("annotations[sbx.dev/network]") != std::string::npos) {
        return true;
      }
    }
    return false;
  })) << d().Sbx("describe sandbox badnet").out;
  EXPECT_EQ(Netns(), 0);
  DeleteAndWait("badnet");
}

TEST_F(Network, AKilledDaemonKeepsTheNetworkOfARunningSandboxAndReleasesItOnDelete) {
  ApplyReady("survivor", NetSandbox("survivor", "sandbox"));
  const std::string ip = d().GetJson("sandbox survivor")["status"]["podIPs"][0];
  d().Stop(/*kill9=*/true);
  ASSERT_TRUE(d().Start("--cni-conflist=" + dir_ + "/net.conflist")) << d().log();
  ASSERT_EQ(d().Sbx("wait sandbox/survivor --for=condition=Ready --timeout=30s").code, 0);
  EXPECT_EQ(d().GetJson("sandbox survivor")["status"]["podIPs"][0], ip);
  std::string page = FetchFromSandbox("survivor");
  EXPECT_NE(page.find("hello from the host"), std::string::npos) << page;
  EXPECT_EQ(Netns(), 1);
  DeleteAndWait("survivor");
  EXPECT_EQ(Netns(), 0);
  EXPECT_EQ(Veths(), 0);
  EXPECT_EQ(Leases(), 0) << Sh("ls -l " + dir_ + "/ipam/sbxit").out << d().log();
}

}  // namespace
}  // namespace sbx::testing
