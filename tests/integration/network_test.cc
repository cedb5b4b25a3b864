// Sandbox networking end to end, with sbxd in a network namespace of its own
// whose world is made of test hosts (test_hosts.h): a sandbox whose template
// asks for `sbx.dev/network: sandbox` gets its own namespace from the real
// CNI plugins and an address in status.podIPs; it reaches "the internet"
// through NAT and resolves names through the configured resolver, but not
// the metadata service, a private host or the host itself; deleting it (also
// after a kill -9 of sbxd) leaves no namespace, veth, lease or firewall
// table. Real sbxd, sbx, runsc, CNI plugins, nftables, dnsmasq.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <vector>
#include <cstdlib>
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "common/fs.h"
#include "tests/integration/suite.h"
#include "tests/integration/test_hosts.h"

namespace sbx::testing {
namespace {

using nlohmann::json;

std::string NetSandbox(const std::string& name, const std::string& mode) {
  std::string annotations =
      mode.empty() ? "" : "      annotations:\n        sbx.dev/network: " + mode + "\n";
  return "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: " + name +
         "\nspec:\n  podTemplate:\n    metadata:\n" + annotations +
         "      labels:\n        app: " + name +
         "\n    spec:\n      containers:\n      - name: main\n        image: test/busybox:1\n"
         "        command: [\"sleep\", \"3600\"]\n";
}

int Count(const CmdResult& r) { return std::atoi(r.out.c_str()); }

std::string Text(const std::string& path) {
  auto t = ReadFile(path);
  return t.ok() ? *t : "";
}

class Network : public DaemonSuite {
 protected:
  static std::string Flags(const std::string& extra = "") {
    return std::string("--dns ") + TestHosts::kDns + " " + extra;
  }
  static void SetUpTestSuite() {
    if (!MissingRootOrRunsc().empty()) return;
    dir_ = Sh("mktemp -d /tmp/sbx-net-XXXXXX").out;
    while (!dir_.empty() && dir_.back() == '\n') dir_.pop_back();
    hosts_ = new TestHosts(dir_);
    if (std::string e = hosts_->SetUp(); !e.empty()) {
      setup_error_ = "test hosts: " + e;
      return;
    }
    StartDaemon(Flags(), hosts_->NsPath("host"));
  }
  static void TearDownTestSuite() {
    DaemonSuite::TearDownTestSuite();
    delete hosts_;
    hosts_ = nullptr;
    if (!dir_.empty()) (void)RemoveAll(dir_);
  }

  // The page at `url` as the sandbox's wget gets it, with its errors.
  std::string Fetch(const std::string& name, const std::string& url) {
    // (busybox wget's own -T crashes this busybox build.)
    CmdResult r = d().Sbx("exec " + name + " -- timeout 5 wget -q -O - " + url);
    return r.out + r.err;
  }
  CmdResult InHost(const std::string& cmd) { return hosts_->In("host", cmd); }
  int Netns() { return Count(Sh("ls " + d().dir() + "/run/netns 2>/dev/null | wc -l")); }
  int Leases() {
    return Count(Sh("ls " + d().state_dir() + "/network/ipam/sbx 2>/dev/null | grep -c '^10\\.'"));
  }
  // Sandbox veths on the host (its uplink up0 is not one).
  int Veths() { return Count(InHost("ip -o link show type veth | grep -vc ' up0@'")); }
  bool FirewallTable() { return InHost("nft list table inet sbx").code == 0; }
  // Applies `yaml` and waits until a condition of sandbox `name` says `text`.
  bool ApplyAndWaitForMessage(const std::string& name, const std::string& yaml, const std::string& text) {
    CmdResult r = d().Sbx("apply -f -", yaml);
    if (r.code != 0) return false;
    return d().WaitFor("sandbox " + name, 20000, [&](json& j) {
      for (const auto& c : j.value("status", json::object()).value("conditions", json::array())) {
        if (c.value("message", "").find(text) != std::string::npos) return true;
      }
      return false;
    });
  }

