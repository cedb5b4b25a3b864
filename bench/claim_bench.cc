// Claim benchmark: SandboxClaims against a warm pool, beside cold claims and
// raw runsc, measured in one run (see kUsage for the phases and the sizing).
//
// Needs root and runsc. Starts its own sbxd in a temporary directory, and
// leaves no sandbox, process or mount behind.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "tests/integration/harness.h"

using sbx::bench::Clock;
using sbx::bench::Ms;
using sbx::bench::Percentile;
using sbx::bench::RawRunsc;
using sbx::testing::Daemon;
using Json = nlohmann::json;

namespace {

const char kUsage[] = R"(usage: claim_bench [flags]

Measures how fast sbxd hands out sandboxes through SandboxClaims:

  1. fill     a SandboxWarmPool of --pool members (busybox, `sleep 100000`)
              from empty to readyReplicas == --pool: the pool's fill rate,
              and the host cost of one idle member (memory, threads, CPU)
  2. cold     --cold claims against a second pool with replicas 0, one at a
              time, each followed by the raw runsc baseline: create + start
              of the same pod recipe sbx runs (sbx-pause root container, then
              the workload as a sub-container; same rootfs, platform, flags)
  3. warm     --rate claims/s for --seconds against the warm pool, open loop:
              claim i is sent at start + i/rate by one of --connections
              keep-alive connections, whatever happened to earlier claims
  4. refill   after the warm run, the pool's refill rate: members per second
              until readyReplicas is back to --pool (or until host memory or
              --refill-seconds stops it; the output says which)

Claim-create -> Ready is observed through one watch on sandboxclaims, opened
before the first claim: from the moment the claim's POST is written to the
moment the watch event that carries status.conditions[Ready].status=="True"
is read. A warm claim whose Sandbox is named like the claim was cold-started
(the pool ran dry); the output counts those separately.

Flags:
  --rate N            warm claims per second (default 50)
  --seconds N         length of the warm run (default 20)
  --pool N            warm pool replicas (default rate x seconds: every warm
                      claim finds a member even if nothing refills in time)
  --cold N            cold claims (default 10)
  --connections N     connections the warm claims are sent over (default 32,
                      enough that a slow reply never holds back a send)
  --platform NAME     runsc platform of sbxd and of the baseline (default
                      ptrace; see sizing)
  --refill-seconds N  longest refill measurement (default 120)
  --ready-timeout N   seconds a claim may take to become Ready (default 60)
  --mem-reserve-mb N  host memory (MemAvailable) the bench leaves free; it
                      refuses to start, or stops growing, below it (default
                      1536)
  --sbxd-flag FLAG    extra sbxd flag (repeatable), e.g. --sbxd-flag=--workers=8
  --help              this text

Sizing (2 vCPU, 24 GiB, runsc 20240729, measured by this bench): an idle
pool member costs 15-17 MB of host memory and 37 host threads under ptrace.
Under systrap an idle gVisor sandbox keeps ~3% of a core busy (its stubs
poll), so a few dozen idle members saturate 2 cores and the run would
measure CPU starvation; ptrace idles at ~0.05-0.1% of a core per member, so
it is the default. Every warm claim keeps its member, so the run peaks at
about max(pool, claims) + what refills: the defaults need ~18 GiB and ~40k
threads (kernel.pid_max is 32768 here). The bench checks MemAvailable first
(20 MB per member before it has measured, its own figure after the fill),
stops filling below --mem-reserve-mb, and raises kernel.pid_max for the run
when the threads would not fit, restoring it at exit. The pool fills at
~3 members/s while small and ~1.5/s on average up to 1000, and 1000 claimed
sandboxes take minutes to tear down: a full default run took ~45 minutes and
the whole machine. Start with e.g. --rate 10 --seconds 3 --pool 30.
)";

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

// The calling thread's nice value (Linux: per thread). The bench's client
// threads run ahead of the host's other work so that their own wake-up
// delays on a busy host do not count against sbxd; processes the bench
// starts do not inherit it.
void RaiseThreadPriority() { setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), -10); }

struct Options {
  double rate = 50;
  int seconds = 20;
  int pool = -1;  // rate x seconds
  int cold = 10;
  int connections = 32;
  std::string platform = "ptrace";
  int refill_seconds = 120;
  int ready_timeout = 60;
  long mem_reserve_mb = 1536;
  std::vector<std::string> sbxd_flags;
};

