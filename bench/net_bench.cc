// Networking benchmark, everything measured in the same run:
//
//   create->Ready  POST a Sandbox, observe Ready=True through a watch, with
//                  its own network (sbx.dev/network: sandbox: netns, CNI,
//                  firewall, gVisor's stack) vs. without (network none)
//   throughput     download of a large file from a web server in a sandbox
//                  through `sbx port-forward` vs. a direct connection from the
//                  host to the sandbox's address
//   connection     connect + small request + response to the end, one
//                  connection after another: port-forward vs. direct
//
// Needs root, runsc and the CNI plugins; runs sbxd in the host's network
// namespace with the built-in network (10.213.0.0/16).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "tests/integration/harness.h"

using sbx::bench::ApplyToReady;
using sbx::bench::Clock;
using sbx::bench::Connect;
using sbx::bench::Ms;
using sbx::bench::Percentile;
using sbx::bench::WriteAll;
using sbx::testing::CmdResult;
using sbx::testing::Daemon;
using sbx::testing::Sh;

namespace {

// A sleeping busybox sandbox, with its own network or none.
nlohmann::json PodTemplate(bool network) {
  return {{"metadata", {{"annotations", {{"sbx.dev/network", network ? "sandbox" : "none"}}}}},
          {"spec",
           {{"containers", {{{"name", "main"}, {"image", "bench/busybox:1"}, {"command", {"sleep", "100000"}}}}}}}};
}

constexpr int kCreates = 10;
constexpr int kConnections = 300;
constexpr int kDownloads = 3;
constexpr int kBigMb = 128;


int Tcp(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// GET path over HTTP/1.0; returns the bytes received (-1 on failure).
long long Get(const std::string& ip, int port, const std::string& path) {
  int fd = Tcp(ip, port);
  if (fd < 0) return -1;
  WriteAll(fd, "GET " + path + " HTTP/1.0\r\n\r\n");
  long long total = 0;
  static thread_local std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    total += n;
  }
  ::close(fd);
  return total;
}

struct Pair {
  std::vector<double> pf, direct;
};

void Report(const char* what, const char* unit, const Pair& p, bool higher_is_better) {
  double a = Percentile(p.pf, 0.5), b = Percentile(p.direct, 0.5);
  std::printf("%-28s port-forward p50 %9.2f %s  direct p50 %9.2f %s  ratio %.2fx%s\n", what, a, unit, b, unit,
              higher_is_better ? b / a : a / b, higher_is_better ? " (direct/port-forward)" : "");
}

}  // namespace

