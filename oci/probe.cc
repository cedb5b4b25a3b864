#include "oci/probe.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <thread>

#include "common/fs.h"
#include "common/log.h"
#include "common/random.h"
#include "common/strings.h"
#include "oci/bundle.h"
#include "oci/runsc.h"

namespace sbx::oci {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kQueryTimeout(10000);
constexpr milliseconds kCleanupTimeout(5000);
constexpr int kLeaveRunningInPlaceSince = 20240415;
constexpr int kNetnsCheckFixedIn = 20240807;

// What makes a cached result valid for this host and binary.
Result<Json> CacheKey(const std::string& binary, const std::string& requested) {
  struct stat st;
  if (::stat(binary.c_str(), &st) != 0) return ErrnoStatus("stat " + binary, errno);
  struct utsname uts;
  std::string kernel = ::uname(&uts) == 0 ? uts.release : "";
  return Json{
      {"binary", binary},
      {"size", static_cast<int64_t>(st.st_size)},
      {"mtimeNs", static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec},
      {"requestedPlatform", requested},
      {"kernel", kernel},
      {"devKvm", PathExists("/dev/kvm")},
  };
}

Result<RunscCapabilities> ReadCache(const std::string& cache_path, const Json& key) {
  SBX_ASSIGN_OR_RETURN(std::string text, ReadFile(cache_path));
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("key") || j["key"] != key || !j.contains("capabilities")) {
    return NotFound("runsc probe cache " + cache_path + ": stale");
  }
  return RunscCapabilities::FromJson(j["capabilities"]);
}

// Does a fresh network namespace expose net.core.rmem_default? Asked in a
// child (`unshare --net`) so this process's namespaces stay untouched. When
// that cannot be run (no privilege), assume yes: the workaround is harmless
// where it is not needed.
bool FreshNetnsHasRmemDefault(CommandRunner& runner) {
  CommandSpec spec;
  spec.argv = {"unshare", "--net", "test", "-e", "/proc/sys/net/core/rmem_default"};
  spec.timeout = kQueryTimeout;
  Result<CommandResult> r = runner.Run(spec);
  if (r.ok() && r->exit_code == 1) return false;
  if (r.ok() && r->exit_code == 0) return true;
  SBX_LOG(kWarning) << "runsc probe: cannot check a fresh netns for rmem_default; assuming the "
                       "runsc netns defect applies";
  return true;
}

bool ArgvHas(pid_t pid, const std::string& arg) {
  Result<std::string> cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline.ok()) return false;
  for (const std::string& a : Split(*cmdline, '\0')) {
    if (a == arg) return true;
  }
  return false;
}

bool AliveNotZombie(pid_t pid) {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] != 'Z';
}

