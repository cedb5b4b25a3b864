#include "daemon/pod_resources.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include "api/quantity.h"
#include "api/validation.h"
#include "common/fs.h"
#include "common/strings.h"

namespace sbx::daemon {
namespace {

using api::Json;

// k8s.io/apimachinery resource.ErrFormatWrong.
constexpr char kQuantityFormat[] =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

// kubelet's cm.MinShares / MaxShares / MinQuotaPeriod / QuotaPeriod.
constexpr int64_t kMinShares = 2;
constexpr int64_t kMaxShares = 262144;
constexpr int64_t kMinQuota = 1000;
constexpr int64_t kCpuPeriod = 100000;

enum class Kind { kCpu, kMemory, kEphemeral };

struct ResourceName {
  std::string_view name;
  Kind kind;
};
constexpr std::array<ResourceName, 3> kResources = {{
    {"cpu", Kind::kCpu},
    {"ephemeral-storage", Kind::kEphemeral},
    {"memory", Kind::kMemory},
}};

// A quantity as written (string or JSON number), for parsing and messages.
std::optional<std::string> QuantityText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return std::nullopt;
}

// Parses a quantity in the unit of `kind` (millicores or bytes).
Result<int64_t> ParseAmount(const Json& v, Kind kind, const std::string& path) {
  std::optional<std::string> text = QuantityText(v);
  if (!text) return Invalid(path + ": Invalid value: " + v.dump() + ": must be a quantity");
  Result<int64_t> amount =
      kind == Kind::kCpu ? api::ParseQuantityMilli(*text) : api::ParseQuantityValue(*text);
  if (!amount.ok()) {
    bool too_large = amount.status().message().ends_with("too large");
    return Invalid(
        api::FieldInvalid(path, *text, too_large ? "quantity too large" : kQuantityFormat));
  }
  if (*amount < 0)
    return Invalid(api::FieldInvalid(path, *text, "must be greater than or equal to 0"));
  return *amount;
}

struct Amounts {
  // Indexed like kResources; text kept for messages.
  std::array<int64_t, 3> value{};
  std::array<std::string, 3> text;
  std::array<bool, 3> set{};
};

Result<Amounts> ParseList(const Json& resources, const char* list, const std::string& path) {
  Amounts out;
  auto it = resources.find(list);
  if (it == resources.end() || it->is_null()) return out;
  const std::string list_path = path + "." + list;
  if (!it->is_object()) {
    return Invalid(list_path + ": Invalid value: " + it->dump() + ": must be an object");
  }
  for (const auto& [name, v] : it->items()) {
    const std::string key_path = list_path + "[" + name + "]";
    auto r = std::find_if(kResources.begin(), kResources.end(),
                          [&](const ResourceName& rn) { return rn.name == name; });
    if (r == kResources.end()) {
      std::vector<std::string> supported;
      for (const ResourceName& rn : kResources) supported.emplace_back(rn.name);
      return Invalid(api::FieldNotSupported(key_path, name, supported));
    }
    size_t i = static_cast<size_t>(r - kResources.begin());
    SBX_ASSIGN_OR_RETURN(out.value[i], ParseAmount(v, r->kind, list_path + "." + name));
    out.text[i] = QuantityText(v).value_or("");
    out.set[i] = true;
  }
  return out;
}

// Sums as kubelet's PodRequests/PodLimits aggregate them (see the header);
// `declared` turns false when any container leaves the amount at 0.
struct PodAggregate {
  int64_t regular = 0, sidecars = 0, init_max = 0;
  bool declared = true;

  void AddRegular(int64_t v) {
    regular += v;
    declared = declared && v > 0;
  }
  void AddInit(int64_t v, bool restartable) {
    declared = declared && v > 0;
    if (restartable) {
      sidecars += v;
      init_max = std::max(init_max, sidecars);
    } else {
      init_max = std::max(init_max, v + sidecars);
    }
  }
  int64_t Total() const { return std::max(regular + sidecars, init_max); }
};

Result<std::vector<const Json*>> ContainerList(const Json& pod_spec, const char* key,
                                               const std::string& path) {
  std::vector<const Json*> out;
  auto it = pod_spec.find(key);
  if (it == pod_spec.end() || it->is_null()) return out;
  if (!it->is_array()) return Invalid(path + ": Invalid value: " + it->dump() + ": must be a list");
  for (const Json& c : *it) out.push_back(&c);
  return out;
}

int64_t CeilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// Divisors Kubernetes accepts for memory and ephemeral-storage:
// 1, 1k … 1E, 1Ki … 1Ei.
bool IsByteDivisor(int64_t v) {
  for (int64_t p = 1; p <= 1000000000000000000LL; p *= 1000) {
    if (v == p) return true;
  }
  for (int shift = 10; shift <= 60; shift += 10) {
    if (v == int64_t{1} << shift) return true;
  }
  return false;
}

// `oom_kill N` from a v1 memory.oom_control or v2 memory.events file.
Result<int64_t> ParseOomKill(const std::string& text, const std::string& file) {
  for (const std::string& line : Split(text, '\n')) {
    std::vector<std::string> f = Split(Trim(line), ' ');
    if (f.size() == 2 && f[0] == "oom_kill") {
      char* end = nullptr;
      long long n = std::strtoll(f[1].c_str(), &end, 10);
      if (end == f[1].c_str() || *end != '\0' || n < 0) break;
      return static_cast<int64_t>(n);
    }
  }
  return Internal(file + ": no oom_kill count");
}

}  // namespace