int main() {
  if (geteuid() != 0) {
    std::fprintf(stderr, "net_bench needs root and runsc\n");
    return 1;
  }
  Daemon d;
  if (!d.Start("--log-level=warning")) {
    std::fprintf(stderr, "sbxd did not start:\n%s\n", d.log().c_str());
    return 1;
  }
  if (!d.ImportBusybox("bench/busybox:1")) return 1;

  // 1. create -> Ready, alternating the modes so that drift hits both.
  std::vector<double> none, net;
  for (int i = 0; i < kCreates; ++i) {
    none.push_back(ApplyToReady(d, "none-" + std::to_string(i), PodTemplate(false)));
    net.push_back(ApplyToReady(d, "net-" + std::to_string(i), PodTemplate(true)));
  }
  std::printf("net_bench: runsc platform from sbxd; %d creates per mode, %d connections, %d x %d MB downloads\n",
              kCreates, kConnections, kDownloads, kBigMb);
  std::printf("create->Ready  network none     p50 %8.1f ms  p90 %8.1f ms\n", Percentile(none, 0.5),
              Percentile(none, 0.9));
  std::printf("create->Ready  network sandbox  p50 %8.1f ms  p90 %8.1f ms  ratio %.2fx (sandbox/none)\n",
              Percentile(net, 0.5), Percentile(net, 0.9), Percentile(net, 0.5) / Percentile(none, 0.5));
  for (int i = 0; i < kCreates; ++i) {
    d.Sbx("delete sandbox none-" + std::to_string(i) + " net-" + std::to_string(i) + " --wait=false");
  }

  // 2. A web server in a networked sandbox.
  std::string yaml =
      "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: web\nspec:\n  podTemplate:\n"
      "    metadata:\n      annotations:\n        sbx.dev/network: sandbox\n    spec:\n      containers:\n"
      "      - name: web\n        image: bench/busybox:1\n        command: [\"sh\", \"-c\", \"mkdir -p /www && "
      "echo ok > /www/small && busybox dd if=/dev/zero of=/www/big bs=1M count=" +
      std::to_string(kBigMb) + " 2>/dev/null && exec httpd -f -p 8080 -h /www\"]\n";
  if (d.Sbx("apply -f -", yaml).code != 0 ||
      d.Sbx("wait sandbox/web --for=condition=Ready --timeout=120s").code != 0) {
    std::fprintf(stderr, "web sandbox not ready:\n%s\n", d.log().c_str());
    return 1;
  }
  std::string ip = d.GetJson("sandbox web")["status"]["podIPs"][0];
  for (int i = 0; i < 100 && Get(ip, 8080, "/small") <= 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string out = d.dir() + "/pf.out";
  CmdResult pf = Sh("SBX_SOCKET=" + d.socket() + " " + Daemon::BuildDir() + "/cli/sbx port-forward web :8080 >" +
                    out + " 2>&1 </dev/null & echo $!");
  int pf_pid = std::atoi(pf.out.c_str());
  int pf_port = 0;
  for (int i = 0; i < 200 && pf_port == 0; ++i) {
    CmdResult text = Sh("cat " + out);
    auto at = text.out.find("Forwarding from 127.0.0.1:");
    if (at != std::string::npos) pf_port = std::atoi(text.out.c_str() + at + 26);
    if (pf_port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (pf_port == 0) {
    std::fprintf(stderr, "port-forward did not start: %s\n", Sh("cat " + out).out.c_str());
    return 1;
  }

  // 3. Throughput.
  Pair mbps;
  const long long want = static_cast<long long>(kBigMb) << 20;
  for (int i = 0; i < kDownloads; ++i) {
    for (bool direct : {false, true}) {
      auto t0 = Clock::now();
      long long got = direct ? Get(ip, 8080, "/big") : Get("127.0.0.1", pf_port, "/big");
      double s = Ms(t0, Clock::now()) / 1000;
      if (got < want) {
        std::fprintf(stderr, "short download (%lld of %lld bytes)\n", got, want);
        return 1;
      }
      (direct ? mbps.direct : mbps.pf).push_back(static_cast<double>(got) / (1 << 20) / s);
    }
  }
  // 4. Connection latency.
  Pair conn;
  for (int i = 0; i < kConnections; ++i) {
    for (bool direct : {false, true}) {
      auto t0 = Clock::now();
      long long got = direct ? Get(ip, 8080, "/small") : Get("127.0.0.1", pf_port, "/small");
      double ms = Ms(t0, Clock::now());
      if (got <= 0) {
        std::fprintf(stderr, "a connection failed\n");
        return 1;
      }
      (direct ? conn.direct : conn.pf).push_back(ms);
    }
  }
  Report("throughput (MB/s)", "MB/s", mbps, true);
  Report("connection+request (ms)", "ms", conn, false);
  std::printf("%-28s port-forward p99 %9.2f ms  direct p99 %9.2f ms\n", "", Percentile(conn.pf, 0.99),
              Percentile(conn.direct, 0.99));

  ::kill(pf_pid, SIGTERM);
  d.Sbx("delete sandbox web --wait=true --timeout=60s");
  for (int i = 0; i < kCreates; ++i) {
    d.Sbx("delete sandbox none-" + std::to_string(i) + " net-" + std::to_string(i) + " --wait=true --timeout=60s");
  }
  d.Stop();
  return 0;
}
