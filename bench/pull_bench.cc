// Pull benchmark: pull + unpack of one multi-layer image from a registry on
// loopback by sbx (ImagePuller into an ImageStore) against `skopeo copy` into
// an OCI layout + `umoci unpack` into a bundle, measured in the same run.
// See kUsage for the image, the scenarios and what is timed.
//
// Needs root (umoci unpacks as root), docker-registry, skopeo and umoci.
// Everything lives in temporary directories that are removed at exit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "bench/bench_util.h"
#include "common/fs.h"
#include "common/log.h"
#include "oci/image_puller.h"
#include "oci/image_store.h"
#include "oci/registry_client.h"
#include "tests/integration/harness.h"
#include "tests/oci/image_test_util.h"
#include "tests/oci/registry_fixture.h"

extern char** environ;

using sbx::bench::Clock;
using sbx::bench::Ms;
using sbx::bench::Percentile;
using sbx::oci::ImagePuller;
using sbx::oci::ImageRecord;
using sbx::oci::ImageStore;
using sbx::oci::PullProgress;
using sbx::oci::RegistryClient;
using sbx::oci::RegistrySettings;
using sbx::oci::testing::Compression;
using sbx::oci::testing::TarEntry;
using sbx::oci::testing::TestImage;
using sbx::oci::testing::TestRegistry;

namespace {

const char kUsage[] = R"(usage: pull_bench [--runs N] [--dir DIR]

Pull + unpack of the same image from a local registry (docker-registry on
127.0.0.1, plain HTTP, its storage under /tmp):

  sbx       ImagePuller::Pull into an ImageStore (layers downloaded 4 at a
            time, digests verified, unpacked into the store's rootfs/)
  baseline  skopeo copy docker://... oci:<layout>:<tag>, then
            umoci unpack --image <layout>:<tag> <bundle>

The image: 6 gzip layers, ~150 MB uncompressed: ~8000 small text files
(1-16 KB, compressible) and 11 large random files (2-12 MB,
incompressible), a few files replaced by upper layers and one whiteout.

Scenarios, each repeated --runs times, sbx and the baseline alternately (the
side that goes first alternates too); `sync` before every timed step:

  cold  empty store / no layout, fresh bundle: everything is downloaded
  warm  the layers are already local: sbx's store holds bench/app:1, the
        layout holds app; both then pull bench/app2:1, the same layers under
        another config, so only the manifest and config travel and a new
        root file system is unpacked. Between runs app2 is removed again
        (sbx: ImageStore::Remove; baseline: umoci rm + umoci gc), untimed.

Where the store, layouts and bundles live (--dir): tmpfs by default, so the
runs measure the tools rather than the disk. On ext4 without a journal (the
root file system of the VMs this was written on) new inodes skip those freed
in the last 60 s (300 s while their inode table block is dirty), so an unpack
right after the previous run's 8000 files were removed costs 4-5x more in
the kernel, by an amount that depends on the order of the steps; and with
`discard`, removing files that were written back takes ~30 s per tree.

Flags:
  --runs N   repetitions per scenario (default 5)
  --dir DIR  parent of the bench's working directory (default /dev/shm)
  --help     this text
)";

struct Options {
  int runs = 5;
  std::string dir = "/dev/shm";
};

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
    }
    if (v.empty()) {
      std::fprintf(stderr, "pull_bench: %s needs a value (see --help)\n", a.c_str());
      std::exit(2);
    }
    if (a == "--dir") {
      o.dir = v;
    } else if (a == "--runs") {
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1) {
        std::fprintf(stderr, "pull_bench: --runs: want a number >= 1, not \"%s\"\n", v.c_str());
        std::exit(2);
      }
      o.runs = static_cast<int>(n);
    } else {
      std::fprintf(stderr, "pull_bench: unknown flag %s (see --help)\n", a.c_str());
      std::exit(2);
    }
  }
  return o;
}

// The registry fixture reports problems as gtest failures; outside a test
// gtest prints them and records them in the ad hoc test result.
bool FixtureFailed() { return testing::UnitTest::GetInstance()->ad_hoc_test_result().Failed(); }

