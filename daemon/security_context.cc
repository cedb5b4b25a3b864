#include "daemon/security_context.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>

#include "common/fs.h"
#include "common/strings.h"
#include "oci/bundle.h"
#include "oci/seccomp.h"

namespace sbx::daemon {
namespace {

using api::Json;

constexpr size_t kMaxProfileSize = 4 << 20;
constexpr int64_t kMaxId = INT32_MAX;  // Kubernetes' IsValidUserID / IsValidGroupID

// The pod spec's path from a container's: "spec.podTemplate.spec.containers[0]"
// -> "spec.podTemplate.spec".
std::string PodSpecPath(const std::string& container_path) {
  for (const char* list : {".containers[", ".initContainers[", ".ephemeralContainers["}) {
    if (size_t at = container_path.rfind(list); at != std::string::npos) {
      return container_path.substr(0, at);
    }
  }
  return "spec.podTemplate.spec";
}

// A securityContext object (or its absence) with its field path.
class SecurityContext {
 public:
  static Result<SecurityContext> Of(const Json& parent, const std::string& parent_path) {
    SecurityContext sc;
    sc.path_ = parent_path + ".securityContext";
    if (parent.is_object()) {
      auto it = parent.find("securityContext");
      if (it != parent.end() && !it->is_null()) {
        if (!it->is_object()) return Invalid(sc.path_ + ": must be an object");
        sc.json_ = &*it;
      }
    }
    return sc;
  }

  bool Has(const char* key) const {
    return json_ != nullptr && json_->contains(key) && !(*json_)[key].is_null();
  }
  std::string Path(const char* key) const { return path_ + "." + key; }
  const Json& Get(const char* key) const { return (*json_)[key]; }

  Result<std::optional<int64_t>> Id(const char* key) const {
    if (!Has(key)) return std::optional<int64_t>();
    const Json& v = Get(key);
    if (!v.is_number_integer()) return Invalid(Path(key) + ": must be an integer");
    int64_t id = v.get<int64_t>();
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kMaxId)) id = -1;
    if (id < 0 || id > kMaxId) {
      return Invalid(Path(key) + ": Invalid value: " + v.dump() +
                     ": must be between 0 and 2147483647, inclusive");
    }
    return std::optional<int64_t>(id);
  }

  Result<std::optional<bool>> Bool(const char* key) const {
    if (!Has(key)) return std::optional<bool>();
    if (!Get(key).is_boolean()) return Invalid(Path(key) + ": must be a boolean");
    return std::optional<bool>(Get(key).get<bool>());
  }

  Result<std::vector<std::string>> Strings(const Json& v, const std::string& path) const {
    std::vector<std::string> out;
    if (v.is_null()) return out;
    if (!v.is_array()) return Invalid(path + ": must be an array of strings");
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) return Invalid(path + "[" + std::to_string(i) + "]: must be a string");
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

 private:
  const Json* json_ = nullptr;
  std::string path_;
};

// The container's value of key if set, else the pod's.
const SecurityContext& Effective(const SecurityContext& container, const SecurityContext& pod,
                                 const char* key) {
  return container.Has(key) ? container : pod;
}

std::string UserPart(const std::string& user) { return user.substr(0, user.find(':')); }