// SIGKILLs every process whose argv contains exactly `marker` (the probe's
// private --root=<dir>, which nothing else can carry) and waits until they
// are gone or zombies (reaped by whoever is their reaper).
void KillProcessesWithArg(const std::string& marker) {
  std::vector<pid_t> killed;
  Result<std::vector<std::string>> entries = ListDir("/proc");
  if (!entries.ok()) return;
  const pid_t self = ::getpid();
  for (const std::string& name : *entries) {
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    if (pid == self || !ArgvHas(pid, marker)) continue;
    SBX_LOG(kWarning) << "runsc probe: killing leftover process " << pid;
    ::kill(pid, SIGKILL);
    killed.push_back(pid);
  }
  for (int i = 0; i < 200; ++i) {
    bool any = false;
    for (pid_t pid : killed) any = any || AliveNotZombie(pid);
    if (!any) return;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

// A bundle that runs the host's /bin/true on a read-only host root: it needs
// no image and writes nothing.
Status WriteProbeBundle(const std::string& bundle_dir) {
  BundleSpec spec;
  spec.rootfs = "/";
  spec.args = {"/bin/true"};
  spec.env = {kDefaultPathEnv};
  Json j = BuildRuntimeSpec(spec);
  j["root"]["readonly"] = true;
  SBX_RETURN_IF_ERROR(MakeDirs(bundle_dir, 0700));
  return WriteFileAtomic(JoinPath(bundle_dir, "config.json"), j.dump(2), 0600);
}

// Boots /bin/true on `platform`. OK if it ran and exited 0; otherwise the
// reason. Leaves nothing behind either way.
Status BootTest(CommandRunner& runner, const std::string& binary, const std::string& platform,
                const std::string& work_dir, milliseconds timeout) {
  const std::string dir = JoinPath(work_dir, "probe-" + platform + "-" + RandomHex(4));
  const std::string root = JoinPath(dir, "root");
  const std::string bundle = JoinPath(dir, "bundle");
  const std::string pid_file = JoinPath(dir, "sandbox.pid");
  SBX_RETURN_IF_ERROR(MakeDirs(root, 0700));
  Status result = WriteProbeBundle(bundle);

  RunscConfig config;
  config.binary = binary;
  config.root = root;
  config.platform = platform;
  config.network = "none";
  config.overlay2 = "none";      // nothing is written; no filestore next to the host root
  config.ignore_cgroups = true;  // nothing to leak in the cgroup tree on a timeout
  RunscClient client(config);
  const std::string id = "sbx-probe-" + platform;

  bool clean = false;
  if (result.ok()) {
    CommandSpec spec;
    spec.argv = client.Run(id, bundle, pid_file);
    spec.timeout = timeout;
    Result<CommandResult> r = runner.Run(spec);
    if (!r.ok()) {
      result = r.status();
    } else if (r->timed_out) {
      result = Unavailable("timed out after " + std::to_string(timeout.count()) + " ms");
    } else if (!r->ok()) {
      Result<std::string> log = ReadFile(RunscClient::ErrorLogPath(bundle));
      result = RunscClient::CommandError("run", *r, log.ok() ? *log : "");
    } else {
      clean = true;  // `runsc run` destroyed its container when /bin/true exited
    }
  }
  if (!clean) {
    CommandSpec del;
    del.argv = client.Delete(id, /*force=*/true);
    del.timeout = kCleanupTimeout;
    (void)runner.Run(del);
    if (Result<std::string> pid_text = ReadFile(pid_file); pid_text.ok()) {
      pid_t pid = static_cast<pid_t>(std::atoi(pid_text->c_str()));
      if (pid > 0 && ArgvHas(pid, "--root=" + root)) ::kill(pid, SIGKILL);
    }
    // The gofer's pid is in no file we can rely on mid-create; the private
    // --root identifies it and the sandbox.
    KillProcessesWithArg("--root=" + root);
  }
  if (Status s = RemoveAll(dir); !s.ok()) {
    SBX_LOG(kWarning) << "runsc probe: " << s.ToString();
  }
  return result;
}

Result<std::string> RunQuery(CommandRunner& runner, const std::vector<std::string>& argv,
                             std::string_view verb, bool want_stderr) {
  CommandSpec spec;
  spec.argv = argv;
  spec.timeout = kQueryTimeout;
  SBX_ASSIGN_OR_RETURN(CommandResult r, runner.Run(spec));
  if (!r.ok()) return RunscClient::CommandError(verb, r);
  return want_stderr ? r.err + r.out : r.out;
}

}  // namespace

Json RunscCapabilities::ToJson() const {
  return Json{
      {"binary", binary},
      {"version", version},
      {"platforms", platforms},
      {"platform", platform},
      {"flags", flags},
      {"overlay2Dir", overlay2_dir},
      {"checkpointLeaveRunningInPlace", checkpoint_leave_running_in_place},
      {"netnsRmemDefect", netns_rmem_defect},
  };
}

Result<RunscCapabilities> RunscCapabilities::FromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("runsc capabilities: not an object");
  RunscCapabilities c;
  auto field = [&](const char* key, Json::value_t type) -> Result<const Json*> {
    auto it = j.find(key);
    if (it == j.end() || it->type() != type) {
      return InvalidArgument(std::string("runsc capabilities.") + key + ": missing or wrong type");
    }
    return &*it;
  };
  auto string_list = [&](const char* key) -> Result<std::vector<std::string>> {
    SBX_ASSIGN_OR_RETURN(const Json* a, field(key, Json::value_t::array));
    std::vector<std::string> out;
    for (const Json& e : *a) {
      if (!e.is_string())
        return InvalidArgument(std::string("runsc capabilities.") + key + ": not strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  };
  SBX_ASSIGN_OR_RETURN(const Json* b, field("binary", Json::value_t::string));
  SBX_ASSIGN_OR_RETURN(const Json* v, field("version", Json::value_t::string));
  SBX_ASSIGN_OR_RETURN(const Json* p, field("platform", Json::value_t::string));
  SBX_ASSIGN_OR_RETURN(const Json* o, field("overlay2Dir", Json::value_t::boolean));
  SBX_ASSIGN_OR_RETURN(const Json* l,
                       field("checkpointLeaveRunningInPlace", Json::value_t::boolean));
  SBX_ASSIGN_OR_RETURN(const Json* n, field("netnsRmemDefect", Json::value_t::boolean));
  SBX_ASSIGN_OR_RETURN(c.platforms, string_list("platforms"));
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> flags, string_list("flags"));
  c.binary = b->get<std::string>();
  c.version = v->get<std::string>();
  c.platform = p->get<std::string>();
  c.flags.insert(flags.begin(), flags.end());
  c.overlay2_dir = o->get<bool>();
  c.checkpoint_leave_running_in_place = l->get<bool>();
  c.netns_rmem_defect = n->get<bool>();
  return c;
}

int RunscReleaseDate(std::string_view version) {
  // The first run of exactly 8 digits that looks like a date.
  for (size_t i = 0; i < version.size();) {
    if (!std::isdigit(static_cast<unsigned char>(version[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < version.size() && std::isdigit(static_cast<unsigned char>(version[j]))) ++j;
    if (j - i == 8) {
      int date = std::atoi(std::string(version.substr(i, 8)).c_str());
      if (date >= 20180101 && date <= 29991231) return date;
    }
    i = j;
  }
  return 0;
}

std::map<std::string, std::string> ParseRunscFlags(std::string_view text) {
  std::map<std::string, std::string> flags;
  std::string* current = nullptr;
  for (const std::string& line : Split(text, '\n')) {
    // "  -name type" starts a flag; indented lines after it are its help.
    if (line.size() > 3 && line.compare(0, 3, "  -") == 0 && line[3] != ' ') {
      std::string_view rest = std::string_view(line).substr(3);
      std::string name(rest.substr(0, rest.find(' ')));
      current = &flags[name];
      continue;
    }
    if (current != nullptr && !Trim(line).empty()) {
      if (!current->empty()) *current += ' ';
      *current += Trim(line);
    }
  }
  return flags;
}

Result<RunscCapabilities> ProbeRunsc(CommandRunner& runner, const std::string& binary,
                                     const std::string& requested_platform,
                                     const std::string& work_dir, const std::string& cache_path,
                                     milliseconds boot_timeout) {
  std::vector<std::string> candidates;
  const bool have_kvm = PathExists("/dev/kvm");
  if (requested_platform == "auto") {
    if (have_kvm) candidates.push_back("kvm");
    candidates.push_back("systrap");
    candidates.push_back("ptrace");
  } else if (requested_platform == "kvm" || requested_platform == "systrap" ||
             requested_platform == "ptrace") {
    if (requested_platform == "kvm" && !have_kvm) {
      return FailedPrecondition("runsc platform kvm: /dev/kvm does not exist");
    }
    candidates.push_back(requested_platform);
  } else {
    return InvalidArgument("runsc platform \"" + requested_platform +
                           "\": must be auto, kvm, systrap or ptrace");
  }

  SBX_ASSIGN_OR_RETURN(std::string resolved, FindExecutable(binary));
  SBX_ASSIGN_OR_RETURN(Json key, CacheKey(resolved, requested_platform));
  if (!cache_path.empty()) {
    Result<RunscCapabilities> cached = ReadCache(cache_path, key);
    if (cached.ok()) return cached;
  }

  RunscConfig query_config;
  query_config.binary = resolved;
  RunscClient query(query_config);
  RunscCapabilities caps;
  caps.binary = resolved;
  SBX_ASSIGN_OR_RETURN(std::string version_out,
                       RunQuery(runner, query.Version(), "--version", false));
  SBX_ASSIGN_OR_RETURN(caps.version, RunscClient::ParseVersion(version_out));
  // flag.PrintDefaults writes to stderr.
  SBX_ASSIGN_OR_RETURN(std::string flags_out, RunQuery(runner, query.Flags(), "flags", true));
  std::map<std::string, std::string> flags = ParseRunscFlags(flags_out);
  for (const auto& [name, help] : flags) caps.flags.insert(name);
  if (auto it = flags.find("overlay2"); it != flags.end()) {
    caps.overlay2_dir = it->second.find("dir=") != std::string::npos;
  }
  const int date = RunscReleaseDate(caps.version);
  caps.checkpoint_leave_running_in_place = date >= kLeaveRunningInPlaceSince;
  caps.netns_rmem_defect =
      date > 0 && date < kNetnsCheckFixedIn && FreshNetnsHasRmemDefault(runner);

  SBX_RETURN_IF_ERROR(MakeDirs(work_dir, 0700));
  std::string failures;
  for (const std::string& platform : candidates) {
    Status s = BootTest(runner, resolved, platform, work_dir, boot_timeout);
    if (s.ok()) {
      caps.platforms.push_back(platform);
      SBX_LOG(kInfo) << "runsc probe: platform " << platform << " boots";
    } else {
      SBX_LOG(kInfo) << "runsc probe: platform " << platform << " does not boot: " << s.message();
      failures += (failures.empty() ? "" : "; ") + platform + ": " + s.message();
    }
  }
  if (caps.platforms.empty()) {
    return FailedPrecondition("runsc " + resolved + " (" + caps.version +
                              "): no platform boots: " + failures);
  }
  caps.platform = caps.platforms.front();

  if (!cache_path.empty()) {
    Json cache = {{"key", key}, {"capabilities", caps.ToJson()}};
    if (Status s = WriteFileAtomic(cache_path, cache.dump(2) + "\n"); !s.ok()) {
      SBX_LOG(kWarning) << "runsc probe: cannot write cache: " << s.ToString();
    }
  }
  return caps;
}

}  // namespace sbx::oci