Clock::time_point g_start = Clock::now();
// Progress on stderr, after the seconds since the start.
__attribute__((format(printf, 1, 2))) void Progress(const char* format, ...) {
  char line[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  std::fprintf(stderr, "pull_bench: %6.1f s  %s\n", Ms(g_start, Clock::now()) / 1000, line);
}

// Runs argv without a shell, with this process's environment where
// `extra_env` ("NAME=value") overrides it, stdout and stderr into `log`; the
// exit code, 128 + signal, or -1 if it could not be spawned.
int RunLogged(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
              const std::string& log) {
  std::vector<char*> envp;
  for (const auto& e : extra_env) envp.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var(*e);
    bool overridden = std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) {
      return var.substr(0, var.find('=') + 1) == std::string_view(x).substr(0, x.find('=') + 1);
    });
    if (!overridden) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string Joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// ---- the image ----

// Deterministic content: text from a small vocabulary (gzip gets ~3x, like
// source, docs and scripts) and random bytes (like compressed assets and
// stripped binaries, which gzip cannot shrink).
class Content {
 public:
  explicit Content(unsigned seed) : gen_(seed) {
    std::uniform_int_distribution<int> len(2, 10), letter('a', 'z');
    for (int i = 0; i < 800; ++i) {
      std::string w;
      for (int n = len(gen_); n > 0; --n) w += static_cast<char>(letter(gen_));
      words_.push_back(w);
    }
  }

  std::string Text(size_t n) {
    std::string s;
    s.reserve(n + 16);
    std::uniform_int_distribution<size_t> pick(0, words_.size() - 1);
    std::uniform_int_distribution<int> line(6, 14);
    while (s.size() < n) {
      for (int k = line(gen_); k > 0 && s.size() < n; --k) {
        s += words_[pick(gen_)];
        s += ' ';
      }
      s += '\n';
    }
    s.resize(n);
    return s;
  }

  std::string Random(size_t n) {
    std::string s(n, '\0');
    std::mt19937_64 g(gen_());
    for (size_t i = 0; i + 8 <= n; i += 8) {
      uint64_t v = g();
      std::memcpy(&s[i], &v, 8);
    }
    return s;
  }

  size_t SmallSize() { return std::uniform_int_distribution<size_t>(1024, 16 * 1024)(gen_); }

 private:
  std::mt19937 gen_;
  std::vector<std::string> words_;
};

// One layer's entries, with a directory entry before the first file in it
// (as image builders write them).
class LayerBuilder {
 public:
  void AddFile(const std::string& path, std::string data, int mode = 0644) {
    AddParents(path);
    entries_.push_back(sbx::oci::testing::File(path, std::move(data), mode));
  }
  void AddSymlink(const std::string& path, const std::string& target) {
    AddParents(path);
    entries_.push_back(sbx::oci::testing::Symlink(path, target));
  }
  // `count` text files of 1-16 KB spread over directories under `root`.
  void AddSmallFiles(Content& c, const std::string& root, int count) {
    for (int i = 0; i < count; ++i) {
      std::string dir = root + "/pkg" + std::to_string(i / 40) + "/" + (i % 3 == 0 ? "doc" : "lib");
      AddFile(dir + "/file" + std::to_string(i) + (i % 5 == 0 ? ".py" : ".txt"),
              c.Text(c.SmallSize()), i % 7 == 0 ? 0755 : 0644);
    }
  }
  std::vector<TarEntry> Take() { return std::move(entries_); }

 private:
  void AddParents(const std::string& path) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string dir = path.substr(0, slash);
      if (dirs_.insert(dir).second) entries_.push_back(sbx::oci::testing::Dir(dir));
    }
  }
  std::set<std::string> dirs_;
  std::vector<TarEntry> entries_;
};

struct BenchImage {
  std::vector<sbx::oci::testing::TestLayer> layers;
  int64_t tar_bytes = 0;   // uncompressed layer tars
  int64_t blob_bytes = 0;  // gzip blobs
};

