// Network namespaces that play the world around a sandbox host, so that the
// network tests send traffic only to hosts on this machine:
//
//   host      where sbxd runs; uplink 198.51.100.2/24, default route via
//   router    198.51.100.1, which forwards to the test hosts:
//   internet  203.0.113.10  an HTTP server ("hello from the internet")
//   metadata  169.254.169.254  an HTTP server playing the cloud metadata
//             service ("metadata: secret credentials")
//   private   10.99.0.5  an HTTP server ("hello from the private host"),
//             and 10.99.0.53, a DNS server (dnsmasq) that resolves
//             internet.example.test to the internet host
//
// The host namespace also runs an HTTP server on port 8080 ("the host
// itself"), which sandboxes must not reach either. Everything is torn down
// by the destructor (namespaces, their interfaces and processes).
#ifndef SBX_TESTS_INTEGRATION_TEST_HOSTS_H_
#define SBX_TESTS_INTEGRATION_TEST_HOSTS_H_

#include <unistd.h>

#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/integration/harness.h"

namespace sbx::testing {

class TestHosts {
 public:
  static constexpr char kInternet[] = "203.0.113.10";
  static constexpr char kMetadata[] = "169.254.169.254";
  static constexpr char kPrivate[] = "10.99.0.5";
  static constexpr char kDns[] = "10.99.0.53";
  static constexpr char kHostUplink[] = "198.51.100.2";
  static constexpr char kName[] = "internet.example.test";

  // `dir` holds the web roots and the DNS server's files.
  explicit TestHosts(std::string dir) : dir_(std::move(dir)), tag_("sbxt" + std::to_string(::getpid())) {}
  ~TestHosts() { TearDown(); }
  TestHosts(const TestHosts&) = delete;
  TestHosts& operator=(const TestHosts&) = delete;

  std::string Ns(const std::string& role) const { return tag_ + "-" + role; }
  std::string NsPath(const std::string& role) const { return "/run/netns/" + Ns(role); }
  // `cmd` run in a role's namespace.
  CmdResult In(const std::string& role, const std::string& cmd) const {
    return Sh("ip netns exec " + Ns(role) + " " + cmd);
  }

  // Builds the namespaces and starts the servers; "" on success, else what
  // failed.
  std::string SetUp() {
    TearDown();
    for (const char* role : {"host", "router", "internet", "metadata", "private"}) {
      if (auto r = Sh("ip netns add " + Ns(role)); r.code != 0) return "ip netns add: " + r.err;
      created_.push_back(role);
      In(role, "ip link set lo up");
    }
    struct Link {
      const char* role;
      const char* router_if;
      const char* router_addr;
      const char* addr;
    };
    const Link links[] = {{"host", "h0", "198.51.100.1/24", "198.51.100.2/24"},
                          {"internet", "inet0", "203.0.113.1/24", "203.0.113.10/24"},
                          {"metadata", "md0", "169.254.169.1/24", "169.254.169.254/24"},
                          {"private", "priv0", "10.99.0.1/24", "10.99.0.5/24"}};
    for (const Link& l : links) {
      std::string inner = std::string(l.role) == "host" ? "up0" : "eth0";
      std::string gw(l.router_addr);
      gw = gw.substr(0, gw.find('/'));
      CmdResult r = Sh("ip link add " + inner + " netns " + Ns(l.role) + " type veth peer name " + l.router_if +
                       " netns " + Ns("router"));
      if (r.code != 0) return "veth for " + std::string(l.role) + ": " + r.err;
      for (const std::string& c :
           {std::string("ip addr add ") + l.router_addr + " dev " + l.router_if,
            std::string("ip link set ") + l.router_if + " up"}) {
        if (auto x = In("router", c); x.code != 0) return c + ": " + x.err;
      }
      for (const std::string& c : {"ip addr add " + std::string(l.addr) + " dev " + inner,
                                   "ip link set " + inner + " up", "ip route add default via " + gw}) {
        if (auto x = In(l.role, c); x.code != 0) return c + ": " + x.err;
      }
    }
    In("private", "ip addr add 10.99.0.53/24 dev eth0");
    In("router", "sysctl -qw net.ipv4.ip_forward=1");

    // Web servers (busybox httpd forks into the background) and DNS.
    struct Site {
      const char* role;
      const char* page;
      int port;
    };
    const Site sites[] = {{"internet", "hello from the internet", 80},
                          {"metadata", "metadata: secret credentials", 80},
                          {"private", "hello from the private host", 80},
                          {"host", "the host itself", 8080}};
    for (const Site& s : sites) {
      std::string root = dir_ + "/www-" + s.role;
      (void)MakeDirs(root, 0755);
      (void)WriteFileAtomic(root + "/index.html", std::string(s.page) + "\n", 0644);
      CmdResult r = In(s.role, "busybox httpd -p " + std::to_string(s.port) + " -h " + root);
      if (r.code != 0) return std::string("httpd in ") + s.role + ": " + r.err;
    }
    CmdResult dns = In("private", "dnsmasq --no-resolv --no-hosts --bind-interfaces --listen-address=" +
                                      std::string(kDns) + " --address=/" + kName + "/" + kInternet +
                                      " --pid-file=" + dir_ + "/dnsmasq.pid --log-facility=" + dir_ +
                                      "/dnsmasq.log");
    if (dns.code != 0) return "dnsmasq: " + dns.out + dns.err;
    return "";
  }

  void TearDown() {
    for (const std::string& role : created_) {
      Sh("ip netns pids " + Ns(role) + " | xargs -r kill -9");
      Sh("ip netns del " + Ns(role));
    }
    created_.clear();
  }

 private:
  std::string dir_;
  std::string tag_;
  std::vector<std::string> created_;
};

}  // namespace sbx::testing

#endif  // SBX_TESTS_INTEGRATION_TEST_HOSTS_H_
