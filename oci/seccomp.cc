#include "oci/seccomp.h"

#include <linux/filter.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::oci {
namespace {

// A libseccomp filter context; released, never loaded.
struct FilterReleaser {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using UniqueFilter = std::unique_ptr<void, FilterReleaser>;

// The actions gVisor's OCI seccomp support implements
// (runsc/specutils/seccomp: convertAction).
constexpr const char* kSupportedActions[] = {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                             "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"};
// Valid OCI actions that gVisor refuses at `runsc create`.
constexpr const char* kUnsupportedActions[] = {"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                               "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"};

struct Operator {
  const char* name;
  scmp_compare op;
};
constexpr Operator kOperators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

constexpr const char* kFlags[] = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};

// OCI architecture names with the Go GOARCH that Docker profiles' `arches`
// conditions use ("" where Go has none). libseccomp's own name is the
// lower-cased suffix ("SCMP_ARCH_X86_64" -> "x86_64").
struct Arch {
  const char* oci;
  const char* go;
};
constexpr Arch kArches[] = {
    {"SCMP_ARCH_X86", "386"},
    {"SCMP_ARCH_X86_64", "amd64"},
    {"SCMP_ARCH_X32", ""},
    {"SCMP_ARCH_ARM", "arm"},
    {"SCMP_ARCH_AARCH64", "arm64"},
    {"SCMP_ARCH_MIPS", "mips"},
    {"SCMP_ARCH_MIPS64", "mips64"},
    {"SCMP_ARCH_MIPS64N32", ""},
    {"SCMP_ARCH_MIPSEL", "mipsle"},
    {"SCMP_ARCH_MIPSEL64", "mips64le"},
    {"SCMP_ARCH_MIPSEL64N32", ""},
    {"SCMP_ARCH_PPC", "ppc"},
    {"SCMP_ARCH_PPC64", "ppc64"},
    {"SCMP_ARCH_PPC64LE", "ppc64le"},
    {"SCMP_ARCH_S390", "s390"},
    {"SCMP_ARCH_S390X", "s390x"},
    {"SCMP_ARCH_PARISC", ""},
    {"SCMP_ARCH_PARISC64", ""},
    {"SCMP_ARCH_RISCV64", "riscv64"},
    {"SCMP_ARCH_LOONGARCH64", "loong64"},
    {"SCMP_ARCH_M68K", ""},
    {"SCMP_ARCH_SH", ""},
    {"SCMP_ARCH_SHEB", ""},
};

// Syscalls added to Linux after the libseccomp this is built with learnt its
// table (2.5.4 as patched by Debian knows up to futex_requeue). Profiles may
// name them; they are kept in the output and skipped when compiling, as runc
// skips names it cannot resolve. gVisor implements none of them.
constexpr const char* kSyscallsNewerThanLibseccomp[] = {
    "statmount", "listmount",      "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
    "mseal",     "setxattrat",     "getxattrat",        "listxattrat",       "removexattrat",
    "uretprobe", "open_tree_attr", "file_getattr",      "file_setattr",
};

constexpr uint64_t kMaxErrno = 0xffff;  // SECCOMP_RET_DATA
constexpr unsigned kMaxArgs = 6;

template <typename List>
bool Contains(const List& list, std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

std::string Quote(std::string_view s) { return Json(std::string(s)).dump(); }

std::string QuotedList(const auto& list) {
  std::string out;
  for (const auto& s : list) {
    if (!out.empty()) out += ", ";
    out += Quote(s);
  }
  return out;
}

uint32_t LibseccompArch(std::string_view oci_name) {
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  if (oci_name.substr(0, kPrefix.size()) != kPrefix) return 0;
  return seccomp_arch_resolve_name(ToLower(oci_name.substr(kPrefix.size())).c_str());
}

const Arch* NativeArch() {
  static const Arch* native = [] {
    for (const Arch& a : kArches) {
      if (LibseccompArch(a.oci) == seccomp_arch_native()) return &a;
    }
    return static_cast<const Arch*>(nullptr);
  }();
  return native;
}

// (major, minor) of the running kernel; (0, 0) if unreadable.
std::pair<int, int> HostKernelVersion() {
  struct utsname u = {};
  if (::uname(&u) != 0) return {0, 0};
  std::string_view r = u.release;
  int major = 0, minor = 0;
  auto [p, ec] = std::from_chars(r.data(), r.data() + r.size(), major);
  if (ec != std::errc() || p == r.data() + r.size() || *p != '.') return {0, 0};
  std::from_chars(p + 1, r.data() + r.size(), minor);
  return {major, minor};
}

std::optional<uint64_t> AsUint(const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

struct Arg {
  unsigned index = 0;
  uint64_t value = 0, value_two = 0;
  std::string op;
};

struct Rule {
  std::vector<std::string> names, name_paths;
  std::string action;
  std::optional<uint64_t> errno_ret;
  std::vector<Arg> args;
};

struct Profile {
  std::string default_action;
  std::optional<uint64_t> default_errno_ret;
  std::vector<std::string> architectures, arch_paths;
  std::vector<std::string> flags;
  std::vector<Rule> rules;
};

// Parses and checks one profile document; `docker` admits the Docker-only
// fields (name, archMap, includes, excludes, comment).
class ProfileParser {
 public:
  ProfileParser(const std::string& source, bool docker, const std::vector<std::string>& caps)
      : source_(source), docker_(docker), caps_(caps) {}

  Result<Profile> Parse(const Json& j) {
    if (!j.is_object()) return Invalid(source_ + ": a seccomp profile must be a JSON object");
    static const std::set<std::string> kOciFields = {
        "defaultAction", "defaultErrnoRet",  "architectures", "flags",
        "listenerPath",  "listenerMetadata", "syscalls"};
    for (const auto& [key, v] : j.items()) {
      if (!kOciFields.contains(key) && !(docker_ && key == "archMap")) {
        return Error(key, "unknown field");
      }
    }
    Profile p;
    if (!j.contains("defaultAction")) return Error("defaultAction", "Required value");
    SBX_ASSIGN_OR_RETURN(p.default_action, Action(j["defaultAction"], "defaultAction"));
    if (j.contains("defaultErrnoRet")) {
      SBX_ASSIGN_OR_RETURN(p.default_errno_ret, Errno(j["defaultErrnoRet"], "defaultErrnoRet"));
    }
    if (j.contains("architectures")) {
      SBX_ASSIGN_OR_RETURN(p.architectures, Strings(j["architectures"], "architectures"));
      for (size_t i = 0; i < p.architectures.size(); ++i) {
        std::string path = "architectures[" + std::to_string(i) + "]";
        SBX_RETURN_IF_ERROR(CheckArch(p.architectures[i], path));
        p.arch_paths.push_back(path);
      }
    }
    if (j.contains("archMap")) {
      if (!p.architectures.empty()) {
        return Error("archMap", "may not be used together with architectures");
      }
      SBX_RETURN_IF_ERROR(ArchMap(j["archMap"], &p));
    }
    if (j.contains("flags")) {
      SBX_ASSIGN_OR_RETURN(p.flags, Strings(j["flags"], "flags"));
      for (size_t i = 0; i < p.flags.size(); ++i) {
        if (!Contains(kFlags, p.flags[i])) {
          return Error("flags[" + std::to_string(i) + "]",
                       "Unsupported value: " + Quote(p.flags[i]) +
                           ": supported values: " + QuotedList(kFlags));
        }
      }
    }
    for (const char* key : {"listenerPath", "listenerMetadata"}) {
      if (j.contains(key) && !j[key].is_string()) return Error(key, "must be a string");
    }
    if (j.contains("listenerPath") && !j["listenerPath"].get<std::string>().empty()) {
      return Error("listenerPath",
                   "Forbidden: seccomp notification (SCMP_ACT_NOTIFY) is not supported by gVisor");
    }
    if (j.contains("syscalls") && !j["syscalls"].is_null()) {
      const Json& calls = j["syscalls"];
      if (!calls.is_array()) return Error("syscalls", "must be an array");
      for (size_t i = 0; i < calls.size(); ++i) {
        SBX_ASSIGN_OR_RETURN(std::optional<Rule> rule,
                             Syscall(calls[i], "syscalls[" + std::to_string(i) + "]"));
        if (rule) p.rules.push_back(std::move(*rule));
      }
    }
    return p;
  }

 private:
  Status Error(const std::string& path, const std::string& problem) const {
    return Invalid(source_ + ": " + path + ": " + problem);
  }

  // A JSON null stands for an empty list, as in the Go encoders that write
  // most profiles (Docker's default has "subArchitectures": null).
  Result<std::vector<std::string>> Strings(const Json& v, const std::string& path) const {
    if (v.is_null()) return std::vector<std::string>();
    if (!v.is_array()) return Error(path, "must be an array of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) return Error(path + "[" + std::to_string(i) + "]", "must be a string");
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

  Result<std::string> Action(const Json& v, const std::string& path) const {
    if (!v.is_string()) return Error(path, "must be a string");
    std::string a = v.get<std::string>();
    if (docker_ && a == "SCMP_ACT_KILL_THREAD") return std::string("SCMP_ACT_KILL");
    if (Contains(kSupportedActions, a)) return a;
    std::string supported = "supported values: " + QuotedList(kSupportedActions);
    if (Contains(kUnsupportedActions, a)) {
      return Error(path,
                   "Unsupported value: " + Quote(a) + ": not implemented by gVisor; " + supported);
    }
    return Error(path, "Unsupported value: " + Quote(a) + ": " + supported);
  }

  Result<uint64_t> Errno(const Json& v, const std::string& path) const {
    std::optional<uint64_t> n = AsUint(v);
    if (!n || *n > kMaxErrno) return Error(path, "must be an integer from 0 to 65535");
    return *n;
  }

  Status CheckArch(const std::string& name, const std::string& path) const {
    bool known = std::any_of(std::begin(kArches), std::end(kArches),
                             [&](const Arch& a) { return name == a.oci; });
    if (!known) return Error(path, "unknown architecture " + Quote(name));
    if (LibseccompArch(name) == 0) {
      return Error(path, "architecture " + Quote(name) + " is not supported by libseccomp");
    }
    return Status::Ok();
  }

  // Docker's archMap: the entry for the host architecture contributes it and
  // its subArchitectures; the others are only checked.
  Status ArchMap(const Json& v, Profile* p) const {
    if (!v.is_array()) return Error("archMap", "must be an array");
    const Arch* native = NativeArch();
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string path = "archMap[" + std::to_string(i) + "]";
      const Json& e = v[i];
      if (!e.is_object()) return Error(path, "must be an object");
      for (const auto& [key, unused] : e.items()) {
        if (key != "architecture" && key != "subArchitectures") {
          return Error(path + "." + key, "unknown field");
        }
      }
      if (!e.contains("architecture") || !e["architecture"].is_string()) {
        return Error(path + ".architecture", "Required value");
      }
      std::vector<std::string> arches = {e["architecture"].get<std::string>()};
      std::vector<std::string> paths = {path + ".architecture"};
      if (e.contains("subArchitectures")) {
        SBX_ASSIGN_OR_RETURN(std::vector<std::string> subs,
                             Strings(e["subArchitectures"], path + ".subArchitectures"));
        for (size_t k = 0; k < subs.size(); ++k) {
          arches.push_back(subs[k]);
          paths.push_back(path + ".subArchitectures[" + std::to_string(k) + "]");
        }
      }
      for (size_t k = 0; k < arches.size(); ++k) {
        SBX_RETURN_IF_ERROR(CheckArch(arches[k], paths[k]));
      }
      if (native != nullptr && arches[0] == native->oci) {
        for (size_t k = 0; k < arches.size(); ++k) {
          p->architectures.push_back(arches[k]);
          p->arch_paths.push_back(paths[k]);
        }
      }
    }
    return Status::Ok();
  }

  // nullopt when Docker's includes/excludes leave the entry out on this host.
  Result<std::optional<Rule>> Syscall(const Json& s, const std::string& path) const {
    if (!s.is_object()) return Error(path, "must be an object");
    static const std::set<std::string> kOciFields = {"names", "action", "errnoRet", "args"};
    static const std::set<std::string> kDockerFields = {"name", "comment", "includes", "excludes"};
    for (const auto& [key, unused] : s.items()) {
      if (!kOciFields.contains(key) && !(docker_ && kDockerFields.contains(key))) {
        return Error(path + "." + key, "unknown field");
      }
    }
    Rule r;
    if (s.contains("name")) {
      if (s.contains("names")) return Error(path + ".name", "may not be used together with names");
      if (!s["name"].is_string()) return Error(path + ".name", "must be a string");
      r.names = {s["name"].get<std::string>()};
      r.name_paths = {path + ".name"};
    } else if (s.contains("names")) {
      SBX_ASSIGN_OR_RETURN(r.names, Strings(s["names"], path + ".names"));
      for (size_t i = 0; i < r.names.size(); ++i) {
        r.name_paths.push_back(path + ".names[" + std::to_string(i) + "]");
      }
    }
    if (r.names.empty()) return Error(path + ".names", "Required value");
    for (size_t i = 0; i < r.names.size(); ++i) {
      if (r.names[i].empty()) return Error(r.name_paths[i], "Required value");
    }
    if (!s.contains("action")) return Error(path + ".action", "Required value");
    SBX_ASSIGN_OR_RETURN(r.action, Action(s["action"], path + ".action"));
    if (s.contains("errnoRet")) {
      SBX_ASSIGN_OR_RETURN(r.errno_ret, Errno(s["errnoRet"], path + ".errnoRet"));
    }
    if (s.contains("args") && !s["args"].is_null()) {
      const Json& args = s["args"];
      if (!args.is_array()) return Error(path + ".args", "must be an array");
      for (size_t i = 0; i < args.size(); ++i) {
        SBX_ASSIGN_OR_RETURN(Arg a, Argument(args[i], path + ".args[" + std::to_string(i) + "]"));
        r.args.push_back(std::move(a));
      }
    }
    if (s.contains("comment") && !s["comment"].is_string()) {
      return Error(path + ".comment", "must be a string");
    }
    bool applies = true;
    for (const char* key : {"includes", "excludes"}) {
      if (!s.contains(key)) continue;
      bool includes = std::string_view(key) == "includes";
      SBX_ASSIGN_OR_RETURN(bool holds, Condition(s[key], path + "." + key, includes));
      if (includes ? !holds : holds) applies = false;
    }
    if (!applies) return std::optional<Rule>();
    return std::optional<Rule>(std::move(r));
  }

  Result<Arg> Argument(const Json& v, const std::string& path) const {
    if (!v.is_object()) return Error(path, "must be an object");
    for (const auto& [key, unused] : v.items()) {
      if (key != "index" && key != "value" && key != "valueTwo" && key != "op") {
        return Error(path + "." + key, "unknown field");
      }
    }
    Arg a;
    if (!v.contains("index")) return Error(path + ".index", "Required value");
    std::optional<uint64_t> index = AsUint(v["index"]);
    if (!index || *index >= kMaxArgs)
      return Error(path + ".index", "must be an integer from 0 to 5");
    a.index = static_cast<unsigned>(*index);
    for (const char* key : {"value", "valueTwo"}) {
      if (!v.contains(key)) continue;
      std::optional<uint64_t> n = AsUint(v[key]);
      if (!n) return Error(path + "." + key, "must be an unsigned 64-bit integer");
      (std::string_view(key) == "value" ? a.value : a.value_two) = *n;
    }
    if (!v.contains("op")) return Error(path + ".op", "Required value");
    if (!v["op"].is_string()) return Error(path + ".op", "must be a string");
    a.op = v["op"].get<std::string>();
    bool known = std::any_of(std::begin(kOperators), std::end(kOperators),
                             [&](const Operator& o) { return a.op == o.name; });
    if (!known) {
      std::vector<std::string> names;
      for (const Operator& o : kOperators) names.push_back(o.name);
      return Error(path + ".op", "Unsupported value: " + Quote(a.op) +
                                     ": supported values: " + QuotedList(names));
    }
    return a;
  }

  // Whether every condition of an `includes` object holds (includes=true) or
  // any condition of an `excludes` object holds (includes=false), with
  // Docker's semantics.
  Result<bool> Condition(const Json& v, const std::string& path, bool includes) const {
    if (!v.is_object()) return Error(path, "must be an object");
    std::vector<bool> results;
    for (const auto& [key, value] : v.items()) {
      const std::string field = path + "." + key;
      if (key == "caps" || key == "arches") {
        SBX_ASSIGN_OR_RETURN(std::vector<std::string> list, Strings(value, field));
        if (list.empty()) continue;
        if (key == "arches") {
          const Arch* native = NativeArch();
          results.push_back(native != nullptr &&
                            (Contains(list, native->go) || Contains(list, native->oci)));
        } else if (includes) {
          results.push_back(std::all_of(list.begin(), list.end(),
                                        [&](const std::string& c) { return Contains(caps_, c); }));
        } else {
          results.push_back(std::any_of(list.begin(), list.end(),
                                        [&](const std::string& c) { return Contains(caps_, c); }));
        }
      } else if (key == "minKernel") {
        SBX_ASSIGN_OR_RETURN(auto want, KernelVersion(value, field));
        results.push_back(HostKernelVersion() >= want);
      } else {
        return Error(field, "unknown field");
      }
    }
    if (includes) return std::all_of(results.begin(), results.end(), [](bool b) { return b; });
    return std::any_of(results.begin(), results.end(), [](bool b) { return b; });
  }

  Result<std::pair<int, int>> KernelVersion(const Json& v, const std::string& path) const {
    Status bad = Error(path, "must be a kernel version \"<major>.<minor>\"");
    if (!v.is_string()) return bad;
    std::vector<std::string> parts = Split(v.get<std::string>(), '.');
    if (parts.size() != 2) return bad;
    int n[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      const std::string& s = parts[i];
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n[i]);
      if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return bad;
    }
    return std::pair<int, int>(n[0], n[1]);
  }

  const std::string& source_;
  const bool docker_;
  const std::vector<std::string>& caps_;
};

uint32_t ScmpAction(const std::string& action, std::optional<uint64_t> errno_ret) {
  uint32_t code = static_cast<uint32_t>(errno_ret.value_or(EPERM));
  if (action == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(code);
  if (action == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(code);
  if (action == "SCMP_ACT_KILL") return SCMP_ACT_KILL;
  if (action == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  return SCMP_ACT_ALLOW;
}

scmp_compare ScmpOperator(const std::string& op) {
  for (const Operator& o : kOperators) {
    if (op == o.name) return o.op;
  }
  return _SCMP_CMP_MIN;  // unreachable: the parser accepts known operators only
}

// Builds the whole filter with libseccomp and returns its BPF program.
Result<std::string> Compile(const Profile& p, const std::string& source) {
  auto error = [&](const std::string& path, const std::string& problem) {
    return Invalid(source + ": " + path + ": " + problem);
  };
  const uint32_t default_action = ScmpAction(p.default_action, p.default_errno_ret);
  UniqueFilter filter(seccomp_init(default_action));
  if (!filter) return Internal(source + ": seccomp_init failed");
  for (size_t i = 0; i < p.architectures.size(); ++i) {
    int rc = seccomp_arch_add(filter.get(), LibseccompArch(p.architectures[i]));
    if (rc < 0 && rc != -EEXIST) {
      return error(p.arch_paths[i], "libseccomp: " + std::string(std::strerror(-rc)));
    }
  }
  for (const Rule& r : p.rules) {
    std::vector<int> numbers;
    for (size_t i = 0; i < r.names.size(); ++i) {
      int nr = seccomp_syscall_resolve_name(r.names[i].c_str());
      if (nr == __NR_SCMP_ERROR && !Contains(kSyscallsNewerThanLibseccomp, r.names[i])) {
        return error(r.name_paths[i], "unknown syscall " + Quote(r.names[i]));
      }
      numbers.push_back(nr);
    }
    const uint32_t action = ScmpAction(r.action, r.errno_ret);
    // libseccomp refuses a rule that repeats the default action; runc and
    // gVisor treat it as a no-op, and so does this.
    if (action == default_action) continue;
    std::vector<scmp_arg_cmp> conditions;
    unsigned per_index[kMaxArgs] = {};
    bool repeated_index = false;
    for (const Arg& a : r.args) {
      conditions.push_back({a.index, ScmpOperator(a.op), a.value, a.value_two});
      repeated_index = repeated_index || ++per_index[a.index] > 1;
    }
    for (size_t i = 0; i < r.names.size(); ++i) {
      if (numbers[i] == __NR_SCMP_ERROR) continue;
      int rc = 0;
      if (repeated_index) {
        // runc's (and gVisor's) rule: several conditions on the same argument
        // are alternatives, each its own rule.
        for (const scmp_arg_cmp& c : conditions) {
          rc = seccomp_rule_add_array(filter.get(), action, numbers[i], 1, &c);
          if (rc < 0) break;
        }
      } else {
        rc = seccomp_rule_add_array(filter.get(), action, numbers[i],
                                    static_cast<unsigned>(conditions.size()), conditions.data());
      }
      if (rc < 0) {
        return error(r.name_paths[i], "libseccomp refused the rule for " + Quote(r.names[i]) +
                                          ": " + std::strerror(-rc));
      }
    }
  }
  // libseccomp 2.5 exports to a file descriptor only.
  UniqueFd sink(::memfd_create("sbx-seccomp-bpf", MFD_CLOEXEC));
  if (!sink.valid()) return ErrnoStatus("memfd_create", errno);
  if (int rc = seccomp_export_bpf(filter.get(), sink.get()); rc < 0) {
    return Invalid(source + ": compiling the filter: " + std::strerror(-rc));
  }
  std::string program;
  char buf[8192];
  for (off_t at = 0;;) {
    ssize_t n = ::pread(sink.get(), buf, sizeof(buf), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read the compiled seccomp filter", errno);
    if (n == 0) break;
    program.append(buf, static_cast<size_t>(n));
    at += n;
  }
  if (program.empty() || program.size() % sizeof(sock_filter) != 0) {
    return Internal(source + ": libseccomp exported " + std::to_string(program.size()) +
                    " bytes, not a BPF program");
  }
  return program;
}

Json ToOciJson(const Profile& p) {
  Json out = {{"defaultAction", p.default_action}};
  if (p.default_errno_ret) out["defaultErrnoRet"] = *p.default_errno_ret;
  if (!p.architectures.empty()) out["architectures"] = p.architectures;
  if (!p.flags.empty()) out["flags"] = p.flags;
  Json syscalls = Json::array();
  for (const Rule& r : p.rules) {
    Json s = {{"names", r.names}, {"action", r.action}};
    if (r.errno_ret) s["errnoRet"] = *r.errno_ret;
    if (!r.args.empty()) {
      Json args = Json::array();
      for (const Arg& a : r.args) {
        args.push_back(
            {{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", a.op}});
      }
      s["args"] = std::move(args);
    }
    syscalls.push_back(std::move(s));
  }
  out["syscalls"] = std::move(syscalls);
  return out;
}

std::string WithCapPrefix(std::string_view name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper.starts_with("CAP_") ? upper : "CAP_" + upper;
}

}  // namespace

Result<Json> LoadSeccompProfile(std::string_view text, const std::string& source) {
  return LoadSeccompProfile(text, source, DefaultCapabilities());
}

Result<Json> LoadSeccompProfile(std::string_view text, const std::string& source,
                                const std::vector<std::string>& capabilities) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    if (size_t end = what.find("] "); end != std::string::npos) what = what.substr(end + 2);
    return InvalidArgument(source + ": " + what);
  }
  SBX_ASSIGN_OR_RETURN(Profile p, ProfileParser(source, /*docker=*/true, capabilities).Parse(j));
  SBX_RETURN_IF_ERROR(Compile(p, source).status());
  return ToOciJson(p);
}

Status ValidateSeccomp(const Json& oci_seccomp, const std::string& source) {
  return CompileSeccompBpf(oci_seccomp, source).status();
}

Result<std::string> CompileSeccompBpf(const Json& oci_seccomp, const std::string& source) {
  const std::vector<std::string> no_caps;
  SBX_ASSIGN_OR_RETURN(Profile p,
                       ProfileParser(source, /*docker=*/false, no_caps).Parse(oci_seccomp));
  return Compile(p, source);
}

Json RuntimeDefaultSeccompProfile() {
  static const std::vector<std::string> kDenied = {
      // Kernel code and the machine itself.
      "create_module", "init_module", "finit_module", "delete_module", "query_module",
      "get_kernel_syms", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
      // File-system topology.
      "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
      "open_tree", "mount_setattr",
      // Kernel-wide facilities that are not namespaced.
      "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "acct", "quotactl",
      "io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at"};
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"syscalls",
           Json::array({{{"names", kDenied}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EPERM}}})}};
}

std::vector<std::string> AllCapabilities() {
  return {"CAP_CHOWN",
          "CAP_DAC_OVERRIDE",
          "CAP_DAC_READ_SEARCH",
          "CAP_FOWNER",
          "CAP_FSETID",
          "CAP_KILL",
          "CAP_SETGID",
          "CAP_SETUID",
          "CAP_SETPCAP",
          "CAP_LINUX_IMMUTABLE",
          "CAP_NET_BIND_SERVICE",
          "CAP_NET_BROADCAST",
          "CAP_NET_ADMIN",
          "CAP_NET_RAW",
          "CAP_IPC_LOCK",
          "CAP_IPC_OWNER",
          "CAP_SYS_MODULE",
          "CAP_SYS_RAWIO",
          "CAP_SYS_CHROOT",
          "CAP_SYS_PTRACE",
          "CAP_SYS_PACCT",
          "CAP_SYS_ADMIN",
          "CAP_SYS_BOOT",
          "CAP_SYS_NICE",
          "CAP_SYS_RESOURCE",
          "CAP_SYS_TIME",
          "CAP_SYS_TTY_CONFIG",
          "CAP_MKNOD",
          "CAP_LEASE",
          "CAP_AUDIT_WRITE",
          "CAP_AUDIT_CONTROL",
          "CAP_SETFCAP",
          "CAP_MAC_OVERRIDE",
          "CAP_MAC_ADMIN",
          "CAP_SYSLOG",
          "CAP_WAKE_ALARM",
          "CAP_BLOCK_SUSPEND",
          "CAP_AUDIT_READ",
          "CAP_PERFMON",
          "CAP_BPF",
          "CAP_CHECKPOINT_RESTORE"};
}

Result<std::vector<std::string>> ApplyCapabilityChanges(const std::vector<std::string>& base,
                                                        const std::vector<std::string>& add,
                                                        const std::vector<std::string>& drop,
                                                        const std::string& field_path) {
  const std::vector<std::string> all = AllCapabilities();
  // Canonical names, with "" standing for ALL.
  auto canonical = [&](const std::vector<std::string>& names,
                       const char* field) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    for (size_t i = 0; i < names.size(); ++i) {
      if (ToLower(names[i]) == "all") {
        out.emplace_back();
        continue;
      }
      std::string cap = WithCapPrefix(names[i]);
      if (!Contains(all, cap)) {
        return Invalid(field_path + "." + field + "[" + std::to_string(i) +
                       "]: Unsupported value: " + Quote(names[i]) + ": unknown capability");
      }
      out.push_back(std::move(cap));
    }
    return out;
  };
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> to_add, canonical(add, "add"));
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> to_drop, canonical(drop, "drop"));

  std::vector<std::string> caps;
  auto insert = [&](const std::string& c) {
    if (!Contains(caps, c)) caps.push_back(c);
  };
  for (const std::string& c : base) insert(c);
  if (Contains(to_add, "")) {
    for (const std::string& c : all) insert(c);
  }
  if (Contains(to_drop, "")) caps.clear();
  for (const std::string& c : to_add) {
    if (!c.empty()) insert(c);
  }
  std::erase_if(caps, [&](const std::string& c) { return Contains(to_drop, c); });
  return caps;
}

}  // namespace sbx::oci