bool IsNumeric(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// kubelet's verifyRunAsNonRoot, with its messages.
Status VerifyRunAsNonRoot(std::optional<int64_t> run_as_user, const std::string& image_user,
                          const std::string& pod_key, const std::string& container_name) {
  const std::string who = "(pod: " + Json(pod_key).dump() + ", container: " + container_name + ")";
  if (run_as_user) {
    if (*run_as_user == 0) {
      return FailedPrecondition("container's runAsUser breaks non-root policy " + who);
    }
    return Status::Ok();
  }
  const std::string user = UserPart(image_user);
  if (user.empty() || (IsNumeric(user) && user.find_first_not_of('0') == std::string::npos)) {
    return FailedPrecondition("container has runAsNonRoot and image will run as root " + who);
  }
  if (!IsNumeric(user)) {
    return FailedPrecondition("container has runAsNonRoot and image has non-numeric user (" + user +
                              "), cannot verify user is non-root " + who);
  }
  return Status::Ok();
}

void AddGid(std::vector<uint32_t>* gids, uint32_t gid) {
  if (std::find(gids->begin(), gids->end(), gid) == gids->end()) gids->push_back(gid);
}

Result<oci::UserSpec> ResolveUser(const SecurityContext& csc, const SecurityContext& psc,
                                  std::optional<int64_t> run_as_user, const std::string& image_user,
                                  const std::string& rootfs, const std::string& container_path) {
  const SecurityContext& group_sc = Effective(csc, psc, "runAsGroup");
  SBX_ASSIGN_OR_RETURN(std::optional<int64_t> run_as_group, group_sc.Id("runAsGroup"));
  std::string user = image_user;
  if (run_as_user || run_as_group) {
    // The kubelet passes the image's user name or uid (never its group) when
    // only runAsGroup is set; an empty image user is uid 0.
    user = run_as_user ? std::to_string(*run_as_user) : UserPart(image_user);
    if (user.empty()) user = "0";
    if (run_as_group) user += ":" + std::to_string(*run_as_group);
  }
  auto spec = oci::ResolveUser(rootfs, user);
  if (!spec.ok()) return spec.status().Annotate(container_path);

  SBX_ASSIGN_OR_RETURN(std::optional<int64_t> fs_group, psc.Id("fsGroup"));
  std::vector<int64_t> supplemental;
  if (psc.Has("supplementalGroups")) {
    const Json& groups = psc.Get("supplementalGroups");
    const std::string path = psc.Path("supplementalGroups");
    if (!groups.is_array()) return Invalid(path + ": must be an array of integers");
    for (size_t i = 0; i < groups.size(); ++i) {
      const std::string item = path + "[" + std::to_string(i) + "]";
      if (!groups[i].is_number_integer() || groups[i].get<int64_t>() < 0 ||
          groups[i].get<int64_t>() > kMaxId) {
        return Invalid(item + ": Invalid value: " + groups[i].dump() +
                       ": must be between 0 and 2147483647, inclusive");
      }
      supplemental.push_back(groups[i].get<int64_t>());
    }
  }
  std::string policy = "Merge";
  if (psc.Has("supplementalGroupsPolicy")) {
    const Json& p = psc.Get("supplementalGroupsPolicy");
    policy = p.is_string() ? p.get<std::string>() : "";
    if (policy != "Merge" && policy != "Strict") {
      return Invalid(psc.Path("supplementalGroupsPolicy") + ": Unsupported value: " + p.dump() +
                     ": supported values: \"Merge\", \"Strict\"");
    }
  }
  if (policy == "Strict") spec->additional_gids = {spec->gid};
  if (fs_group) AddGid(&spec->additional_gids, static_cast<uint32_t>(*fs_group));
  for (int64_t g : supplemental) AddGid(&spec->additional_gids, static_cast<uint32_t>(g));
  return spec;
}

// Reads root/relative without leaving root (RESOLVE_BENEATH).
Result<std::string> ReadProfile(const std::string& root, const std::string& relative,
                                const std::string& field) {
  const std::string full = JoinPath(root, relative);
  UniqueFd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    return FailedPrecondition(field + ": seccomp profile directory " + Json(root).dump() + ": " +
                              std::strerror(errno));
  }
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(
      static_cast<int>(::syscall(SYS_openat2, dir.get(), relative.c_str(), &how, sizeof(how))));
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return NotFound(field + ": seccomp profile " + Json(full).dump() + " not found");
    }
    if (err == EXDEV) {
      return Invalid(field + ": seccomp profile " + Json(full).dump() +
                     " resolves outside the seccomp profile directory");
    }
    return ErrnoStatus(field + ": seccomp profile " + full, err);
  }
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(field + ": seccomp profile " + full, errno);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxProfileSize) {
      return Invalid(field + ": seccomp profile " + Json(full).dump() + " is larger than 4 MiB");
    }
  }
  return data;
}