Result<ContainerResources> ParseContainerResources(const Json& container,
                                                   const std::string& container_path) {
  ContainerResources out;
  if (!container.is_object()) return out;
  auto it = container.find("resources");
  if (it == container.end() || it->is_null()) return out;
  const std::string path = container_path + ".resources";
  if (!it->is_object()) {
    return Invalid(path + ": Invalid value: " + it->dump() + ": must be an object");
  }
  SBX_ASSIGN_OR_RETURN(Amounts limits, ParseList(*it, "limits", path));
  SBX_ASSIGN_OR_RETURN(Amounts requests, ParseList(*it, "requests", path));
  for (size_t i = 0; i < kResources.size(); ++i) {
    if (requests.set[i] && limits.set[i] && requests.value[i] > limits.value[i]) {
      return Invalid(api::FieldInvalid(path + ".requests", requests.text[i],
                                       "must be less than or equal to " +
                                           std::string(kResources[i].name) + " limit of " +
                                           limits.text[i]));
    }
    if (!requests.set[i] && limits.set[i]) requests.value[i] = limits.value[i];
  }
  // kResources order: cpu, ephemeral-storage, memory.
  out.cpu_limit_milli = limits.value[0];
  out.cpu_request_milli = requests.value[0];
  out.ephemeral_limit = limits.value[1];
  out.ephemeral_request = requests.value[1];
  out.memory_limit = limits.value[2];
  out.memory_request = requests.value[2];
  return out;
}

Result<oci::BundleResources> PodResources(const Json& pod_spec, const ResourceDefaults& defaults,
                                          const std::string& pod_spec_path) {
  PodAggregate memory_limit, cpu_limit, cpu_request;
  bool any = false;
  for (const char* list : {"initContainers", "containers"}) {
    const std::string list_path = pod_spec_path + "." + list;
    SBX_ASSIGN_OR_RETURN(std::vector<const Json*> containers,
                         ContainerList(pod_spec, list, list_path));
    const bool init = std::string_view(list) == "initContainers";
    for (size_t i = 0; i < containers.size(); ++i) {
      const Json& c = *containers[i];
      SBX_ASSIGN_OR_RETURN(ContainerResources r,
                           ParseContainerResources(c, list_path + "[" + std::to_string(i) + "]"));
      any = true;
      if (init) {
        auto policy = c.is_object() ? c.find("restartPolicy") : c.end();
        bool restartable = c.is_object() && policy != c.end() && *policy == "Always";
        memory_limit.AddInit(r.memory_limit, restartable);
        cpu_limit.AddInit(r.cpu_limit_milli, restartable);
        cpu_request.AddInit(r.cpu_request_milli, restartable);
      } else {
        memory_limit.AddRegular(r.memory_limit);
        cpu_limit.AddRegular(r.cpu_limit_milli);
        cpu_request.AddRegular(r.cpu_request_milli);
      }
    }
  }

  oci::BundleResources out;
  out.cpu_period = kCpuPeriod;
  out.memory_limit = any && memory_limit.declared ? memory_limit.Total() : defaults.memory_limit;
  int64_t cpu_milli = any && cpu_limit.declared ? cpu_limit.Total() : defaults.cpu_limit_milli;
  if (cpu_milli > 0) out.cpu_quota = std::max(kMinQuota, cpu_milli * kCpuPeriod / 1000);
  if (int64_t req = cpu_request.Total(); req > 0) {
    out.cpu_shares = static_cast<uint64_t>(std::clamp(req * 1024 / 1000, kMinShares, kMaxShares));
  }
  out.pids_limit = defaults.pids_limit;
  return out;
}

Result<NodeAllocatable> HostAllocatable() {
  NodeAllocatable node;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus <= 0) return ErrnoStatus("sysconf(_SC_NPROCESSORS_ONLN)", errno);
  node.cpu_milli = static_cast<int64_t>(cpus) * 1000;
  SBX_ASSIGN_OR_RETURN(std::string meminfo, ReadFile("/proc/meminfo"));
  for (const std::string& line : Split(meminfo, '\n')) {
    if (!line.starts_with("MemTotal:")) continue;
    long long kb = std::strtoll(line.c_str() + 9, nullptr, 10);
    node.memory = static_cast<int64_t>(kb) * 1024;
  }
  if (node.memory <= 0) return Internal("/proc/meminfo: no MemTotal");
  struct statvfs fs;
  if (::statvfs("/", &fs) != 0) return ErrnoStatus("statvfs /", errno);
  node.ephemeral_storage = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
  return node;
}