// Parses --flag=value and --flag value; exits on a bad flag.
Options ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (auto eq = a.find('='); eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      std::fprintf(stderr, "claim_bench: %s needs a value (see --help)\n", a.c_str());
      std::exit(2);
    }
    auto number = [&](double min) {
      char* end = nullptr;
      double n = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(n >= min)) {
        std::fprintf(stderr, "claim_bench: %s: want a number >= %g, not \"%s\"\n", a.c_str(), min,
                     v.c_str());
        std::exit(2);
      }
      return n;
    };
    if (a == "--rate") o.rate = number(0.01);
    else if (a == "--seconds") o.seconds = static_cast<int>(number(1));
    else if (a == "--pool") o.pool = static_cast<int>(number(0));
    else if (a == "--cold") o.cold = static_cast<int>(number(0));
    else if (a == "--connections") o.connections = static_cast<int>(number(1));
    else if (a == "--platform") o.platform = v;
    else if (a == "--refill-seconds") o.refill_seconds = static_cast<int>(number(0));
    else if (a == "--ready-timeout") o.ready_timeout = static_cast<int>(number(1));
    else if (a == "--mem-reserve-mb") o.mem_reserve_mb = static_cast<long>(number(0));
    else if (a == "--sbxd-flag") o.sbxd_flags.push_back(v);
    else {
      std::fprintf(stderr, "claim_bench: unknown flag %s (see --help)\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.pool < 0) o.pool = static_cast<int>(std::lround(o.rate * o.seconds));
  return o;
}

// ---- HTTP/1.1 over the daemon's Unix socket ----

struct Reply {
  int status = 0;
  std::string body;
};

// One keep-alive connection: request/response, or one watch stream.
class HttpConn {
 public:
  explicit HttpConn(std::string socket) : socket_(std::move(socket)) {}
  ~HttpConn() { Close(); }
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;

  bool Open() {
    Close();
    fd_ = sbx::bench::Connect(socket_);
    if (fd_ < 0) return false;
    // A daemon that stops answering fails the request instead of hanging
    // the bench.
    timeval tv{120, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return true;
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
    pos_ = 0;
  }

  // Wakes a reader blocked in another thread; it then sees end of stream.
  void Shutdown() {
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  }

  // One request and its whole response. `sent` is when the request was
  // written. Reopens the connection if the server had closed it.
  bool Do(const std::string& method, const std::string& path, const std::string& body, Reply* out,
          Clock::time_point* sent = nullptr) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0 && !Open()) return false;
      std::string req = method + " " + path + " HTTP/1.1\r\nHost: sbx\r\n";
      if (!body.empty()) {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n";
      }
      req += "\r\n" + body;
      if (sent) *sent = Clock::now();
      Head h;
      if (!sbx::bench::WriteAll(fd_, req) || !ReadHead(&h)) {
        Close();
        continue;
      }
      out->status = h.status;
      out->body.clear();
      bool ok = true;
      if (h.chunked) {
        std::string data;
        while ((ok = ReadChunk(&data)) && !data.empty()) out->body += data;
      } else {
        ok = ReadN(static_cast<size_t>(std::max(0L, h.length)), &out->body);
      }
      if (!ok || h.close) Close();
      return ok;
    }
    return false;
  }

  // Sends a watch GET and reads the response head.
  bool StartWatch(const std::string& path) {
    if (!Open()) return false;
    timeval none{0, 0};  // a quiet watch is not an error
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    Head h;
    return sbx::bench::WriteAll(fd_, "GET " + path + " HTTP/1.1\r\nHost: sbx\r\n\r\n") &&
           ReadHead(&h) && h.status == 200 && h.chunked;
  }

  // The next line of a watch stream and when the read that completed it
  // returned; false at the end of the stream.
  bool NextLine(std::string* line, Clock::time_point* at) {
    for (;;) {
      if (size_t nl = lines_.find('\n'); nl != std::string::npos) {
        *line = lines_.substr(0, nl);
        lines_.erase(0, nl + 1);
        *at = last_read_;
        return true;
      }
      std::string data;
      if (!ReadChunk(&data) || data.empty()) return false;
      lines_ += data;
    }
  }

 private:
  struct Head {
    int status = 0;
    long length = 0;
    bool chunked = false;
    bool close = false;
  };

  bool Fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    char tmp[65536];
    ssize_t n = read(fd_, tmp, sizeof(tmp));
    if (n <= 0) return false;
    last_read_ = Clock::now();
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  bool ReadLine(std::string* line) {
    for (;;) {
      if (size_t e = buf_.find("\r\n", pos_); e != std::string::npos) {
        *line = buf_.substr(pos_, e - pos_);
        pos_ = e + 2;
        return true;
      }
      if (!Fill()) return false;
    }
  }

  bool ReadN(size_t n, std::string* out) {
    while (buf_.size() - pos_ < n) {
      if (!Fill()) return false;
    }
    out->append(buf_, pos_, n);
    pos_ += n;
    return true;
  }

  bool ReadHead(Head* h) {
    std::string line;
    if (!ReadLine(&line) || line.compare(0, 5, "HTTP/") != 0) return false;
    h->status = std::atoi(line.c_str() + line.find(' ') + 1);
    while (ReadLine(&line)) {
      if (line.empty()) return true;
      std::string key = line.substr(0, line.find(':'));
      std::string value = line.substr(std::min(line.size(), key.size() + 1));
      value.erase(0, value.find_first_not_of(' '));
      std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      if (key == "content-length") h->length = std::atol(value.c_str());
      if (key == "transfer-encoding" && value == "chunked") h->chunked = true;
      if (key == "connection" && value == "close") h->close = true;
    }
    return false;
  }

  // One chunk's data; empty for the last chunk.
  bool ReadChunk(std::string* data) {
    data->clear();
    std::string size_line;
    if (!ReadLine(&size_line)) return false;
    size_t n = std::strtoul(size_line.c_str(), nullptr, 16);
    if (n == 0) {
      std::string trailer;
      while (ReadLine(&trailer) && !trailer.empty()) {
      }
      return true;
    }
    std::string crlf;
    return ReadN(n, data) && ReadN(2, &crlf);
  }

  std::string socket_;
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
  std::string lines_;
  Clock::time_point last_read_;
};

// A watch read on its own thread; every event goes to the handler with the
// time its bytes arrived.
class Watch {
 public:
  using Handler = std::function<void(const std::string& type, const Json& object, Clock::time_point at)>;

  explicit Watch(const std::string& socket) : conn_(socket) {}
  ~Watch() { Stop(); }

  bool Start(const std::string& path, Handler handler) {
    if (!conn_.StartWatch(path)) return false;
    thread_ = std::thread([this, handler = std::move(handler)] {
      RaiseThreadPriority();
      std::string line;
      Clock::time_point at;
      while (conn_.NextLine(&line, &at)) {
        if (line.empty()) continue;
        Json ev = Json::parse(line, nullptr, false);
        if (ev.is_discarded() || !ev.contains("object")) continue;
        handler(ev.value("type", ""), ev["object"], at);
      }
    });
    return true;
  }

  void Stop() {
    conn_.Shutdown();
    if (thread_.joinable()) thread_.join();
    conn_.Close();
  }

 private:
  HttpConn conn_;
  std::thread thread_;
};