  static inline std::string dir_;
  static inline TestHosts* hosts_ = nullptr;
};

TEST_F(Network, ASandboxReachesTheInternetByNameAndLeavesNothingWhenDeleted) {
  ApplyReady("net", NetSandbox("net", "sandbox"));
  json sb = d().GetJson("sandbox net");
  json ips = sb["status"].value("podIPs", json::array());
  ASSERT_EQ(ips.size(), 1u) << sb.dump();
  const std::string ip = ips[0];
  EXPECT_EQ(ip.rfind("10.213.", 0), 0u) << ip;
  // gVisor's stack has the address.
  EXPECT_NE(d().Sbx("exec net -- busybox ip -o -4 addr show eth0").out.find(ip + "/"), std::string::npos);
  // The internet answers, by address (through NAT: it has no route back
  // to the sandboxes) and by name (the configured resolver).
  EXPECT_NE(Fetch("net", std::string("http://") + TestHosts::kInternet + "/").find("hello from the internet"),
            std::string::npos)
      << d().Sbx("exec net -- busybox ip route").out;
  // The sandboxes' resolver is sbxd on their gateway, relaying to --dns.
  EXPECT_NE(d().Sbx("exec net -- cat /etc/resolv.conf").out.find("nameserver 10.213.0.1\n"), std::string::npos);
  EXPECT_NE(Fetch("net", std::string("http://") + TestHosts::kName + "/").find("hello from the internet"),
            std::string::npos);
  EXPECT_EQ(Netns(), 1);
  EXPECT_EQ(Veths(), 1);
  EXPECT_EQ(Leases(), 1);
  EXPECT_TRUE(FirewallTable());

  DeleteAndWait("net");
  EXPECT_EQ(Netns(), 0);
  EXPECT_EQ(Veths(), 0);
  EXPECT_EQ(Leases(), 0);
  EXPECT_FALSE(FirewallTable()) << InHost("nft list ruleset").out;
}

TEST_F(Network, TheMetadataServiceAPrivateHostAndTheHostItselfAreOutOfReach) {
  ApplyReady("fenced", NetSandbox("fenced", "sandbox"));
  // Each is reachable from the host's namespace: the sandbox is what is
  // refused.
  EXPECT_NE(InHost(std::string("curl -s -m 3 http://") + TestHosts::kMetadata + "/").out.find(
                "secret credentials"),
            std::string::npos);
  EXPECT_NE(InHost(std::string("curl -s -m 3 http://") + TestHosts::kPrivate + "/").out.find(
                "private host"),
            std::string::npos);
  const std::string gateway = "10.213.0.1";
  for (const std::string& url :
       {std::string("http://") + TestHosts::kMetadata + "/", std::string("http://") + TestHosts::kPrivate + "/",
        std::string("http://") + TestHosts::kHostUplink + ":8080/", "http://" + gateway + ":8080/"}) {
    auto t0 = std::chrono::steady_clock::now();
    std::string page = Fetch("fenced", url);
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(page.find("secret"), std::string::npos) << url << ": " << page;
    EXPECT_EQ(page.find("hello"), std::string::npos) << url << ": " << page;
    EXPECT_EQ(page.find("host itself"), std::string::npos) << url << ": " << page;
    // Refused at once, not left to time out.
    EXPECT_LT(took, std::chrono::milliseconds(2500)) << url << ": " << page;
  }
  // The resolver sits in a private range and still answers.
  CmdResult ns = d().Sbx(std::string("exec fenced -- busybox nslookup ") + TestHosts::kName);
  EXPECT_NE(ns.out.find(TestHosts::kInternet), std::string::npos) << ns.out << ns.err;
  DeleteAndWait("fenced");
}

// A web server in a networked sandbox, with probes and a published port.
std::string WebSandbox(const std::string& name, const std::string& probes, const std::string& ports) {
  return "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: " + name +
         "\nspec:\n  podTemplate:\n    metadata:\n      annotations:\n        sbx.dev/network: sandbox\n"
         "    spec:\n      containers:\n      - name: web\n        image: test/busybox:1\n"
         "        command: [\"sh\", \"-c\", \"mkdir -p /www && echo hello from the sandbox > "
         "/www/index.html && exec httpd -f -p 8080 -h /www\"]\n" +
         ports + probes;
}

TEST_F(Network, HttpProbesGateReadinessAndAHostPortPublishesOnLoopbackOnly) {
  ApplyReady("web", WebSandbox("web",
                               "        readinessProbe:\n          httpGet: {path: /index.html, port: http}\n"
                               "          periodSeconds: 1\n",
                               "        ports:\n        - {name: http, containerPort: 8080, hostPort: 18080}\n"));
  json sb = d().GetJson("sandbox web");
  EXPECT_EQ(d().Sbx("describe sandbox web").out.find("ProbeInactive"), std::string::npos);
  // Published on the host's loopback (the default bind address) only.
  CmdResult local = InHost("curl -s -m 5 http://127.0.0.1:18080/");
  EXPECT_NE(local.out.find("hello from the sandbox"), std::string::npos) << local.out << local.err;
  CmdResult outside = hosts_->In("router", std::string("curl -s -m 3 http://") + TestHosts::kHostUplink + ":18080/");
  EXPECT_EQ(outside.out.find("hello from the sandbox"), std::string::npos) << outside.out;
  DeleteAndWait("web");
  EXPECT_NE(InHost("curl -s -m 3 http://127.0.0.1:18080/").code, 0);
  EXPECT_EQ(InHost("iptables-save -t nat | grep -c 18080").out, "0\n");
}

TEST_F(Network, AFailingReadinessProbeKeepsASandboxUnreadyAndALivenessProbeRestarts) {
  CmdResult r = d().Sbx("apply -f -", WebSandbox("unready",
                                                 "        readinessProbe:\n          httpGet: {path: /missing, port: 8080}\n"
                                                 "          periodSeconds: 1\n",
                                                 ""));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  r = d().Sbx("apply -f -", WebSandbox("sick",
                                       "        livenessProbe:\n          tcpSocket: {port: 9999}\n"
                                       "          periodSeconds: 1\n          failureThreshold: 2\n",
                                       ""));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_TRUE(d().WaitFor("sandbox sick", 60000, [](json& j) {
    for (const auto& cs : j.value("status", json::object()).value("containerStatuses", json::array())) {
      if (cs.value("restartCount", 0) >= 1) return true;
    }
    return false;
  })) << d().Sbx("describe sandbox sick").out;
  std::string events = d().Sbx("describe sandbox sick").out;
  EXPECT_NE(events.find("Liveness probe failed: dial tcp"), std::string::npos) << events;
  EXPECT_NE(events.find(":9999: connect: connection refused"), std::string::npos) << events;

  ASSERT_TRUE(d().WaitFor("sandbox unready", 20000, [](json& j) {
    return j.value("status", json::object()).contains("containerStatuses");
  }));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  json sb = d().GetJson("sandbox unready");
  EXPECT_EQ(ConditionStatus(sb, "Ready"), "False") << sb.dump();
  events = d().Sbx("describe sandbox unready").out;
  EXPECT_NE(events.find("Readiness probe failed: HTTP probe failed with statuscode: 404"), std::string::npos)
      << events;
  DeleteAndWait("sick");
  DeleteAndWait("unready");
}

TEST_F(Network, AHostPortWithoutTheSandboxNetworkIsRefusedNamingTheField) {
  std::string yaml = NetSandbox("noport", "none");
  yaml += "        ports:\n        - {containerPort: 8080, hostPort: 18081}\n";
  ASSERT_TRUE(ApplyAndWaitForMessage("noport", yaml, "ports[0].hostPort")) << d().Sbx("describe sandbox noport").out;
  DeleteAndWait("noport");
}

// `sbx port-forward NAME SPEC` in the background; returns its pid and the
// local port it printed (0 if none within 10 s).
std::pair<int, int> StartPortForward(Daemon& d, const std::string& name, const std::string& spec,
                                     const std::string& out) {
  CmdResult r = Sh("SBX_SOCKET=" + d.socket() + " " + Daemon::BuildDir() + "/cli/sbx port-forward " + name + " " +
                   spec + " >" + out + " 2>" + out + ".err </dev/null & echo $!");
  int pid = std::atoi(r.out.c_str());
  for (int i = 0; i < 200; ++i) {
    auto text = ReadFile(out);
    if (text.ok()) {
      auto at = text->find("Forwarding from 127.0.0.1:");
      if (at != std::string::npos) return {pid, std::atoi(text->c_str() + at + 26)};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {pid, 0};
}

TEST_F(Network, PortForwardCarriesManyConnectionsAndLargeResponsesUntilInterrupted) {
  ApplyReady("pf", WebSandbox("pf", "", ""));
  // A 5 MB file of random bytes, to check every byte arrives.
  ASSERT_EQ(d().Sbx("exec pf -- busybox dd if=/dev/urandom of=/www/big bs=1M count=5").code, 0);
  std::string want = d().Sbx("exec pf -- busybox sha256sum /www/big").out.substr(0, 64);
  auto [pid, port] = StartPortForward(d(), "pf", ":8080", dir_ + "/pf.out");
  ASSERT_GT(port, 0) << Text(dir_ + "/pf.out.err");
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_NE(Sh("curl -s -m 10 " + url + "/").out.find("hello from the sandbox"), std::string::npos);
  CmdResult big = Sh("curl -s -m 30 " + url + "/big | sha256sum");
  EXPECT_EQ(big.out.substr(0, 64), want);
  // Upload: the client's end of input reaches the sandbox as a half-close
  // (sha256sum there reads to EOF, then answers on the same connection).
  ASSERT_EQ(d().Sbx("exec pf -- sh -c \"busybox nc -l -p 7000 -e busybox sha256sum </dev/null >/dev/null 2>&1 &\"")
                .code,
            0);
  auto [upid, uport] = StartPortForward(d(), "pf", ":7000", dir_ + "/up.out");
  ASSERT_GT(uport, 0);
  Sh("head -c 3000000 /dev/urandom > " + dir_ + "/upload");
  std::string sent = Sh("sha256sum " + dir_ + "/upload").out.substr(0, 64);
  CmdResult echoed = Sh("python3 -c \"import socket,sys; s=socket.create_connection(('127.0.0.1'," +
                        std::to_string(uport) + ")); s.sendall(open('" + dir_ +
                        "/upload','rb').read()); s.shutdown(socket.SHUT_WR); d=b''\n"
                        "while True:\n  c=s.recv(65536)\n  if not c: break\n  d+=c\nprint(d.decode())\"");
  EXPECT_EQ(echoed.out.substr(0, 64), sent) << echoed.err << Text(dir_ + "/up.out.err");
  ::kill(upid, SIGTERM);
  // 32 connections at once.
  CmdResult many = Sh("seq 32 | xargs -P 32 -I{} curl -s -m 20 -o /dev/null -w '%{http_code}\\n' " + url +
                      "/index.html | grep -c '^200$'");
  EXPECT_EQ(many.out, "32\n") << many.err << Text(dir_ + "/pf.out.err");
  // Interrupted, it stops listening and exits cleanly.
  ::kill(pid, SIGINT);
  int status = 0;
  for (int i = 0; i < 100 && Sh("kill -0 " + std::to_string(pid)).code == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_NE(Sh("kill -0 " + std::to_string(pid)).code, 0);
  (void)status;
  EXPECT_NE(Sh("curl -s -m 3 " + url + "/").code, 0);
  DeleteAndWait("pf");
}

TEST_F(Network, PortForwardReportsAClosedPortAndASandboxWithoutNetwork) {
  ApplyReady("pfclosed", WebSandbox("pfclosed", "", ""));
  auto [pid, port] = StartPortForward(d(), "pfclosed", ":9999", dir_ + "/pfc.out");
  ASSERT_GT(port, 0);
  EXPECT_NE(Sh("curl -s -m 5 http://127.0.0.1:" + std::to_string(port) + "/").code, 0);
  ::kill(pid, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string err = Text(dir_ + "/pfc.out.err");
  EXPECT_NE(err.find(":9999: connect: connection refused"), std::string::npos) << err;
  DeleteAndWait("pfclosed");

  ApplyReady("pfnone", NetSandbox("pfnone", "none"));
  auto [pid2, port2] = StartPortForward(d(), "pfnone", ":80", dir_ + "/pfn.out");
  ASSERT_GT(port2, 0);
  EXPECT_NE(Sh("curl -s -m 5 http://127.0.0.1:" + std::to_string(port2) + "/").code, 0);
  ::kill(pid2, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  err = Text(dir_ + "/pfn.out.err");
  EXPECT_NE(err.find("sbx.dev/network: sandbox"), std::string::npos) << err;
  DeleteAndWait("pfnone");
  // Bad specs are refused before anything listens.
  CmdResult bad = d().Sbx("port-forward pfnone 70000");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("70000"), std::string::npos) << bad.err;
}

std::string AgentTemplate(const std::string& policy_yaml) {
  return "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxTemplate\nmetadata:\n  name: agents\n"
         "spec:\n" +
         policy_yaml +
         "  podTemplate:\n    metadata:\n      labels: {role: agent}\n"
         "      annotations:\n        sbx.dev/network: sandbox\n"
         "    spec:\n      containers:\n      - name: web\n        image: test/busybox:1\n"
         "        command: [\"sh\", \"-c\", \"mkdir -p /www && echo hello from an agent > "
         "/www/index.html && exec httpd -f -p 8080 -h /www\"]\n"
         "        ports: [{name: http, containerPort: 8080}]\n";
}

constexpr char kAgentPolicy[] = R"(  networkPolicy:
    egress:
    - to: [{ipBlock: {cidr: 10.99.0.5/32}}]
      ports: [{port: 80}]
    - to: [{podSelector: {matchLabels: {role: agent}}}]
      ports: [{port: http}]
    ingress:
    - from: [{podSelector: {matchLabels: {role: agent}}}]
      ports: [{port: 8080}]
)";

TEST_F(Network, ATemplatesNetworkPolicyFencesItsSandboxesAndAnEditAppliesAtOnce) {
  ASSERT_EQ(d().Sbx("apply -f -", AgentTemplate(kAgentPolicy)).code, 0);
  CmdResult pool = d().Sbx("apply -f -",
                           "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxWarmPool\nmetadata:\n"
                           "  name: agents\nspec:\n  replicas: 2\n  sandboxTemplateRef: {name: agents}\n");
  ASSERT_EQ(pool.code, 0) << pool.err;
  ASSERT_TRUE(d().WaitFor("swp agents", 90000, [](json& j) {
    return j.value("status", json::object()).value("readyReplicas", 0) == 2;
  })) << d().Sbx("describe swp agents").out;
  std::vector<std::string> names, ips;
  CmdResult listed = d().Sbx("get sandboxes -o json");
  json all = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(all.is_object()) << listed.out << listed.err;
  for (const auto& item : all.value("items", json::array())) {
    names.push_back(item["metadata"]["name"]);
    ips.push_back(item["status"].value("podIPs", json::array({""}))[0]);
  }
  ASSERT_EQ(names.size(), 2u) << listed.out << d().Sbx("describe swp agents").out;
  const std::string a = names[0], b_ip = ips[1];
  auto fetch = [&](const std::string& url) { return Fetch(a, url); };
  const std::string priv = std::string("http://") + TestHosts::kPrivate + "/";
  const std::string inet = std::string("http://") + TestHosts::kInternet + "/";
  const std::string peer = "http://" + b_ip + ":8080/";
  // The policy allows the private host and the other agent (which allows
  // it in), and nothing else: not the internet, not the metadata service.
  EXPECT_NE(fetch(priv).find("private host"), std::string::npos);
  EXPECT_NE(fetch(peer).find("hello from an agent"), std::string::npos);
  EXPECT_EQ(fetch(inet).find("hello"), std::string::npos);
  EXPECT_EQ(fetch(std::string("http://") + TestHosts::kMetadata + "/").find("secret"), std::string::npos);

  // An edit without the private host applies to the running sandboxes.
  std::string edited = kAgentPolicy;
  edited.replace(edited.find("    - to: [{ipBlock"), edited.find("    - to: [{podSelector") - edited.find("    - to: [{ipBlock"),
                 "");
  ASSERT_EQ(d().Sbx("apply -f -", AgentTemplate(edited)).code, 0);
  bool closed = false;
  for (int i = 0; i < 50 && !closed; ++i) {
    closed = fetch(priv).find("private host") == std::string::npos;
    if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(closed);
  EXPECT_NE(fetch(peer).find("hello from an agent"), std::string::npos);

  // Managed without a policy: upstream's secure default. The internet is
  // open, private ranges and other sandboxes are not.
  ASSERT_EQ(d().Sbx("apply -f -", AgentTemplate("")).code, 0);
  bool open = false;
  for (int i = 0; i < 50 && !open; ++i) {
    open = fetch(inet).find("hello from the internet") != std::string::npos;
    if (!open) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(open);
  EXPECT_EQ(fetch(priv).find("private host"), std::string::npos);
  EXPECT_EQ(fetch(peer).find("hello from an agent"), std::string::npos);

  // A bad policy is refused naming the field, and changes nothing.
  CmdResult bad = d().Sbx("apply -f -", AgentTemplate("  networkPolicy:\n    egress:\n    - to: [{ipBlock: {cidr: "
                                                      "10.0.0.0/33}}]\n"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE((bad.out + bad.err).find("spec.networkPolicy.egress[0].to[0].ipBlock.cidr"), std::string::npos)
      << bad.out << bad.err;
  EXPECT_NE(fetch(inet).find("hello from the internet"), std::string::npos);

  ASSERT_EQ(d().Sbx("delete swp agents").code, 0);
  ASSERT_EQ(d().Sbx("delete sandboxtemplate agents").code, 0);
  ASSERT_TRUE(d().WaitFor("sandboxes", 60000, [](json& j) { return j["items"].empty(); }));
}

// The seed's MCP example: an MCP server over streamable HTTP on port 3001,
// its tools listed by an MCP client (the official SDK) on the host through
// `sbx port-forward`. The seed runs `npx -y` inside the sandbox, which
// fetches the package at start; the test sandboxes reach no registry, so
// the image carries the package, installed from the npm registry at build.
TEST_F(Network, TheSeedsMcpServerIsReadyAndListsItsToolsThroughPortForward) {
  const std::string w = dir_ + "/mcp";
  CmdResult built = Sh(Daemon::SourceDir() + "/tests/integration/mcp/build-image.sh " + w + " test/mcp:1");
  ASSERT_EQ(built.code, 0) << built.out << built.err;
  CmdResult imported = d().Sbx("image import " + w + "/image.tar");
  ASSERT_EQ(imported.code, 0) << imported.out << imported.err;
  ApplyReady("my-mcp",
             "apiVersion: agents.x-k8s.io/v1alpha1\nkind: Sandbox\nmetadata:\n  name: my-mcp\nspec:\n"
             "  podTemplate:\n    spec:\n      runtimeClassName: gvisor\n      containers:\n      - name: my-mcp\n"
             "        image: test/mcp:1\n        command: [\"node\"]\n"
             "        args: [\"/app/node_modules/@modelcontextprotocol/server-everything/dist/index.js\", "
             "\"streamableHttp\"]\n"
             "        ports:\n        - containerPort: 3001\n"
             "        readinessProbe:\n          tcpSocket: {port: 3001}\n          periodSeconds: 1\n",
             180);
  auto [pid, port] = StartPortForward(d(), "my-mcp", ":3001", dir_ + "/mcp-pf.out");
  ASSERT_GT(port, 0) << Text(dir_ + "/mcp-pf.out.err");
  Sh("cp " + Daemon::SourceDir() + "/tests/integration/mcp/list-tools.mjs " + w + "/app/");
  CmdResult tools = Sh("timeout 60 node " + w + "/app/list-tools.mjs http://127.0.0.1:" + std::to_string(port) +
                       "/mcp");
  ::kill(pid, SIGTERM);
  EXPECT_EQ(tools.code, 0) << tools.err << Text(dir_ + "/mcp-pf.out.err") << d().Sbx("logs my-mcp").out;
  EXPECT_NE(tools.out.find("echo\n"), std::string::npos) << tools.out;
  EXPECT_NE(tools.out.find("get-sum"), std::string::npos) << tools.out;
  DeleteAndWait("my-mcp");
}

TEST_F(Network, ASandboxWithServiceTrueHasAStableNameOtherSandboxesResolve) {
  std::string yaml = NetSandbox("named", "");
  yaml.replace(yaml.find("spec:\n  podTemplate:"), 6, "spec:\n  service: true\n");
  ApplyReady("named", yaml);
  ApplyReady("asker", NetSandbox("asker", ""));
  json sb = d().GetJson("sandbox named");
  EXPECT_EQ(sb["status"].value("service", ""), "named") << sb.dump();
  EXPECT_EQ(sb["status"].value("serviceFQDN", ""), "named.default.svc.cluster.local") << sb.dump();
  const std::string ip = sb["status"]["podIPs"][0];
  CmdResult r = d().Sbx("exec asker -- busybox nslookup named.default.svc.cluster.local");
  EXPECT_NE(r.out.find("Address: " + ip), std::string::npos) << r.out << r.err;
  // resolv.conf searches the cluster domain for short names.
  EXPECT_NE(d().Sbx("exec asker -- cat /etc/resolv.conf").out.find("search svc.cluster.local cluster.local"),
            std::string::npos);
  // A sandbox without service: true has no name.
  CmdResult none = d().Sbx("exec named -- busybox nslookup asker.default.svc.cluster.local");
  EXPECT_EQ(none.out.find("Address: 10.213."), std::string::npos) << none.out;
  EXPECT_TRUE(d().GetJson("sandbox asker")["status"].value("serviceFQDN", "").empty());
  DeleteAndWait("asker");
  DeleteAndWait("named");
}

// Create/delete cycles of real networked sandboxes, four at a time, with
// sbxd killed (-9) halfway and restarted: afterwards no namespace, veth,
// lease, firewall table, runsc container or sandbox process is left.
// SBX_NET_CYCLES sets the number (default 200; 1000 for the full run).
TEST_F(Network, CreateDeleteCyclesWithAKilledDaemonLeaveNothingBehind) {
  int cycles = 200;
  if (const char* env = std::getenv("SBX_NET_CYCLES")) cycles = std::max(4, std::atoi(env));
  constexpr int kWorkers = 4;
  std::atomic<int> next{0}, done{0};
  std::atomic<bool> restarting{false};
  std::mutex mu;
  std::string first_error;
  auto ok_or_retry = [&](const std::string& args, const std::string& in = "") {
    for (int attempt = 0; attempt < 200; ++attempt) {
      CmdResult r = d().Sbx(args, in);
      if (r.code == 0) return true;
      // NotFound on delete after a restart that already finished it.
      if (args.rfind("delete", 0) == 0 && r.err.find("NotFound") != std::string::npos) return true;
      if (args.rfind("delete", 0) == 0 && r.err.find("not found") != std::string::npos) return true;
      if (!restarting && attempt > 5) {
        std::lock_guard<std::mutex> l(mu);
        if (first_error.empty()) first_error = args + ": " + r.out + r.err;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  auto worker = [&] {
    for (int i = next++; i < cycles; i = next++) {
      const std::string name = "cyc-" + std::to_string(i);
      ok_or_retry("apply -f -", NetSandbox(name, ""));
      ok_or_retry("wait sandbox/" + name + " --for=condition=Ready --timeout=60s");
      ok_or_retry("delete sandbox " + name + " --wait=true --timeout=60s");
      ++done;
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) threads.emplace_back(worker);
  while (done < cycles / 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  restarting = true;
  d().Stop(/*kill9=*/true);
  ASSERT_TRUE(d().Start(Flags())) << d().log();
  restarting = false;
  for (auto& t : threads) t.join();
  EXPECT_EQ(first_error, "");
  ASSERT_TRUE(d().WaitFor("sandboxes", 120000, [](json& j) { return j["items"].empty(); }))
      << d().Sbx("get sandboxes").out;
  EXPECT_EQ(Netns(), 0);
  EXPECT_EQ(Veths(), 0);
  EXPECT_EQ(Leases(), 0);
  EXPECT_FALSE(FirewallTable());
  EXPECT_EQ(d().Runsc("list -q").find("sbx-"), std::string::npos) << d().Runsc("list");
  EXPECT_EQ(Count(Sh("pgrep -fc '[r]unsc-sandbox.*" + d().runsc_root() + "'")), 0);
}

TEST_F(Network, APodsDnsPolicyAndDnsConfigShapeItsResolvConf) {
  std::string yaml = NetSandbox("ownDns", "");
  yaml.replace(yaml.find("      containers:"), 0,
               std::string("      dnsPolicy: None\n      dnsConfig:\n        nameservers: [") + TestHosts::kDns +
                   "]\n        searches: [example.test]\n");
  ApplyReady("own-dns", std::string(yaml).replace(yaml.find("name: ownDns"), 12, "name: own-dns"));
  std::string conf = d().Sbx("exec own-dns -- cat /etc/resolv.conf").out;
  EXPECT_NE(conf.find(std::string("nameserver ") + TestHosts::kDns + "\nsearch example.test\n"), std::string::npos)
      << conf;
  EXPECT_EQ(conf.find("10.213.0.1"), std::string::npos) << conf;
  CmdResult ns = d().Sbx(std::string("exec own-dns -- busybox nslookup ") + TestHosts::kName);
  EXPECT_NE(ns.out.find(TestHosts::kInternet), std::string::npos) << ns.out << ns.err;
  DeleteAndWait("own-dns");

  std::string bad = NetSandbox("bad-dns", "");
  bad.replace(bad.find("      containers:"), 0, "      dnsPolicy: None\n");
  ASSERT_TRUE(ApplyAndWaitForMessage("bad-dns", bad, "dnsConfig.nameservers"))
      << d().Sbx("describe sandbox bad-dns").out;
  DeleteAndWait("bad-dns");
}

TEST_F(Network, SandboxesGetANetworkByDefaultAndTheAnnotationNoneTakesItAway) {
  ApplyReady("dflt", NetSandbox("dflt", ""));
  EXPECT_EQ(d().GetJson("sandbox dflt")["status"].value("podIPs", json::array()).size(), 1u);
  ApplyReady("offline", NetSandbox("offline", "none"));
  json sb = d().GetJson("sandbox offline");
  EXPECT_TRUE(sb["status"].value("podIPs", json::array()).empty()) << sb.dump();
  CmdResult links = d().Sbx("exec offline -- busybox ip -o link");
  EXPECT_NE(links.out.find("lo"), std::string::npos) << links.out << links.err;
  EXPECT_EQ(links.out.find("eth0"), std::string::npos) << links.out;
  EXPECT_EQ(Netns(), 1);
  DeleteAndWait("offline");
  DeleteAndWait("dflt");
  EXPECT_EQ(Netns(), 0);
}

TEST_F(Network, ABadNetworkModeIsReportedNamingTheAnnotation) {
  ASSERT_TRUE(ApplyAndWaitForMessage("badnet", NetSandbox("badnet", "bridge"), "annotations[sbx.dev/network]"))
      << d().Sbx("describe sandbox badnet").out;
  EXPECT_EQ(Netns(), 0);
  DeleteAndWait("badnet");
}

TEST_F(Network, AKilledDaemonKeepsTheNetworkAndPolicyOfARunningSandboxAndReleasesItOnDelete) {
  ApplyReady("survivor", NetSandbox("survivor", "sandbox"));
  const std::string ip = d().GetJson("sandbox survivor")["status"]["podIPs"][0];
  d().Stop(/*kill9=*/true);
  // With sbxd gone, the sandbox is still fenced.
  EXPECT_EQ(Fetch("survivor", std::string("http://") + TestHosts::kMetadata + "/").find("secret"),
            std::string::npos);
  ASSERT_TRUE(d().Start(Flags())) << d().log();
  ASSERT_EQ(d().Sbx("wait sandbox/survivor --for=condition=Ready --timeout=30s").code, 0);
  EXPECT_EQ(d().GetJson("sandbox survivor")["status"]["podIPs"][0], ip);
  EXPECT_NE(Fetch("survivor", std::string("http://") + TestHosts::kInternet + "/").find("hello from the internet"),
            std::string::npos);
  EXPECT_EQ(Fetch("survivor", std::string("http://") + TestHosts::kMetadata + "/").find("secret"),
            std::string::npos);
  EXPECT_EQ(Netns(), 1);
  DeleteAndWait("survivor");
  EXPECT_EQ(Netns(), 0);
  EXPECT_EQ(Veths(), 0);
  EXPECT_EQ(Leases(), 0) << Sh("ls -l " + d().state_dir() + "/network/ipam/sbx").out << d().log();
  EXPECT_FALSE(FirewallTable());
}

TEST_F(Network, TheEgressSettingsOpenAPrivateHostAndNothingElse) {
  d().Stop();
  ASSERT_TRUE(d().Start(Flags(std::string("--egress-allow ") + TestHosts::kPrivate + "/32"))) << d().log();
  ApplyReady("allowed", NetSandbox("allowed", "sandbox"));
  EXPECT_NE(Fetch("allowed", std::string("http://") + TestHosts::kPrivate + "/").find("private host"),
            std::string::npos);
  EXPECT_EQ(Fetch("allowed", std::string("http://") + TestHosts::kMetadata + "/").find("secret"),
            std::string::npos);
  DeleteAndWait("allowed");
}

TEST_F(Network, BadEgressSettingsAreRefusedNamingTheFlag) {
  for (std::string flag : {"--egress-deny 10.0.0.0/33", "--egress-allow nonsense", "--dns 10.0.0.0/8",
                                  "--dns 127.0.0.53"}) {
    CmdResult r = Sh(Daemon::BuildDir() + "/daemon/sbxd --state-dir " + dir_ + "/bad-state --run-dir " + dir_ +
                     "/bad-run " + flag);
    EXPECT_NE(r.code, 0) << flag;
    EXPECT_NE((r.out + r.err).find(flag.substr(0, flag.find(' '))), std::string::npos) << flag << ": " << r.err;
  }
}

}  // namespace
}  // namespace sbx::testing