Result<std::string> ResourceFieldRefValue(const Json& container, const Json& resource_field_ref,
                                          const std::string& field_path) {
  SBX_ASSIGN_OR_RETURN(NodeAllocatable node, HostAllocatable());
  return ResourceFieldRefValue(container, resource_field_ref, field_path, node);
}

Result<std::string> ResourceFieldRefValue(const Json& container, const Json& resource_field_ref,
                                          const std::string& field_path,
                                          const NodeAllocatable& node) {
  static const std::vector<std::string> kSupported = {
      "limits.cpu",   "limits.ephemeral-storage",   "limits.memory",
      "requests.cpu", "requests.ephemeral-storage", "requests.memory"};
  if (!resource_field_ref.is_object()) {
    return Invalid(field_path + ": Invalid value: " + resource_field_ref.dump() +
                   ": must be an object");
  }
  auto res = resource_field_ref.find("resource");
  if (res == resource_field_ref.end() || !res->is_string() || res->get<std::string>().empty()) {
    return Invalid(api::FieldRequired(field_path + ".resource"));
  }
  const std::string resource = res->get<std::string>();
  if (std::find(kSupported.begin(), kSupported.end(), resource) == kSupported.end()) {
    return Invalid(api::FieldNotSupported(field_path + ".resource", resource, kSupported));
  }
  const bool limit = resource.starts_with("limits.");
  const std::string_view name = std::string_view(resource).substr(resource.find('.') + 1);
  const Kind kind = name == "cpu"      ? Kind::kCpu
                    : name == "memory" ? Kind::kMemory
                                       : Kind::kEphemeral;

  int64_t divisor = kind == Kind::kCpu ? 1000 : 1;
  if (auto d = resource_field_ref.find("divisor"); d != resource_field_ref.end() && !d->is_null()) {
    const std::string divisor_path = field_path + ".divisor";
    SBX_ASSIGN_OR_RETURN(divisor, ParseAmount(*d, kind, divisor_path));
    const std::string text = QuantityText(*d).value_or("");
    if (kind == Kind::kCpu && divisor != 1 && divisor != 1000) {
      return Invalid(
          api::FieldInvalid(divisor_path, text,
                            "only divisor's values 1m and 1 are supported with the cpu resource"));
    }
    if (kind != Kind::kCpu && !IsByteDivisor(divisor)) {
      return Invalid(api::FieldInvalid(
          divisor_path, text,
          std::string("only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, "
                      "1Ei are supported with the ") +
              (kind == Kind::kMemory ? "memory" : "local ephemeral storage") + " resource"));
    }
  }

  // The container's own path is not known here; its name identifies it.
  std::string container_path = "container";
  if (container.is_object()) {
    if (auto n = container.find("name"); n != container.end() && n->is_string()) {
      container_path = "container \"" + n->get<std::string>() + "\"";
    }
  }
  SBX_ASSIGN_OR_RETURN(ContainerResources r, ParseContainerResources(container, container_path));
  int64_t amount = 0;
  switch (kind) {
    case Kind::kCpu:
      amount = limit ? (r.cpu_limit_milli > 0 ? r.cpu_limit_milli : node.cpu_milli)
                     : r.cpu_request_milli;
      break;
    case Kind::kMemory:
      amount = limit ? (r.memory_limit > 0 ? r.memory_limit : node.memory) : r.memory_request;
      break;
    case Kind::kEphemeral:
      amount = limit ? (r.ephemeral_limit > 0 ? r.ephemeral_limit : node.ephemeral_storage)
                     : r.ephemeral_request;
      break;
  }
  return std::to_string(CeilDiv(amount, divisor));
}

Result<int64_t> CgroupOomKills(const std::string& cgroups_path, const std::string& cgroup_root) {
  if (cgroups_path.empty() || cgroups_path.front() != '/') {
    return InvalidArgument("cgroups path \"" + cgroups_path + "\": must be absolute");
  }
  const bool v1 = IsDirectory(JoinPath(cgroup_root, "memory"));
  const std::string dir = v1 ? cgroup_root + "/memory" + cgroups_path : cgroup_root + cgroups_path;
  if (!IsDirectory(dir)) return NotFound("cgroup " + dir + " does not exist");
  const std::string file = JoinPath(dir, v1 ? "memory.oom_control" : "memory.events");
  Result<std::string> text = ReadFile(file);
  if (!text.ok()) {
    // Removed between the two checks.
    if (!IsDirectory(dir)) return NotFound("cgroup " + dir + " does not exist");
    if (text.status().code() == Code::kNotFound) {
      return FailedPrecondition(file + " is missing: the memory controller is not enabled there");
    }
    return text.status();
  }
  return ParseOomKill(*text, file);
}

}  // namespace sbx::daemon