Result<Json> ResolveSeccomp(const SecurityContext& sc, const std::vector<std::string>& caps,
                            const SecuritySettings& settings) {
  if (!sc.Has("seccompProfile")) {
    if (settings.default_seccomp == "RuntimeDefault") return oci::RuntimeDefaultSeccompProfile();
    if (settings.default_seccomp == "Unconfined") return Json();
    return Internal("default seccomp setting " + Json(settings.default_seccomp).dump() +
                    ": must be RuntimeDefault or Unconfined");
  }
  const std::string path = sc.Path("seccompProfile");
  const Json& profile = sc.Get("seccompProfile");
  if (!profile.is_object()) return Invalid(path + ": must be an object");
  const Json type = profile.value("type", Json());
  const Json localhost = profile.value("localhostProfile", Json());
  if (type.is_null()) return Invalid(path + ".type: Required value");
  const std::string kind = type.is_string() ? type.get<std::string>() : "";
  if (kind != "Localhost" && !localhost.is_null()) {
    return Invalid(path + ".localhostProfile: Invalid value: " + localhost.dump() +
                   ": can only be set when seccomp type is Localhost");
  }
  if (kind == "RuntimeDefault") return oci::RuntimeDefaultSeccompProfile();
  if (kind == "Unconfined") return Json();
  if (kind != "Localhost") {
    return Invalid(path + ".type: Unsupported value: " + type.dump() +
                   ": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\"");
  }

  const std::string field = path + ".localhostProfile";
  if (localhost.is_null() || (localhost.is_string() && localhost.get<std::string>().empty())) {
    return Invalid(field + ": Required value: must be set when seccomp type is Localhost");
  }
  if (!localhost.is_string()) return Invalid(field + ": must be a string");
  const std::string relative = localhost.get<std::string>();
  if (relative.front() == '/') {
    return Invalid(field + ": Invalid value: " + localhost.dump() + ": must be a relative path");
  }
  for (const std::string& part : Split(relative, '/')) {
    if (part == "..") {
      return Invalid(field + ": Invalid value: " + localhost.dump() + ": must not contain '..'");
    }
  }
  if (settings.seccomp_profile_root.empty()) {
    return FailedPrecondition(field +
                              ": Localhost seccomp profiles are not enabled (sbxd has no "
                              "seccomp profile directory configured)");
  }
  SBX_ASSIGN_OR_RETURN(std::string text,
                       ReadProfile(settings.seccomp_profile_root, relative, field));
  auto loaded =
      oci::LoadSeccompProfile(text, JoinPath(settings.seccomp_profile_root, relative), caps);
  if (!loaded.ok()) return loaded.status().Annotate(field);
  return loaded;
}

}  // namespace

Result<ContainerSecurity> ResolveContainerSecurity(
    const api::Json& pod_spec, const api::Json& container, const std::string& container_path,
    const std::string& pod_key, const std::string& rootfs, const std::string& image_user,
    const SecuritySettings& settings) {
  SBX_ASSIGN_OR_RETURN(SecurityContext psc,
                       SecurityContext::Of(pod_spec, PodSpecPath(container_path)));
  SBX_ASSIGN_OR_RETURN(SecurityContext csc, SecurityContext::Of(container, container_path));
  ContainerSecurity out;

  SBX_ASSIGN_OR_RETURN(std::optional<bool> privileged, csc.Bool("privileged"));
  if (privileged.value_or(false)) {
    return Invalid(csc.Path("privileged") + ": Forbidden: privileged containers are not supported");
  }

  std::vector<std::string> add, drop;
  if (csc.Has("capabilities")) {
    const Json& caps = csc.Get("capabilities");
    const std::string path = csc.Path("capabilities");
    if (!caps.is_object()) return Invalid(path + ": must be an object");
    if (caps.contains("add")) {
      SBX_ASSIGN_OR_RETURN(add, csc.Strings(caps["add"], path + ".add"));
    }
    if (caps.contains("drop")) {
      SBX_ASSIGN_OR_RETURN(drop, csc.Strings(caps["drop"], path + ".drop"));
    }
  }
  SBX_ASSIGN_OR_RETURN(
      out.capabilities,
      oci::ApplyCapabilityChanges(oci::DefaultCapabilities(), add, drop, csc.Path("capabilities")));

  SBX_ASSIGN_OR_RETURN(std::optional<bool> escalation, csc.Bool("allowPrivilegeEscalation"));
  out.no_new_privileges = escalation.has_value() && !*escalation;
  SBX_ASSIGN_OR_RETURN(std::optional<bool> readonly, csc.Bool("readOnlyRootFilesystem"));
  out.readonly_rootfs = readonly.value_or(false);

  SBX_ASSIGN_OR_RETURN(std::optional<int64_t> run_as_user,
                       Effective(csc, psc, "runAsUser").Id("runAsUser"));
  SBX_ASSIGN_OR_RETURN(std::optional<bool> non_root,
                       Effective(csc, psc, "runAsNonRoot").Bool("runAsNonRoot"));
  if (non_root.value_or(false)) {
    std::string name;
    if (container.is_object() && container.contains("name") && container["name"].is_string()) {
      name = container["name"].get<std::string>();
    }
    SBX_RETURN_IF_ERROR(VerifyRunAsNonRoot(run_as_user, image_user, pod_key, name));
  }
  SBX_ASSIGN_OR_RETURN(out.user,
                       ResolveUser(csc, psc, run_as_user, image_user, rootfs, container_path));

  SBX_ASSIGN_OR_RETURN(out.seccomp, ResolveSeccomp(Effective(csc, psc, "seccompProfile"),
                                                   out.capabilities, settings));
  return out;
}

}  // namespace sbx::daemon