BenchImage MakeImage() {
  Content c(20240601);
  constexpr size_t kMb = 1 << 20;
  std::vector<std::vector<TarEntry>> layers;
  {  // a base system: many small files, a few binaries
    LayerBuilder b;
    b.AddSmallFiles(c, "usr/share", 2500);
    b.AddFile("usr/bin/busybox", c.Random(2 * kMb), 0755);
    b.AddSymlink("bin", "usr/bin");
    layers.push_back(b.Take());
  }
  {  // runtime libraries: large incompressible files
    LayerBuilder b;
    for (int i = 0; i < 4; ++i) {
      b.AddFile("usr/lib/libbig" + std::to_string(i) + ".so", c.Random(8 * kMb), 0755);
    }
    b.AddSmallFiles(c, "usr/lib/python3", 500);
    layers.push_back(b.Take());
  }
  {  // a language's packages
    LayerBuilder b;
    b.AddSmallFiles(c, "usr/local/lib/node_modules", 2500);
    layers.push_back(b.Take());
  }
  {  // data and models
    LayerBuilder b;
    for (int i = 0; i < 3; ++i) {
      b.AddFile("opt/data/blob" + std::to_string(i) + ".bin", c.Random(6 * kMb));
    }
    b.AddSmallFiles(c, "opt/data/meta", 300);
    layers.push_back(b.Take());
  }
  {  // the application
    LayerBuilder b;
    b.AddSmallFiles(c, "app/src", 2000);
    b.AddFile("app/bin/server", c.Random(12 * kMb), 0755);
    layers.push_back(b.Take());
  }
  {  // a top layer: more large files, replaced files and a deletion
    LayerBuilder b;
    for (int i = 0; i < 2; ++i) {
      b.AddFile("app/assets/bundle" + std::to_string(i) + ".bin", c.Random(10 * kMb));
    }
    b.AddSmallFiles(c, "app/static", 200);
    // 20 of layer 1's usr/share/pkg0/lib/*.txt (AddSmallFiles' naming).
    for (int i = 1, n = 0; n < 20; ++i) {
      if (i % 3 == 0 || i % 5 == 0) continue;
      b.AddFile("usr/share/pkg0/lib/file" + std::to_string(i) + ".txt", c.Text(4096));
      ++n;
    }
    b.AddFile("usr/local/lib/node_modules/pkg0/lib/.wh.file1.txt", "");
    layers.push_back(b.Take());
  }
  // gzip is the slow part: one layer per task.
  std::vector<std::future<std::pair<int64_t, sbx::oci::testing::TestLayer>>> tasks;
  for (const auto& entries : layers) {
    tasks.push_back(std::async(std::launch::async, [&entries] {
      auto tar_bytes = static_cast<int64_t>(sbx::oci::testing::MakeTar(entries).size());
      return std::pair(tar_bytes, sbx::oci::testing::MakeLayer(entries, Compression::kGzip));
    }));
  }
  BenchImage image;
  for (auto& task : tasks) {
    auto [tar_bytes, layer] = task.get();
    image.tar_bytes += tar_bytes;
    image.blob_bytes += static_cast<int64_t>(layer.blob.size());
    image.layers.push_back(std::move(layer));
  }
  return image;
}

// ---- measuring ----

struct TreeStats {
  int64_t files = 0, dirs = 0, symlinks = 0, other = 0, bytes = 0;
  bool operator==(const TreeStats&) const = default;
};

TreeStats Walk(const std::string& root) {
  namespace fs = std::filesystem;
  TreeStats s;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    fs::file_status st = it->symlink_status(ec);
    if (fs::is_symlink(st)) {
      ++s.symlinks;
    } else if (fs::is_regular_file(st)) {
      ++s.files;
      s.bytes += static_cast<int64_t>(it->file_size(ec));
    } else if (fs::is_directory(st)) {
      ++s.dirs;
    } else {
      ++s.other;
    }
  }
  if (ec) std::fprintf(stderr, "walk %s: %s\n", root.c_str(), ec.message().c_str());
  return s;
}

void PrintStats(const char* who, const TreeStats& s) {
  std::printf("  %-14s %6lld files  %8.1f MB  %5lld dirs  %lld symlinks  %lld other\n", who,
              static_cast<long long>(s.files), static_cast<double>(s.bytes) / (1 << 20),
              static_cast<long long>(s.dirs), static_cast<long long>(s.symlinks),
              static_cast<long long>(s.other));
}

// One timed run split into two phases: sbx download (resolve + layers) and
// unpack; baseline skopeo copy and umoci unpack.
struct Sample {
  double total = 0, fetch = 0, unpack = 0;
};

struct Series {
  std::vector<Sample> samples;
  std::vector<double> Get(double Sample::*field) const {
    std::vector<double> v;
    for (const Sample& s : samples) v.push_back(s.*field);
    return v;
  }
  double P50(double Sample::*f = &Sample::total) const { return Percentile(Get(f), 0.5); }
  double Min(double Sample::*f = &Sample::total) const {
    auto v = Get(f);
    return *std::min_element(v.begin(), v.end());
  }
};

