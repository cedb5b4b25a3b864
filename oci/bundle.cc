#include "oci/bundle.h"

#include <string_view>

#include "common/fs.h"

namespace sbx::oci {
namespace {

std::string_view EnvName(std::string_view entry) {
  size_t eq = entry.find('=');
  return eq == std::string_view::npos ? entry : entry.substr(0, eq);
}

// Replaces the entry with the same name in place, or appends.
void SetEnv(std::vector<std::string>* env, std::string entry) {
  std::string_view name = EnvName(entry);
  for (std::string& e : *env) {
    if (EnvName(e) == name) {
      e = std::move(entry);
      return;
    }
  }
  env->push_back(std::move(entry));
}

Json MountJson(const BundleMount& m) {
  Json j = {{"destination", m.destination}, {"type", m.type}, {"source", m.source}};
  if (!m.options.empty()) j["options"] = m.options;
  return j;
}

std::vector<BundleMount> DefaultMounts() {
  // As containerd's default spec, minus /dev/mqueue (gVisor provides its own)
  // and /sys/fs/cgroup (no cgroupfs inside the sandbox by default). /tmp is
  // not listed: gVisor mounts a sandbox-internal tmpfs there itself.
  return {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts",
       "devpts",
       "devpts",
       {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
  };
}

}  // namespace

const char kDefaultPathEnv[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::vector<std::string> DefaultCapabilities() {
  return {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
          "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
          "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
          "CAP_KILL",    "CAP_AUDIT_WRITE"};
}

Result<std::vector<std::string>> ResolveArgs(const std::vector<std::string>& image_entrypoint,
                                             const std::vector<std::string>& image_cmd,
                                             const std::vector<std::string>& command,
                                             const std::vector<std::string>& args) {
  std::vector<std::string> out;
  if (!command.empty()) {
    out = command;
    out.insert(out.end(), args.begin(), args.end());
  } else {
    out = image_entrypoint;
    const std::vector<std::string>& tail = args.empty() ? image_cmd : args;
    out.insert(out.end(), tail.begin(), tail.end());
  }
  if (out.empty()) return InvalidArgument("no command specified");
  return out;
}

std::vector<std::string> MergeEnv(
    const std::vector<std::string>& image_env,
    const std::vector<std::pair<std::string, std::string>>& container_env) {
  std::vector<std::string> env;
  for (const std::string& e : image_env) SetEnv(&env, e);
  bool has_path = false;
  for (const std::string& e : env) has_path = has_path || EnvName(e) == "PATH";
  if (!has_path) env.push_back(kDefaultPathEnv);
  for (const auto& [name, value] : container_env) SetEnv(&env, name + "=" + value);
  return env;
}

bool BundleResources::empty() const {
  return memory_limit == 0 && memory_reservation == 0 && cpu_quota == 0 && cpu_shares == 0 &&
         pids_limit == 0;
}

Json CapabilitiesJson(const std::vector<std::string>& capabilities) {
  return {{"bounding", capabilities}, {"effective", capabilities}, {"permitted", capabilities}};
}

Json ResourcesJson(const BundleResources& r) {
  Json j = Json::object();
  if (r.memory_limit != 0) j["memory"]["limit"] = r.memory_limit;
  if (r.memory_reservation != 0) j["memory"]["reservation"] = r.memory_reservation;
  if (r.cpu_quota != 0) {
    j["cpu"]["quota"] = r.cpu_quota;
    j["cpu"]["period"] = r.cpu_period;
  }
  if (r.cpu_shares != 0) j["cpu"]["shares"] = r.cpu_shares;
  if (r.pids_limit != 0) j["pids"]["limit"] = r.pids_limit;
  return j;
}

Json ProcessSpecJson(const std::vector<std::string>& args, const std::vector<std::string>& env,
                     const std::string& cwd, const UserSpec& user, bool terminal,
                     const std::optional<std::vector<std::string>>& capabilities,
                     bool no_new_privileges) {
  Json user_json = {{"uid", user.uid}, {"gid", user.gid}};
  if (!user.additional_gids.empty()) user_json["additionalGids"] = user.additional_gids;
  Json process = {
      {"terminal", terminal},
      {"user", std::move(user_json)},
      {"args", args},
      {"env", env},
      {"cwd", cwd},
      {"capabilities", CapabilitiesJson(capabilities ? *capabilities : DefaultCapabilities())},
  };
  if (no_new_privileges) process["noNewPrivileges"] = true;
  return process;
}

Json BuildRuntimeSpec(const BundleSpec& spec) {
  Json process = ProcessSpecJson(spec.args, spec.env, spec.cwd, spec.user, spec.terminal,
                                 spec.capabilities, spec.no_new_privileges);
  process["rlimits"] =
      Json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1048576}, {"soft", 1048576}}});

  Json mounts = Json::array();
  for (const BundleMount& m : DefaultMounts()) mounts.push_back(MountJson(m));
  for (const BundleMount& m : spec.mounts) mounts.push_back(MountJson(m));

  Json namespaces = Json::array();
  for (const char* type : {"pid", "ipc", "uts", "mount", "network"}) {
    Json ns = {{"type", type}};
    if (std::string_view(type) == "network" && !spec.netns_path.empty()) ns["path"] = spec.netns_path;
    namespaces.push_back(std::move(ns));
  }
  Json linux_section = {{"namespaces", std::move(namespaces)}};
  if (!spec.cgroups_path.empty()) linux_section["cgroupsPath"] = spec.cgroups_path;
  if (!spec.resources.empty()) linux_section["resources"] = ResourcesJson(spec.resources);
  if (!spec.seccomp.is_null()) linux_section["seccomp"] = spec.seccomp;

  Json j = {
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", spec.rootfs}, {"readonly", spec.readonly_rootfs}}},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux_section)},
  };
  if (!spec.hostname.empty()) j["hostname"] = spec.hostname;
  if (!spec.annotations.empty()) j["annotations"] = spec.annotations;
  return j;
}