bool ReadyTrue(const Json& obj) {
  if (!obj.contains("status") || !obj["status"].is_object()) return false;
  for (const auto& c : obj["status"].value("conditions", Json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

// When each claim was first seen Ready, from the claims watch.
class ClaimBook {
 public:
  struct Seen {
    Clock::time_point at;
    std::string sandbox;  // status.sandbox.name
  };

  void OnEvent(const std::string& type, const Json& obj, Clock::time_point at) {
    if (type != "ADDED" && type != "MODIFIED") return;
    if (!ReadyTrue(obj)) return;
    std::string name = obj["metadata"].value("name", "");
    std::string sandbox;
    if (obj["status"].contains("sandbox") && obj["status"]["sandbox"].is_object()) {
      sandbox = obj["status"]["sandbox"].value("name", "");
    }
    std::lock_guard<std::mutex> l(mu_);
    if (seen_.emplace(name, Seen{at, sandbox}).second) cv_.notify_all();
  }

  // Waits until every name is Ready or the deadline passes; true if all are.
  bool WaitAll(const std::vector<std::string>& names, Clock::time_point deadline) {
    std::unique_lock<std::mutex> l(mu_);
    auto all = [&] {
      return std::all_of(names.begin(), names.end(), [&](const std::string& n) { return seen_.count(n) > 0; });
    };
    while (!all()) {
      auto now = Clock::now();
      if (g_stop || now >= deadline) return false;
      cv_.wait_until(l, std::min(deadline, now + std::chrono::milliseconds(200)));
    }
    return true;
  }

  std::optional<Seen> Get(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = seen_.find(name);
    if (it == seen_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Seen> seen_;
};

// Each pool's replicas / readyReplicas over time, from the pools watch.
class PoolBook {
 public:
  struct Sample {
    Clock::time_point at;
    int replicas = 0;
    int ready = 0;
  };

  void OnEvent(const std::string& type, const Json& obj, Clock::time_point at) {
    if (type != "ADDED" && type != "MODIFIED") return;
    Json status = obj.value("status", Json::object());
    Sample s{at, status.value("replicas", 0), status.value("readyReplicas", 0)};
    std::lock_guard<std::mutex> l(mu_);
    samples_[obj["metadata"].value("name", "")].push_back(s);
    cv_.notify_all();
  }

  Sample Last(const std::string& pool) {
    std::lock_guard<std::mutex> l(mu_);
    auto& v = samples_[pool];
    return v.empty() ? Sample{Clock::now(), 0, 0} : v.back();
  }

  // The last sample at or before t.
  Sample At(const std::string& pool, Clock::time_point t) {
    std::lock_guard<std::mutex> l(mu_);
    Sample out{t, 0, 0};
    for (const auto& s : samples_[pool]) {
      if (s.at > t) break;
      out = s;
    }
    return out;
  }

  // The lowest readyReplicas seen in [from, to].
  int MinReady(const std::string& pool, Clock::time_point from, Clock::time_point to) {
    std::lock_guard<std::mutex> l(mu_);
    int at_from = 0, low = std::numeric_limits<int>::max();
    for (const auto& s : samples_[pool]) {
      if (s.at > to) break;
      if (s.at <= from) {
        at_from = s.ready;
      } else {
        low = std::min(low, s.ready);
      }
    }
    return std::min(at_from, low);
  }

  // When readyReplicas first reached n (nullopt if it has not).
  std::optional<Clock::time_point> Reached(const std::string& pool, int n) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& s : samples_[pool]) {
      if (s.ready >= n) return s.at;
    }
    return std::nullopt;
  }

  // Waits until readyReplicas >= n, the deadline, or the stop flag; returns
  // the last sample.
  Sample WaitReady(const std::string& pool, int n, Clock::time_point deadline) {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      auto& v = samples_[pool];
      if ((!v.empty() && v.back().ready >= n) || g_stop || Clock::now() >= deadline) {
        return v.empty() ? Sample{Clock::now(), 0, 0} : v.back();
      }
      cv_.wait_until(l, std::min(deadline, Clock::now() + std::chrono::milliseconds(200)));
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<Sample>> samples_;
};

// ---- host measurements ----

long MemAvailableKb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value;
  }
  return 0;
}

// Threads on the host (/proc/loadavg's count of scheduling entities).
long HostThreads() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c, d;
  in >> a >> b >> c >> d;
  return std::atol(d.substr(d.find('/') + 1).c_str());
}

std::string ReadSmall(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Processes whose command line mentions tag (sbxd and the runsc processes it
// started, which all carry its directory in their flags).
std::vector<int> TaggedPids(const std::string& tag) {
  std::vector<int> out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (dirent* e = readdir(proc)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    if (ReadSmall("/proc/" + std::string(e->d_name) + "/cmdline").find(tag) != std::string::npos) {
      out.push_back(pid);
    }
  }
  closedir(proc);
  return out;
}

long FieldKb(const std::string& text, const std::string& key) {
  size_t p = text.find(key);
  return p == std::string::npos ? 0 : std::atol(text.c_str() + p + key.size());
}

struct Usage {
  long mem_available_kb = 0;
  long host_threads = 0;
  long pss_kb = 0;  // tagged processes
  long procs = 0;
};

Usage Measure(const std::string& tag) {
  Usage u;
  u.mem_available_kb = MemAvailableKb();
  u.host_threads = HostThreads();
  for (int pid : TaggedPids(tag)) {
    u.pss_kb += FieldKb(ReadSmall("/proc/" + std::to_string(pid) + "/smaps_rollup"), "\nPss:");
    ++u.procs;
  }
  return u;
}

// CPU time (user + system, clock ticks) of the tagged processes.
long CpuTicks(const std::vector<int>& pids) {
  long total = 0;
  for (int pid : pids) {
    std::string s = ReadSmall("/proc/" + std::to_string(pid) + "/stat");
    size_t r = s.rfind(')');
    if (r == std::string::npos) continue;
    std::istringstream in(s.substr(r + 2));
    std::string f;
    std::vector<std::string> fields;
    while (in >> f && fields.size() < 13) fields.push_back(f);
    if (fields.size() >= 13) total += std::atol(fields[11].c_str()) + std::atol(fields[12].c_str());
  }
  return total;
}

// Where the host's CPU went over a window: all of it (/proc/stat), sbxd's
// own threads, the commands sbxd ran and waited for (runsc create, start,
// delete ...), and this process.
struct CpuSnapshot {
  Clock::time_point at;
  long host_busy = 0, host_total = 0;  // clock ticks over all CPUs
  long sbxd = 0, sbxd_children = 0, self = 0;
  // Pressure stall totals (/proc/pressure, microseconds; -1 without PSI):
  // time some runnable task waited for a CPU, for memory, for I/O.
  long long cpu_some = -1, memory_some = -1, io_some = -1;
};

// The "some ... total=N" figure of /proc/pressure/<resource>.
long long PressureSome(const char* resource) {
  std::string text = ReadSmall(std::string("/proc/pressure/") + resource);
  size_t at = text.find("total=");
  if (!text.starts_with("some") || at == std::string::npos) return -1;
  return std::atoll(text.c_str() + at + 6);
}

CpuSnapshot TakeCpu(int sbxd_pid) {
  CpuSnapshot c;
  c.at = Clock::now();
  std::istringstream stat(ReadSmall("/proc/stat"));
  std::string cpu;
  stat >> cpu;
  long v[10] = {};
  for (int i = 0; i < 10 && stat >> v[i]; ++i) {
  }
  // user nice system idle iowait irq softirq steal (guest time is in user).
  c.host_busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  c.host_total = c.host_busy + v[3] + v[4];
  auto fields = [](int pid) {
    std::vector<long> out;
    std::string s = ReadSmall("/proc/" + std::to_string(pid) + "/stat");
    size_t r = s.rfind(')');
    if (r == std::string::npos) return out;
    std::istringstream in(s.substr(r + 2));
    std::string f;
    while (in >> f && out.size() < 15) out.push_back(std::atol(f.c_str()));
    return out;
  };
  if (auto f = fields(sbxd_pid); f.size() >= 15) {
    c.sbxd = f[11] + f[12];
    c.sbxd_children = f[13] + f[14];
  }
  if (auto f = fields(getpid()); f.size() >= 13) c.self = f[11] + f[12];
  c.cpu_some = PressureSome("cpu");
  c.memory_some = PressureSome("memory");
  c.io_some = PressureSome("io");
  return c;
}

// "host CPU 180% busy of 200%: sbxd 40%, commands it ran 90%, ..."
std::string CpuText(const CpuSnapshot& a, const CpuSnapshot& b) {
  double secs = Ms(a.at, b.at) / 1000;
  if (secs <= 0) return "";
  double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  auto pct = [&](long ticks) { return 100.0 * static_cast<double>(ticks) / hz / secs; };
  double busy = 100.0 * ncpu * static_cast<double>(b.host_busy - a.host_busy) /
                static_cast<double>(std::max(1L, b.host_total - a.host_total));
  double sbxd = pct(b.sbxd - a.sbxd), children = pct(b.sbxd_children - a.sbxd_children), self = pct(b.self - a.self);
  char text[384];
  int n = std::snprintf(text, sizeof(text),
                        "host CPU %.0f%% busy of %ld%%: sbxd %.0f%%, commands sbxd ran %.0f%%, this bench %.0f%%, "
                        "the rest (sandboxes, other users) %.0f%%",
                        busy, 100 * ncpu, sbxd, children, self, std::max(0.0, busy - sbxd - children - self));
  if (a.cpu_some >= 0 && b.cpu_some >= 0 && n > 0 && static_cast<size_t>(n) < sizeof(text)) {
    // Share of the window in which some task was stalled waiting for each.
    auto stall = [&](long long x, long long y) { return y >= x && x >= 0 ? (y - x) / 10000.0 / secs : 0.0; };
    std::snprintf(text + n, sizeof(text) - static_cast<size_t>(n),
                  "; pressure stalls (some): cpu %.0f%%, memory %.1f%%, io %.1f%% of the time",
                  stall(a.cpu_some, b.cpu_some), stall(a.memory_some, b.memory_some),
                  stall(a.io_some, b.io_some));
  }
  return text;
}

// The sbxd process among the run's processes.
int SbxdPid(const std::string& tag) {
  for (int pid : TaggedPids(tag)) {
    std::string comm = ReadSmall("/proc/" + std::to_string(pid) + "/comm");
    if (comm.rfind("sbxd", 0) == 0) return pid;
  }
  return -1;
}

// Raises kernel.pid_max for the run and puts it back.
class PidMax {
 public:
  ~PidMax() { Restore(); }

  void Ensure(long need) {
    long now = Read();
    if (now <= 0 || need <= now) return;
    long want = 1;
    while (want < need) want <<= 1;
    want = std::min(want, 4194304L);
    if (Write(want)) {
      old_ = now;
      std::printf("kernel.pid_max raised %ld -> %ld for this run (about %ld threads needed; restored at exit)\n",
                  now, want, need);
    } else {
      std::fprintf(stderr, "claim_bench: could not raise kernel.pid_max to %ld (%ld threads needed)\n",
                   want, need);
    }
  }

  void Restore() {
    if (old_ > 0 && Write(old_)) std::printf("kernel.pid_max restored to %ld\n", old_);
    old_ = 0;
  }

 private:
  static long Read() { return std::atol(ReadSmall("/proc/sys/kernel/pid_max").c_str()); }
  static bool Write(long v) {
    std::ofstream out("/proc/sys/kernel/pid_max");
    out << v << "\n";
    out.flush();
    return static_cast<bool>(out);
  }
  long old_ = 0;
};

// ---- the benchmark ----

constexpr char kExt[] = "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/";
constexpr char kSandboxes[] = "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes";
constexpr char kImage[] = "bench/busybox:1";
constexpr char kTemplate[] = "bench-template";
constexpr char kWarmPool[] = "bench-warm";
constexpr char kColdPool[] = "bench-cold";
// Before the bench has measured a member: what one costs under ptrace here,
// rounded up.
constexpr long kMemberKbPrior = 20 * 1024;
constexpr long kMemberThreadsPrior = 40;

std::string ClaimName(const char* prefix, int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s-%05d", prefix, i);
  return buf;
}

std::string ClaimBody(const std::string& name, const std::string& pool) {
  return Json{{"apiVersion", "extensions.agents.x-k8s.io/v1beta1"},
              {"kind", "SandboxClaim"},
              {"metadata", {{"name", name}}},
              {"spec", {{"warmPoolRef", {{"name", pool}}}}}}
      .dump();
}

std::string PoolBody(const std::string& name, int replicas) {
  return Json{{"apiVersion", "extensions.agents.x-k8s.io/v1beta1"},
              {"kind", "SandboxWarmPool"},
              {"metadata", {{"name", name}}},
              {"spec", {{"replicas", replicas}, {"sandboxTemplateRef", {{"name", kTemplate}}}}}}
      .dump();
}

std::string TemplateBody() {
  return Json{{"apiVersion", "extensions.agents.x-k8s.io/v1beta1"},
              {"kind", "SandboxTemplate"},
              {"metadata", {{"name", kTemplate}}},
              {"spec",
               {{"podTemplate",
                 {{"spec",
                   {{"containers",
                     {{{"name", "main"}, {"image", kImage}, {"command", {"sleep", "100000"}}}}}}}}}}}}
      .dump();
}

struct Stats {
  size_t n = 0;
  double p50 = 0, p99 = 0, max = 0;
};

Stats Summarize(const std::vector<double>& v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  s.p50 = Percentile(v, 0.5);
  s.p99 = Percentile(v, 0.99);
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

// One warm claim as sent.
struct Sent {
  Clock::time_point sched, sent, replied;
  int status = 0;
  std::string error;
};

class Bench {
 public:
  Bench(const Options& o, const Daemon& d, const RawRunsc& raw)
      : o_(o), d_(d), raw_(raw), api_(d.socket()), claims_watch_(d.socket()), pools_watch_(d.socket()) {}

  int Run() {
    Usage before = Measure(d_.dir());
    double load_at_start = 0;
    std::istringstream(ReadSmall("/proc/loadavg")) >> load_at_start;
    long mem_reserve_kb = o_.mem_reserve_mb * 1024;
    int claims = static_cast<int>(std::lround(o_.rate * o_.seconds));
    long peak = std::max(o_.pool, claims) + o_.cold;
    std::printf("claim_bench: platform %s; warm pool %d; %d cold claims; %d warm claims at %.4g/s for %d s over %d connections\n",
                raw_.platform().c_str(), o_.pool, o_.cold, claims, o_.rate, o_.seconds, o_.connections);
    if (before.mem_available_kb - mem_reserve_kb < peak * kMemberKbPrior) {
      std::fprintf(stderr,
                   "claim_bench: about %ld members at ~%ld MB each need %ld MB, but MemAvailable is %ld MB "
                   "(reserve %ld MB): use a smaller --pool/--rate/--seconds (at most ~%ld members fit)\n",
                   peak, kMemberKbPrior / 1024, peak * kMemberKbPrior / 1024, before.mem_available_kb / 1024,
                   o_.mem_reserve_mb, (before.mem_available_kb - mem_reserve_kb) / kMemberKbPrior);
      return 1;
    }
    pid_max_.Ensure(before.host_threads + (o_.pool + claims + o_.cold) * kMemberThreadsPrior + 4096);

    // Both watches are open before the first object exists.
    if (!claims_watch_.Start(std::string(kExt) + "sandboxclaims?watch=true",
                             [this](const std::string& t, const Json& obj, Clock::time_point at) {
                               claims_book_.OnEvent(t, obj, at);
                             }) ||
        !pools_watch_.Start(std::string(kExt) + "sandboxwarmpools?watch=true",
                            [this](const std::string& t, const Json& obj, Clock::time_point at) {
                              pools_book_.OnEvent(t, obj, at);
                            })) {
      std::fprintf(stderr, "claim_bench: could not open the watches\n");
      return 1;
    }
    if (!Create("sandboxtemplates", TemplateBody()) || !Create("sandboxwarmpools", PoolBody(kColdPool, 0))) {
      return 1;
    }

    // 1. Fill.
    int sbxd_pid = SbxdPid(d_.dir());
    CpuSnapshot fill_cpu0 = TakeCpu(sbxd_pid);
    auto fill0 = Clock::now();
    if (!Create("sandboxwarmpools", PoolBody(kWarmPool, o_.pool))) return 1;
    if (!WaitFill(o_.pool, mem_reserve_kb)) return 1;
    double fill_s = Ms(fill0, Clock::now()) / 1000;
    CpuSnapshot fill_cpu1 = TakeCpu(sbxd_pid);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    Usage full = Measure(d_.dir());
    int members = std::max(1, o_.pool);
    member_kb_ = std::max(1L, (before.mem_available_kb - full.mem_available_kb) / members);
    long member_pss_kb = (full.pss_kb - before.pss_kb) / members;
    long member_threads = (full.host_threads - before.host_threads) / members;
    std::vector<int> pids = TaggedPids(d_.dir());
    long ticks0 = CpuTicks(pids);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    double idle_core_pct = 100.0 * static_cast<double>(CpuTicks(pids) - ticks0) /
                           static_cast<double>(sysconf(_SC_CLK_TCK)) / 5.0;
    std::printf("host           load average %.2f at start (%ld CPUs, shared with whatever else runs)\n",
                load_at_start, sysconf(_SC_NPROCESSORS_ONLN));
    std::printf("pool fill      0 -> %d Ready in %.1f s: %.2f members/s; %s\n", o_.pool, fill_s,
                fill_s > 0 ? o_.pool / fill_s : 0.0, CpuText(fill_cpu0, fill_cpu1).c_str());
    if (o_.pool >= 10) {
      // Fill rate by tenths of the pool: whether it slows as the pool grows.
      std::printf("               by tenth of the pool (members/s):");
      Clock::time_point prev = fill0;
      for (int k = 1; k <= 10; ++k) {
        auto at = pools_book_.Reached(kWarmPool, o_.pool * k / 10);
        if (!at) break;
        double secs = Ms(prev, *at) / 1000;
        std::printf(" %.2f", secs > 0 ? (o_.pool * k / 10 - o_.pool * (k - 1) / 10) / secs : 0.0);
        prev = *at;
      }
      std::printf("\n");
    }
    if (o_.pool > 0) {
      std::printf("per member     %.1f MB host memory (MemAvailable; PSS %.1f MB), %ld host threads; "
                  "idle pool: sbxd + members %.1f%% of one core (%.3f%% per member)\n",
                  member_kb_ / 1024.0, member_pss_kb / 1024.0, member_threads, idle_core_pct,
                  idle_core_pct / members);
    }
    if (g_stop) return 1;

    // 2. Cold claims, each beside the raw runsc baseline.
    std::vector<double> cold_ms, raw_ms;
    if (!ColdPhase(&cold_ms, &raw_ms)) return 1;

    // 3. Warm claims, open loop.
    std::vector<std::string> names;
    for (int i = 0; i < claims; ++i) names.push_back(ClaimName("w", i));
    Clock::time_point first_sched;
    CpuSnapshot run_cpu0 = TakeCpu(sbxd_pid);
    std::vector<Sent> sent = SendWarm(names, &first_sched);
    auto last_sent = first_sched;
    for (const auto& s : sent) last_sent = std::max(last_sent, s.sent);
    bool all_ready = claims_book_.WaitAll(names, last_sent + std::chrono::seconds(o_.ready_timeout));
    CpuSnapshot run_cpu1 = TakeCpu(sbxd_pid);
    constexpr int kWindowS = 5;
    std::vector<std::vector<double>> by_window((o_.seconds + kWindowS - 1) / kWindowS + 1);
    std::vector<double> warm_ms, warm_only_ms, post_ms, lag_ms, after_reply_ms;
    int cold_fallback = 0, failed = 0, not_ready = 0;
    Clock::time_point run_end = first_sched;
    std::string first_error;
    for (size_t i = 0; i < names.size(); ++i) {
      const Sent& s = sent[i];
      lag_ms.push_back(Ms(s.sched, s.sent));
      if (s.status != 201) {
        ++failed;
        if (first_error.empty()) first_error = std::to_string(s.status) + " " + s.error;
        continue;
      }
      post_ms.push_back(Ms(s.sent, s.replied));
      auto seen = claims_book_.Get(names[i]);
      if (!seen) {
        ++not_ready;
        continue;
      }
      run_end = std::max(run_end, seen->at);
      double ms = Ms(s.sent, seen->at);
      warm_ms.push_back(ms);
      after_reply_ms.push_back(Ms(s.replied, seen->at));
      size_t w = static_cast<size_t>(Ms(first_sched, s.sched) / 1000 / kWindowS);
      by_window[std::min(w, by_window.size() - 1)].push_back(ms);
      if (seen->sandbox == names[i]) {
        ++cold_fallback;
      } else {
        warm_only_ms.push_back(ms);
      }
    }
    int adopted = static_cast<int>(warm_only_ms.size());

    // 4. Refill after the run.
    PoolBook::Sample at_start = pools_book_.At(kWarmPool, first_sched);
    PoolBook::Sample at_end = pools_book_.At(kWarmPool, run_end);
    int created_in_run = at_end.ready - at_start.ready + adopted;
    RefillResult refill = MeasureRefill(at_end, mem_reserve_kb);

    // Results.
    Stats warm = Summarize(warm_ms), warm_only = Summarize(warm_only_ms), cold = Summarize(cold_ms),
          rawp = Summarize(raw_ms), post = Summarize(post_ms), lag = Summarize(lag_ms),
          after_reply = Summarize(after_reply_ms);
    std::printf("warm claims    %d sent over %.1f s (send lag behind schedule p99 %.2f ms, max %.2f ms); "
                "POST p50 %.2f ms p99 %.2f ms\n",
                claims, Ms(first_sched, last_sent) / 1000, lag.p99, lag.max, post.p50, post.p99);
    std::printf("               %zu Ready: %d adopted a member, %d cold-started (no member adopted within the "
                "claim's warm wait; lowest readyReplicas during the run %d); %d not Ready within %d s; %d refused%s%s\n",
                warm.n, adopted, cold_fallback, pools_book_.MinReady(kWarmPool, first_sched, run_end), not_ready,
                o_.ready_timeout, failed, first_error.empty() ? "" : ": ", first_error.substr(0, 200).c_str());
    std::printf("               %s; sbxd CPU per claim %.2f ms\n", CpuText(run_cpu0, run_cpu1).c_str(),
                claims > 0 ? 1000.0 * static_cast<double>(run_cpu1.sbxd - run_cpu0.sbxd) /
                                 static_cast<double>(sysconf(_SC_CLK_TCK)) / claims
                           : 0.0);
    std::printf("claim->Ready   warm  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (all %zu Ready claims)\n",
                warm.p50, warm.p99, warm.max, warm.n);
    if (cold_fallback > 0) {
      std::printf("               adopted only  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n", warm_only.p50,
                  warm_only.p99, warm_only.max);
    }
    std::printf("               POST reply -> Ready event p50 %.2f ms p99 %.2f ms; by %d s window of send time:",
                after_reply.p50, after_reply.p99, kWindowS);
    for (size_t w = 0; w < by_window.size(); ++w) {
      if (by_window[w].empty()) continue;
      Stats ws = Summarize(by_window[w]);
      std::printf("%s %zu-%zu s p50 %.1f p99 %.1f", w ? " |" : "", w * kWindowS, (w + 1) * kWindowS, ws.p50, ws.p99);
    }
    std::printf("\n");
    std::printf("               cold  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (%zu sequential, pool with replicas 0)\n",
                cold.p50, cold.p99, cold.max, cold.n);
    std::printf("raw runsc      pod recipe (pause + container) create+start p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (%zu, interleaved with the cold claims)\n",
                rawp.p50, rawp.p99, rawp.max, rawp.n);
    if (rawp.n > 0) {
      std::printf("ratio          warm p50 / raw p50 %.4fx   cold p50 / raw p50 %.2fx\n", warm.p50 / rawp.p50,
                  cold.p50 / rawp.p50);
    }
    std::printf("refill         during the run %d members became Ready (readyReplicas %d -> %d of %d)\n",
                created_in_run, at_start.ready, at_end.ready, o_.pool);
    std::printf("               after the run: %s\n", refill.text.c_str());
    std::printf("upstream       reported on Kubernetes (PR #1251, 45 claims/s; not measured here): "
                "p50 92 ms, p99 376 ms\n");
    return all_ready && failed == 0 && not_ready == 0 ? 0 : 1;
  }

  // Deletes everything the run created and waits until no sandbox is left.
  void Cleanup() {
    Reply r;
    api_.Do("DELETE", std::string(kExt) + "sandboxwarmpools/" + kWarmPool, "", &r);
    api_.Do("DELETE", std::string(kExt) + "sandboxwarmpools/" + kColdPool, "", &r);
    if (api_.Do("GET", std::string(kExt) + "sandboxclaims", "", &r) && r.status == 200) {
      Json list = Json::parse(r.body, nullptr, false);
      if (!list.is_discarded()) {
        for (const auto& item : list.value("items", Json::array())) {
          Reply dr;
          api_.Do("DELETE", std::string(kExt) + "sandboxclaims/" + item["metadata"].value("name", ""), "", &dr);
        }
      }
    }
    api_.Do("DELETE", std::string(kExt) + "sandboxtemplates/" + kTemplate, "", &r);
    // Deleting the claims and pools deletes their sandboxes (the daemon
    // marks them for deletion, then tears their pods down). A sandbox still
    // unmarked after 30 s is deleted directly, so that none is left for the
    // harness's slow fallback (`runsc delete --force` per container after
    // sbxd is gone); then the bench waits as long as the teardown progresses.
    auto t0 = Clock::now();
    SandboxState st = Sandboxes();
    size_t first = st.count, direct = 0;
    while (!st.unmarked.empty() && Clock::now() - t0 < std::chrono::seconds(30)) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      st = Sandboxes();
    }
    for (const auto& name : st.unmarked) {
      api_.Do("DELETE", std::string(kSandboxes) + "/" + name, "", &r);
      ++direct;
    }
    size_t left = st.count;
    auto last_progress = Clock::now();
    while (left > 0 && Clock::now() - last_progress < std::chrono::seconds(60)) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      SandboxState now = Sandboxes();
      if (!now.ok) continue;
      if (now.count < left) last_progress = Clock::now();
      left = now.count;
    }
    if (first > 0) {
      std::printf("teardown       %zu sandboxes deleted in %.1f s (%.2f/s)", first - left, Ms(t0, Clock::now()) / 1000,
                  (first - left) / std::max(0.001, Ms(t0, Clock::now()) / 1000));
      if (direct > 0) std::printf("; %zu not marked for deletion 30 s after their claims and pools were deleted, deleted directly", direct);
      if (left > 0) std::printf("; %zu left for the daemon's shutdown to force-delete", left);
      std::printf("\n");
    }
    claims_watch_.Stop();
    pools_watch_.Stop();
    api_.Close();
    pid_max_.Restore();
  }

 private:
  struct RefillResult {
    std::string text;
  };

  bool Create(const std::string& resource, const std::string& body) {
    Reply r;
    if (!api_.Do("POST", std::string(kExt) + resource, body, &r) || r.status != 201) {
      std::fprintf(stderr, "claim_bench: POST %s: %d %s\n", resource.c_str(), r.status, r.body.c_str());
      return false;
    }
    return true;
  }

  struct SandboxState {
    bool ok = false;
    size_t count = 0;
    std::vector<std::string> unmarked;  // no deletionTimestamp yet
  };

  SandboxState Sandboxes() {
    SandboxState st;
    Reply r;
    if (!api_.Do("GET", kSandboxes, "", &r) || r.status != 200) return st;
    Json list = Json::parse(r.body, nullptr, false);
    if (list.is_discarded()) return st;
    st.ok = true;
    for (const auto& item : list.value("items", Json::array())) {
      ++st.count;
      if (!item["metadata"].contains("deletionTimestamp")) st.unmarked.push_back(item["metadata"].value("name", ""));
    }
    return st;
  }

  // Waits until the sandbox `name` no longer exists.
  bool WaitGone(const std::string& name, std::chrono::seconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      Reply r;
      if (!api_.Do("GET", std::string(kSandboxes) + "/" + name, "", &r) || r.status == 404) return true;
      if (g_stop || Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // Waits for the warm pool to be full, reporting progress; gives up when
  // host memory runs short or nothing progresses for two minutes.
  bool WaitFill(int n, long mem_reserve_kb) {
    int last_ready = -1;
    auto last_progress = Clock::now(), last_report = Clock::now();
    for (;;) {
      auto s = pools_book_.WaitReady(kWarmPool, n, Clock::now() + std::chrono::seconds(1));
      if (s.ready >= n) return true;
      if (g_stop) return false;
      auto now = Clock::now();
      if (s.ready != last_ready) {
        last_ready = s.ready;
        last_progress = now;
      }
      long avail = MemAvailableKb();
      if (now - last_report >= std::chrono::seconds(10)) {
        std::fprintf(stderr, "fill: readyReplicas %d/%d (replicas %d), MemAvailable %ld MB\n", s.ready, n,
                     s.replicas, avail / 1024);
        last_report = now;
      }
      if (avail < mem_reserve_kb) {
        std::fprintf(stderr, "claim_bench: MemAvailable %ld MB is below the reserve at %d members: stopping\n",
                     avail / 1024, s.ready);
        return false;
      }
      if (now - last_progress > std::chrono::seconds(120)) {
        std::fprintf(stderr, "claim_bench: the pool made no progress for 120 s (readyReplicas %d/%d)\n",
                     s.ready, n);
        return false;
      }
    }
  }

  bool ColdPhase(std::vector<double>* cold_ms, std::vector<double>* raw_ms) {
    std::vector<std::string> names;
    for (int i = 0; i < o_.cold && !g_stop; ++i) {
      std::string name = ClaimName("c", i);
      names.push_back(name);
      Reply r;
      Clock::time_point sent;
      if (!api_.Do("POST", std::string(kExt) + "sandboxclaims", ClaimBody(name, kColdPool), &r, &sent) ||
          r.status != 201) {
        std::fprintf(stderr, "claim_bench: cold claim %s: %d %s\n", name.c_str(), r.status, r.body.c_str());
        return false;
      }
      if (!claims_book_.WaitAll({name}, sent + std::chrono::seconds(o_.ready_timeout))) {
        std::fprintf(stderr, "claim_bench: cold claim %s not Ready within %d s\n", name.c_str(), o_.ready_timeout);
        return false;
      }
      cold_ms->push_back(Ms(sent, claims_book_.Get(name)->at));
      std::string pod = "raw-pod-" + std::to_string(100 + i), ctr = "raw-ctr-" + std::to_string(100 + i);
      double ms = 0;
      int rc = raw_.StartPod(pod, ctr, &ms);
      raw_.Delete(ctr);
      raw_.Delete(pod);
      if (rc != 0) {
        std::fprintf(stderr, "claim_bench: raw runsc pod create/start failed: %d\n", rc);
        return false;
      }
      raw_ms->push_back(ms);
    }
    // The warm run starts with only the pool's members running.
    for (const auto& name : names) {
      Reply r;
      api_.Do("DELETE", std::string(kExt) + "sandboxclaims/" + name, "", &r);
    }
    for (const auto& name : names) {
      if (!WaitGone(name, std::chrono::seconds(10))) {
        Reply r;
        api_.Do("DELETE", std::string(kSandboxes) + "/" + name, "", &r);
        WaitGone(name, std::chrono::seconds(60));
      }
    }
    return !g_stop;
  }

  // Sends claim i at first + i/rate, over several connections so that one
  // slow reply does not hold back the claims behind it.
  std::vector<Sent> SendWarm(const std::vector<std::string>& names, Clock::time_point* first) {
    std::vector<Sent> sent(names.size());
    std::vector<std::string> bodies;
    for (const auto& n : names) bodies.push_back(ClaimBody(n, kWarmPool));
    std::vector<std::unique_ptr<HttpConn>> conns;
    for (int i = 0; i < o_.connections; ++i) {
      conns.push_back(std::make_unique<HttpConn>(d_.socket()));
      conns.back()->Open();
    }
    const auto interval = std::chrono::duration<double>(1.0 / o_.rate);
    *first = Clock::now() + std::chrono::milliseconds(200);
    std::atomic<size_t> next{0};
    std::vector<std::thread> senders;
    for (auto& conn : conns) {
      senders.emplace_back([&, c = conn.get()] {
        RaiseThreadPriority();
        for (size_t i; !g_stop && (i = next.fetch_add(1)) < names.size();) {
          Sent& s = sent[i];
          s.sched = *first + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
          std::this_thread::sleep_until(s.sched);
          Reply r;
          if (c->Do("POST", std::string(kExt) + "sandboxclaims", bodies[i], &r, &s.sent)) {
            s.status = r.status;
            if (r.status != 201) s.error = r.body;
          } else {
            s.sent = Clock::now();
            s.error = "connection failed";
          }
          s.replied = Clock::now();
        }
      });
    }
    for (auto& t : senders) t.join();
    return sent;
  }

  // From the end of the warm run until readyReplicas is back to the pool's
  // size, unless host memory (the claimed members still run) or the time
  // limit ends it first.
  RefillResult MeasureRefill(PoolBook::Sample at_end, long mem_reserve_kb) {
    char text[512];
    RefillResult out;
    if (at_end.ready >= o_.pool) {
      out.text = "the pool was still full at the end of the run (refill kept up)";
      return out;
    }
    if (o_.refill_seconds <= 0) {
      out.text = "not measured (--refill-seconds 0)";
      return out;
    }
    long fit = (MemAvailableKb() - mem_reserve_kb) / member_kb_;
    int target = static_cast<int>(std::min<long>(o_.pool, at_end.ready + std::max(0L, fit)));
    if (target <= at_end.ready) {
      std::snprintf(text, sizeof(text),
                    "not measured: readyReplicas %d of %d, and host memory leaves room for no more members",
                    at_end.ready, o_.pool);
      out.text = text;
      return out;
    }
    auto deadline = at_end.at + std::chrono::seconds(o_.refill_seconds);
    PoolBook::Sample s = pools_book_.WaitReady(kWarmPool, target, deadline);
    double secs = Ms(at_end.at, s.at) / 1000;
    int added = s.ready - at_end.ready;
    const char* why = s.ready >= o_.pool   ? "back to the pool's size"
                      : s.ready >= target  ? "stopped there: host memory leaves room for no more"
                      : g_stop             ? "interrupted"
                                           : "stopped by --refill-seconds";
    std::snprintf(text, sizeof(text), "readyReplicas %d -> %d of %d in %.1f s: %.2f members/s (%s)", at_end.ready,
                  s.ready, o_.pool, secs, secs > 0 ? added / secs : 0.0, why);
    out.text = text;
    return out;
  }

  const Options& o_;
  const Daemon& d_;
  const RawRunsc& raw_;
  HttpConn api_;
  ClaimBook claims_book_;
  PoolBook pools_book_;
  Watch claims_watch_;
  Watch pools_watch_;
  PidMax pid_max_;
  long member_kb_ = kMemberKbPrior;
};

// Processes and mounts of the run's directory that outlived it.
void ReportLeftovers(const std::string& dir) {
  std::vector<int> pids = TaggedPids(dir);
  std::string mounts = ReadSmall("/proc/self/mountinfo");
  size_t mount_count = 0;
  for (size_t p = mounts.find(dir); p != std::string::npos; p = mounts.find(dir, p + 1)) ++mount_count;
  if (!pids.empty() || mount_count > 0) {
    std::fprintf(stderr, "claim_bench: left behind: %zu processes, %zu mounts under %s\n", pids.size(),
                 mount_count, dir.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseFlags(argc, argv);
  if (geteuid() != 0) {
    std::fprintf(stderr, "claim_bench needs root and runsc\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto d = std::make_unique<Daemon>();
  const std::string dir = d->dir();
  std::string flags = "--log-level=warning --platform=" + o.platform;
  for (const auto& f : o.sbxd_flags) flags += " " + f;
  if (!d->Start(flags)) {
    std::fprintf(stderr, "sbxd did not start:\n%s\n", d->log().c_str());
    return 1;
  }
  if (!d->ImportBusybox(kImage)) return 1;
  RawRunsc raw;
  if (!raw.Prepare(*d, "sleep 100000")) return 1;

  int rc;
  {
    Bench bench(o, *d, raw);
    rc = bench.Run();
    bench.Cleanup();
  }
  raw.DeleteAll();
  if (rc != 0) {
    std::string log = d->log();
    std::fprintf(stderr, "sbxd log (tail):\n%s\n", log.substr(log.size() > 4000 ? log.size() - 4000 : 0).c_str());
  }
  d.reset();
  ReportLeftovers(dir);
  return rc;
}