// Times one ImagePuller::Pull of `ref` into `store` with a fresh client (no
// connection kept from an earlier pull, like a new skopeo process).
std::optional<Sample> TimeSbxPull(ImageStore& store, const std::string& host,
                                  const std::string& ref, ImageRecord* record) {
  RegistrySettings settings;
  settings.hosts[host].plain_http = true;
  RegistryClient client(settings, nullptr);
  ImagePuller puller(store, client);
  std::mutex mu;
  std::map<PullProgress::Phase, Clock::time_point> first_seen;
  auto observe = [&](const PullProgress& p) {
    std::lock_guard<std::mutex> l(mu);
    first_seen.emplace(p.phase, Clock::now());
  };
  ::sync();
  auto t0 = Clock::now();
  auto result = puller.Pull(ref, observe);
  auto t1 = Clock::now();
  if (!result.ok()) {
    std::fprintf(stderr, "sbx pull %s: %s\n", ref.c_str(), result.status().ToString().c_str());
    return std::nullopt;
  }
  if (record) *record = *result;
  std::lock_guard<std::mutex> l(mu);
  auto unpacking = first_seen.find(PullProgress::Phase::kUnpacking);
  Clock::time_point split = unpacking == first_seen.end() ? t1 : unpacking->second;
  return Sample{Ms(t0, t1), Ms(t0, split), Ms(split, t1)};
}

class Baseline {
 public:
  // skopeo reads `registries_conf` and `auth_file` instead of the host's
  // registries.conf and auth.json. (Not set in this process: docker-registry
  // would take REGISTRY_AUTH_FILE as its auth configuration.)
  Baseline(std::string host, const std::string& registries_conf, const std::string& auth_file,
           std::string log)
      : host_(std::move(host)),
        env_{"CONTAINERS_REGISTRIES_CONF=" + registries_conf, "REGISTRY_AUTH_FILE=" + auth_file},
        log_(std::move(log)) {}

  // Times skopeo copy + umoci unpack into `bundle`.
  std::optional<Sample> Time(const std::string& repo_tag, const std::string& layout,
                             const std::string& name, const std::string& bundle) {
    ::sync();
    auto t0 = Clock::now();
    if (!Ok(CopyArgs(repo_tag, layout, name))) return std::nullopt;
    auto t1 = Clock::now();
    if (!Ok({"umoci", "unpack", "--image", layout + ":" + name, bundle})) return std::nullopt;
    auto t2 = Clock::now();
    return Sample{Ms(t0, t2), Ms(t0, t1), Ms(t1, t2)};
  }

  // Drops `name` and the blobs only it used from the layout.
  bool Forget(const std::string& layout, const std::string& name) {
    return Ok({"umoci", "rm", "--image", layout + ":" + name}) &&
           Ok({"umoci", "gc", "--layout", layout});
  }

 private:
  std::vector<std::string> CopyArgs(const std::string& repo_tag, const std::string& layout,
                                    const std::string& name) const {
    std::vector<std::string> args = {"skopeo", "--insecure-policy", "copy", "--quiet",
                                     "--src-tls-verify=false"};
    args.push_back("docker://" + host_ + "/" + repo_tag);
    args.push_back("oci:" + layout + ":" + name);
    return args;
  }
  bool Ok(const std::vector<std::string>& args) const {
    int rc = RunLogged(args, env_, log_);
    if (rc == 0) return true;
    auto text = sbx::ReadFile(log_);
    std::fprintf(stderr, "%s: exit %d\n%s\n", Joined(args).c_str(), rc,
                 text.ok() ? text->c_str() : "");
    return false;
  }

  std::string host_;
  std::vector<std::string> env_;
  std::string log_;
};

void Remove(const std::string& path) {
  if (auto s = sbx::RemoveAll(path); !s.ok()) std::fprintf(stderr, "%s\n", s.ToString().c_str());
}