Status WriteBundle(const std::string& bundle_dir, const BundleSpec& spec) {
  if (bundle_dir.empty() || bundle_dir.front() != '/') {
    return InvalidArgument("bundle dir \"" + bundle_dir + "\": must be absolute");
  }
  if (spec.rootfs.empty() || spec.rootfs.front() != '/') {
    return InvalidArgument("rootfs \"" + spec.rootfs + "\": must be absolute");
  }
  if (spec.args.empty()) return InvalidArgument("no command specified");
  if (spec.cwd.empty() || spec.cwd.front() != '/') {
    return InvalidArgument("workingDir \"" + spec.cwd + "\": must be absolute");
  }
  for (const BundleMount& m : spec.mounts) {
    if (m.destination.empty() || m.destination.front() != '/') {
      return InvalidArgument("mount destination \"" + m.destination + "\": must be absolute");
    }
  }
  if (spec.capabilities) {
    for (const std::string& cap : *spec.capabilities) {
      if (!cap.starts_with("CAP_")) {
        return InvalidArgument("capability \"" + cap + "\": must be a CAP_ name");
      }
    }
  }
  if (!spec.seccomp.is_null() && !spec.seccomp.is_object()) {
    return InvalidArgument("seccomp: must be an object");
  }
  const BundleResources& r = spec.resources;
  if (r.memory_limit < 0 || r.memory_reservation < 0 || r.cpu_quota < 0 || r.pids_limit < 0) {
    return InvalidArgument("resources: limits must not be negative");
  }
  SBX_RETURN_IF_ERROR(MakeDirs(bundle_dir, 0700));
  return WriteFileAtomic(JoinPath(bundle_dir, "config.json"), BuildRuntimeSpec(spec).dump(2) + "\n",
                         0600);
}

}  // namespace sbx::oci