// A private directory under `parent`, removed with everything in it.
class WorkDir {
 public:
  explicit WorkDir(const std::string& parent) {
    std::string pattern = parent + "/sbx-pull-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror(("pull_bench: mkdtemp " + pattern).c_str());
      std::exit(1);
    }
    path_ = pattern;
  }
  ~WorkDir() { Remove(path_); }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string FirstLine(const std::string& cmd) {
  std::string out = sbx::testing::Sh(cmd).out;
  return out.substr(0, out.find('\n'));
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = ParseFlags(argc, argv);
  if (geteuid() != 0) {
    std::fprintf(
        stderr,
        "pull_bench needs root (umoci unpacks as root), docker-registry, skopeo and umoci\n");
    return 2;
  }
  auto t_start = Clock::now();
  sbx::log::SetLevel(sbx::log::Level::kWarning);  // as sbxd runs in the other benches
  WorkDir tmp(opt.dir);
  sbx::oci::testing::WriteBytes(tmp.Sub("registries.conf"), "");

  auto t_build = Clock::now();
  BenchImage built = MakeImage();
  TestImage app;
  app.layers = built.layers;
  app.config = {
      {"Cmd", {"/app/bin/server"}}, {"Env", {"PATH=/usr/bin:/bin"}}, {"WorkingDir", "/app"}};
  app.name = "bench/app:1";
  TestImage app2 = app;
  app2.config["Cmd"] = {"/app/bin/server", "--worker"};
  app2.name = "bench/app2:1";
  sbx::oci::testing::WriteOciLayout(tmp.Sub("src-app"), app);
  sbx::oci::testing::WriteOciLayout(tmp.Sub("src-app2"), app2);
  built.layers.clear();
  app.layers.clear();
  app2.layers.clear();
  double build_ms = Ms(t_build, Clock::now());

  TestRegistry reg;
  if (FixtureFailed()) return 1;
  reg.Push(tmp.Sub("src-app"), "bench/app:1");
  reg.Push(tmp.Sub("src-app2"), "bench/app2:1");
  if (FixtureFailed()) return 1;
  Remove(tmp.Sub("src-app"));
  Remove(tmp.Sub("src-app2"));
  const std::string host = reg.host();
  const std::string app_ref = host + "/bench/app:1";
  const std::string app2_ref = host + "/bench/app2:1";

  std::printf("pull_bench: %ld CPUs; %d runs per scenario; %s; %s\n", sysconf(_SC_NPROCESSORS_ONLN),
              opt.runs, FirstLine("skopeo --version").c_str(),
              FirstLine("umoci --version").c_str());
  std::printf(
      "image: 6 gzip layers, %.1f MB of layer tars, %.1f MB of blobs (built in %.1f s); "
      "registry %s (docker-registry, plain HTTP); all on %s\n",
      static_cast<double>(built.tar_bytes) / (1 << 20),
      static_cast<double>(built.blob_bytes) / (1 << 20), build_ms / 1000, host.c_str(),
      FirstLine("df --output=fstype " + tmp.path() + " | tail -1").c_str());
  std::printf(
      "measured: pull + unpack, sbx ImagePuller (download | unpack) vs skopeo copy + umoci "
      "unpack (copy | unpack)\n\n");
  std::fflush(stdout);  // before the progress lines on stderr

  Baseline baseline(host, tmp.Sub("registries.conf"), tmp.Sub("auth.json"), tmp.Sub("tool.log"));
  Series cold_sbx, cold_base, warm_sbx, warm_base;
  std::optional<TreeStats> sbx_tree, base_tree;

  // 1. cold. The last run's store and layout stay: they hold app:1's layers
  // for the warm runs.
  const std::string sbx_dir = tmp.Sub("sbx-store"), layout = tmp.Sub("oci-layout");
  std::unique_ptr<ImageStore> store;
  for (int i = 0; i < opt.runs; ++i) {
    bool last = i + 1 == opt.runs;
    for (int side = 0; side < 2; ++side) {
      if ((side == 0) == (i % 2 == 0)) {
        auto opened = ImageStore::Open(sbx_dir);
        if (!opened.ok()) {
          std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
          return 1;
        }
        store = std::move(*opened);
        ImageRecord record;
        auto s = TimeSbxPull(*store, host, app_ref, &record);
        if (!s) return 1;
        cold_sbx.samples.push_back(*s);
        if (!sbx_tree) sbx_tree = Walk(record.rootfs_dir);
        if (!last) {
          store.reset();
          Remove(sbx_dir);
        }
      } else {
        std::string bundle = tmp.Sub("bundle");
        auto s = baseline.Time("bench/app:1", layout, "app", bundle);
        if (!s) return 1;
        cold_base.samples.push_back(*s);
        if (!base_tree) base_tree = Walk(bundle + "/rootfs");
        Remove(bundle);
        if (!last) Remove(layout);
      }
    }
    Progress("cold %d/%d: sbx %.2f s, skopeo+umoci %.2f s", i + 1, opt.runs,
             cold_sbx.samples.back().total / 1000, cold_base.samples.back().total / 1000);
  }

  // 2. warm: the store and the layout hold app:1; app2:1 has the same layers
  // under another config, so only its manifest and config travel and a new
  // root file system is unpacked. app2 is dropped again after each run.
  std::optional<TreeStats> sbx_tree2, base_tree2;
  for (int i = 0; i < opt.runs; ++i) {
    for (int side = 0; side < 2; ++side) {
      if ((side == 0) == (i % 2 == 0)) {
        ImageRecord record;
        auto s = TimeSbxPull(*store, host, app2_ref, &record);
        if (!s) return 1;
        warm_sbx.samples.push_back(*s);
        if (!sbx_tree2) sbx_tree2 = Walk(record.rootfs_dir);
        if (auto st = store->Remove(app2_ref); !st.ok()) {
          std::fprintf(stderr, "remove %s: %s\n", app2_ref.c_str(), st.ToString().c_str());
          return 1;
        }
      } else {
        std::string bundle = tmp.Sub("bundle");
        auto s = baseline.Time("bench/app2:1", layout, "app2", bundle);
        if (!s) return 1;
        warm_base.samples.push_back(*s);
        if (!base_tree2) base_tree2 = Walk(bundle + "/rootfs");
        Remove(bundle);
        if (!baseline.Forget(layout, "app2")) return 1;
      }
    }
    Progress("warm %d/%d: sbx %.2f s, skopeo+umoci %.2f s", i + 1, opt.runs,
             warm_sbx.samples.back().total / 1000, warm_base.samples.back().total / 1000);
  }
  store.reset();

  std::printf("root file systems (regular files, their bytes):\n");
  PrintStats("sbx cold", *sbx_tree);
  PrintStats("umoci cold", *base_tree);
  PrintStats("sbx warm", *sbx_tree2);
  PrintStats("umoci warm", *base_tree2);
  // The store adds the mount points runsc needs (proc sys dev tmp etc) where
  // the image has none; everything else must match.
  bool same = sbx_tree->files == base_tree->files && sbx_tree->bytes == base_tree->bytes &&
              sbx_tree->symlinks == base_tree->symlinks && sbx_tree->other == base_tree->other &&
              *sbx_tree == *sbx_tree2 && *base_tree == *base_tree2;
  std::printf(
      "  %s (sbx adds %lld mount-point dirs: proc sys dev tmp etc)\n\n",
      same ? "same file count and bytes on both sides" : "MISMATCH between sbx and skopeo+umoci",
      static_cast<long long>(sbx_tree->dirs - base_tree->dirs));

  std::printf("%-5s %-13s %9s %9s   %-38s\n", "", "", "p50 ms", "min ms", "phases p50 ms");
  auto row = [](const char* scenario, const char* tool, const Series& s, const char* fetch,
                const char* unpack) {
    std::printf("%-5s %-13s %9.1f %9.1f   %s %8.1f | %s %8.1f\n", scenario, tool, s.P50(), s.Min(),
                fetch, s.P50(&Sample::fetch), unpack, s.P50(&Sample::unpack));
  };
  row("cold", "sbx", cold_sbx, "download   ", "unpack");
  row("cold", "skopeo+umoci", cold_base, "skopeo copy", "umoci unpack");
  row("warm", "sbx", warm_sbx, "download   ", "unpack");
  row("warm", "skopeo+umoci", warm_base, "skopeo copy", "umoci unpack");
  std::printf("\n");
  for (auto [name, a, b] :
       {std::tuple{"cold", &cold_sbx, &cold_base}, std::tuple{"warm", &warm_sbx, &warm_base}}) {
    std::printf(
        "%s: sbx p50 %.1f ms, skopeo+umoci p50 %.1f ms, ratio %.2f (sbx/baseline; min %.2f)\n",
        name, a->P50(), b->P50(), a->P50() / b->P50(), a->Min() / b->Min());
  }
  std::printf("(whole bench: %.0f s)\n", Ms(t_start, Clock::now()) / 1000);
  return same ? 0 : 1;
}
