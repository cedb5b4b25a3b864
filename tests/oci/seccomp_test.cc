// Seccomp profile loading and validation (Docker and OCI forms, refused
// profiles with the field that is wrong), the RuntimeDefault profile, the
// compiled BPF program (loaded into a child process), and capability
// add/drop.
#include "oci/seccomp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace sbx::oci {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

#if defined(__x86_64__)
constexpr char kNativeArch[] = "SCMP_ARCH_X86_64";
constexpr char kNativeSubArch[] = "SCMP_ARCH_X86";
constexpr char kNativeGoArch[] = "amd64";
constexpr char kOtherArch[] = "SCMP_ARCH_AARCH64";
constexpr char kOtherGoArch[] = "arm64";
#elif defined(__aarch64__)
constexpr char kNativeArch[] = "SCMP_ARCH_AARCH64";
constexpr char kNativeSubArch[] = "SCMP_ARCH_ARM";
constexpr char kNativeGoArch[] = "arm64";
constexpr char kOtherArch[] = "SCMP_ARCH_X86_64";
constexpr char kOtherGoArch[] = "amd64";
#else
#error "seccomp tests know x86_64 and aarch64 hosts only"
#endif

Json Parse(const std::string& text) { return Json::parse(text); }

TEST(SeccompTest, RuntimeDefaultProfileValidates) {
  Json profile = RuntimeDefaultSeccompProfile();
  ASSERT_TRUE(ValidateSeccomp(profile, "RuntimeDefault").ok());
  EXPECT_EQ(profile["defaultAction"], "SCMP_ACT_ALLOW");
  std::vector<std::string> denied = profile["syscalls"][0]["names"];
  for (const char* name : {"mount", "kexec_load", "init_module", "bpf", "keyctl", "reboot"}) {
    EXPECT_NE(std::find(denied.begin(), denied.end(), name), denied.end()) << name;
  }
  // gVisor implements these itself; debuggers and nested sandboxes need them.
  for (const char* name : {"ptrace", "unshare", "clone"}) {
    EXPECT_EQ(std::find(denied.begin(), denied.end(), name), denied.end()) << name;
  }
  // Loading its own output gives the same object back.
  auto loaded = LoadSeccompProfile(profile.dump(), "RuntimeDefault");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*loaded, profile);
}

TEST(SeccompTest, RefusedProfilesNameSourceAndField) {
  struct Case {
    std::string text, want;
    Code code = Code::kInvalid;
  } cases[] = {
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
          {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
          {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
          {"names": ["open"], "action": "SCMP_ACT_ERRNO"},
          {"names": ["mkdir", "mkdirx"], "action": "SCMP_ACT_ERRNO"}]})",
       R"(profile.json: syscalls[3].names[1]: unknown syscall "mkdirx")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"name": "mkdirx", "action": "SCMP_ACT_ERRNO"}]})",
       R"(profile.json: syscalls[0].name: unknown syscall "mkdirx")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]})",
       R"(profile.json: syscalls[0].action: Unsupported value: "SCMP_ACT_EXPLODE": supported )"
       R"(values: "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_TRAP", )"
       R"("SCMP_ACT_TRACE")"},
      {R"({"defaultAction": "SCMP_ACT_LOG"})",
       R"(profile.json: defaultAction: Unsupported value: "SCMP_ACT_LOG": not implemented by gVisor)"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]})",
       R"(syscalls[0].action: Unsupported value: "SCMP_ACT_KILL_PROCESS": not implemented by gVisor)"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"],
           "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_SAME"}]}]})",
       R"(profile.json: syscalls[0].args[0].op: Unsupported value: "SCMP_CMP_SAME")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"],
           "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 8, "op": "SCMP_CMP_EQ"}]}]})",
       "profile.json: syscalls[0].args[0].index: must be an integer from 0 to 5"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"],
           "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]})",
       "profile.json: syscalls[0].args[0].value: must be an unsigned 64-bit integer"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"],
           "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1}]}]})",
       "profile.json: syscalls[0].args[0].op: Required value"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
           "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]})",
       "profile.json: syscalls[0].errnoRet: must be an integer from 0 to 65535"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"name": "mkdir", "names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]})",
       "profile.json: syscalls[0].name: may not be used together with names"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]})",
       "profile.json: syscalls[0].names: Required value"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]}]})",
       "profile.json: syscalls[0].action: Required value"},
      {R"({"syscalls": []})", "profile.json: defaultAction: Required value"},
      {R"({"defaultActon": "SCMP_ACT_ALLOW"})", "profile.json: defaultActon: unknown field"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errno": 1}]})",
       "profile.json: syscalls[0].errno: unknown field"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})",
       R"(profile.json: architectures[0]: unknown architecture "SCMP_ARCH_VAX")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "archMap": []})",
       "profile.json: archMap: may not be used together with architectures"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW",
           "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["x86"]}]})",
       R"(profile.json: archMap[0].subArchitectures[0]: unknown architecture "x86")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]})",
       R"(profile.json: flags[0]: Unsupported value: "SECCOMP_FILTER_FLAG_FAST")"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/notify.sock"})",
       "profile.json: listenerPath: Forbidden: seccomp notification"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
           "action": "SCMP_ACT_ERRNO", "includes": {"kernel": "5.0"}}]})",
       "profile.json: syscalls[0].includes.kernel: unknown field"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
           "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "5"}}]})",
       R"(profile.json: syscalls[0].excludes.minKernel: must be a kernel version)"},
      {R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}})",
       "profile.json: syscalls: must be an array"},
      {R"([])", "profile.json: a seccomp profile must be a JSON object"},
      {R"({"defaultAction": )", "profile.json: parse error", Code::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto got = LoadSeccompProfile(c.text, "profile.json");
    ASSERT_FALSE(got.ok()) << c.text;
    EXPECT_EQ(got.status().code(), c.code) << got.status().ToString();
    EXPECT_THAT(got.status().message(), HasSubstr(c.want)) << c.text;
  }
}

TEST(SeccompTest, DockerProfileBecomesOciForThisHost) {
  Json docker = {
      {"defaultAction", "SCMP_ACT_ERRNO"},
      {"defaultErrnoRet", 38},
      {"archMap",
       {{{"architecture", kOtherArch}, {"subArchitectures", nullptr}},
        {{"architecture", kNativeArch}, {"subArchitectures", {kNativeSubArch}}}}},
      {"syscalls",
       {
           {{"name", "read"}, {"action", "SCMP_ACT_ALLOW"}, {"comment", "one name"}},
           {{"names", {"write"}}, {"action", "SCMP_ACT_ALLOW"}, {"includes", Json::object()}},
           {{"names", {"mount"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"includes", {{"caps", {"CAP_SYS_ADMIN"}}}}},
           {{"names", {"chown"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"includes", {{"caps", {"CAP_CHOWN"}}}}},
           {{"names", {"setns"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"excludes", {{"caps", {"CAP_CHOWN"}}}}},
           {{"names", {"arch_only"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"includes", {{"arches", {kOtherGoArch}}}}},
           {{"names", {"getpid"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"includes", {{"arches", {kNativeGoArch}}, {"minKernel", "1.0"}}}},
           {{"names", {"getppid"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"includes", {{"minKernel", "999.0"}}}},
           {{"names", {"getuid"}},
            {"action", "SCMP_ACT_ALLOW"},
            {"excludes", {{"minKernel", "999.0"}}}},
           {{"names", {"kill"}}, {"action", "SCMP_ACT_KILL_THREAD"}},
       }},
  };
  auto got = LoadSeccompProfile(docker.dump(), "docker.json");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::vector<std::string> names;
  for (const Json& s : (*got)["syscalls"]) names.push_back(s["names"][0]);
  // mount needs CAP_SYS_ADMIN (not in the default set); setns is excluded
  // when CAP_CHOWN is held; arch_only is for the other architecture (and
  // would be an unknown syscall if it were checked); getppid needs a kernel
  // from the future.
  EXPECT_THAT(names, ElementsAre("read", "write", "chown", "getpid", "getuid", "kill"));
  EXPECT_EQ((*got)["architectures"], Json::array({kNativeArch, kNativeSubArch}));
  EXPECT_EQ((*got)["defaultErrnoRet"], 38);
  EXPECT_EQ((*got)["syscalls"][0], Parse(R"({"names": ["read"], "action": "SCMP_ACT_ALLOW"})"));
  EXPECT_EQ((*got)["syscalls"][5]["action"], "SCMP_ACT_KILL");
  EXPECT_TRUE(ValidateSeccomp(*got, "converted").ok());

  // With the container's own capability set the includes/excludes change.
  auto admin = LoadSeccompProfile(docker.dump(), "docker.json", {"CAP_SYS_ADMIN"});
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  names.clear();
  for (const Json& s : (*admin)["syscalls"]) names.push_back(s["names"][0]);
  EXPECT_THAT(names, ElementsAre("read", "write", "mount", "setns", "getpid", "getuid", "kill"));
}

TEST(SeccompTest, AcceptsWhatRuncAndGvisorAccept) {
  // Names of other architectures and of syscalls newer than libseccomp, a
  // rule that repeats the default action, conditions on the same argument
  // (alternatives) and on different arguments (all must hold), MASKED_EQ with
  // a full 64-bit value, and errno values.
  const char* profile = R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
    "syscalls": [
      {"names": ["socketcall", "mseal", "read"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 18446744073709551615, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"},
        {"index": 1, "value": 4096, "op": "SCMP_CMP_GE"}]},
      {"names": ["mkdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
      {"names": ["rmdir"], "action": "SCMP_ACT_TRAP"}
    ]})";
  Json oci = Parse(profile);
  EXPECT_TRUE(ValidateSeccomp(oci, "oci.json").ok()) << ValidateSeccomp(oci, "oci.json").ToString();
  auto loaded = LoadSeccompProfile(profile, "oci.json");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)["syscalls"][0]["names"], Json::array({"socketcall", "mseal", "read"}));
  EXPECT_EQ((*loaded)["syscalls"][3]["args"][0]["value"], UINT64_MAX);
  EXPECT_EQ((*loaded)["flags"], Json::array({"SECCOMP_FILTER_FLAG_TSYNC"}));
}

TEST(SeccompTest, OciValidationRefusesDockerOnlyFields) {
  Json docker = Parse(R"({"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"}]})");
  Status s = ValidateSeccomp(docker, "spec");
  EXPECT_EQ(s.message(), "spec: syscalls[0].name: unknown field");
  s = ValidateSeccomp(Parse(R"({"defaultAction": "SCMP_ACT_KILL_THREAD"})"), "spec");
  EXPECT_THAT(s.message(), HasSubstr("not implemented by gVisor"));
  s = ValidateSeccomp(Parse(R"({"defaultAction": "SCMP_ACT_ALLOW", "archMap": []})"), "spec");
  EXPECT_EQ(s.message(), "spec: archMap: unknown field");
}

std::vector<sock_filter> Instructions(const std::string& program) {
  std::vector<sock_filter> out(program.size() / sizeof(sock_filter));
  std::memcpy(out.data(), program.data(), out.size() * sizeof(sock_filter));
  return out;
}

// In a child process: load `program` as a seccomp filter, then mkdir `dir`
// and return its errno (0 on success) as the exit code; 100+ for a failure
// to load.
int MkdirErrnoUnderFilter(const std::string& program, const std::string& dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<sock_filter> insns = Instructions(program);
    sock_fprog prog = {static_cast<unsigned short>(insns.size()), insns.data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(100);
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) ::_exit(101);
    ::_exit(::mkdir(dir.c_str(), 0755) == 0 ? 0 : errno);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(SeccompBpfTest, CompiledProgramIsWholeInstructionsAndDiffersByProfile) {
  auto allow_all = CompileSeccompBpf(Parse(R"({"defaultAction": "SCMP_ACT_ALLOW"})"), "a");
  auto runtime_default = CompileSeccompBpf(RuntimeDefaultSeccompProfile(), "RuntimeDefault");
  ASSERT_TRUE(allow_all.ok()) << allow_all.status().ToString();
  ASSERT_TRUE(runtime_default.ok()) << runtime_default.status().ToString();
  for (const std::string* p : {&*allow_all, &*runtime_default}) {
    ASSERT_FALSE(p->empty());
    EXPECT_EQ(p->size() % sizeof(sock_filter), 0u);
    EXPECT_LE(p->size() / sizeof(sock_filter), size_t{BPF_MAXINSNS});
    // libseccomp's programs start by loading seccomp_data.arch.
    sock_filter first = Instructions(*p).front();
    EXPECT_EQ(first.code, BPF_LD | BPF_W | BPF_ABS);
    EXPECT_EQ(first.k, offsetof(seccomp_data, arch));
  }
  EXPECT_NE(*allow_all, *runtime_default);
}

TEST(SeccompBpfTest, ProgramEncodesErrnoRetAndDefaultErrnoRet) {
  auto returns = [](const std::string& program, uint32_t k) {
    for (const sock_filter& f : Instructions(program)) {
      if (f.code == (BPF_RET | BPF_K) && f.k == k) return true;
    }
    return false;
  };
  auto p = CompileSeccompBpf(Parse(R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                   {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})"),
                             "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(returns(*p, SECCOMP_RET_ERRNO | EACCES));
  EXPECT_TRUE(returns(*p, SECCOMP_RET_ERRNO | ENOSYS));
  EXPECT_TRUE(returns(*p, SECCOMP_RET_ALLOW));
  EXPECT_FALSE(returns(*p, SECCOMP_RET_ERRNO | EPERM));
}

TEST(SeccompBpfTest, LoadedProgramDeniesWhatTheProfileDenies) {
  char tmpl[] = "/tmp/sbx-seccomp-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto deny = CompileSeccompBpf(Parse(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})"),
                                "deny");
  auto allow = CompileSeccompBpf(Parse(R"({"defaultAction": "SCMP_ACT_ALLOW"})"), "allow");
  ASSERT_TRUE(deny.ok() && allow.ok());
  EXPECT_EQ(MkdirErrnoUnderFilter(*deny, dir + "/denied"), EACCES);
  EXPECT_EQ(MkdirErrnoUnderFilter(*allow, dir + "/allowed"), 0);
  ::rmdir((dir + "/allowed").c_str());
  ::rmdir(dir.c_str());
}

TEST(SeccompBpfTest, InvalidProfileIsRefusedAsByValidation) {
  Json bad = Parse(R"({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdirx"], "action": "SCMP_ACT_ERRNO"}]})");
  auto p = CompileSeccompBpf(bad, "spec");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), ValidateSeccomp(bad, "spec").message());
  EXPECT_THAT(p.status().message(), HasSubstr("unknown syscall \"mkdirx\""));
}

TEST(CapabilitiesTest, AllCapabilitiesIsTheLinuxList) {
  std::vector<std::string> all = AllCapabilities();
  EXPECT_EQ(all.size(), 41u);
  EXPECT_EQ(all.front(), "CAP_CHOWN");
  EXPECT_EQ(all.back(), "CAP_CHECKPOINT_RESTORE");
  for (const std::string& c : DefaultCapabilities()) {
    EXPECT_NE(std::find(all.begin(), all.end(), c), all.end()) << c;
  }
}

TEST(CapabilitiesTest, AddAndDropAsContainerdDoes) {
  const std::vector<std::string> base = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"};
  struct Case {
    std::vector<std::string> add, drop, want;
  } cases[] = {
      {{}, {}, base},
      {{"NET_ADMIN"}, {}, {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_ADMIN"}},
      {{"CAP_NET_ADMIN", "net_admin"},
       {},
       {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_ADMIN"}},
      {{}, {"NET_RAW"}, {"CAP_CHOWN", "CAP_KILL"}},
      {{"CHOWN"}, {"CHOWN"}, {"CAP_KILL", "CAP_NET_RAW"}},  // drop wins
      {{"NET_BIND_SERVICE"}, {"ALL"}, {"CAP_NET_BIND_SERVICE"}},
      {{}, {"all"}, {}},
      {{"ALL"}, {"ALL"}, {}},
      {{"ALL"}, {"SYS_ADMIN"}, {}},  // checked below: everything but SYS_ADMIN
  };
  for (size_t i = 0; i + 1 < std::size(cases); ++i) {
    auto got = ApplyCapabilityChanges(base, cases[i].add, cases[i].drop, "caps");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, cases[i].want) << i;
  }
  auto all_but_admin = ApplyCapabilityChanges(base, {"ALL"}, {"SYS_ADMIN"}, "caps");
  ASSERT_TRUE(all_but_admin.ok());
  EXPECT_EQ(all_but_admin->size(), AllCapabilities().size() - 1);
  EXPECT_EQ(std::find(all_but_admin->begin(), all_but_admin->end(), "CAP_SYS_ADMIN"),
            all_but_admin->end());
}

TEST(CapabilitiesTest, UnknownNameNamesTheField) {
  const std::string path = "spec.podTemplate.spec.containers[0].securityContext.capabilities";
  auto got = ApplyCapabilityChanges(DefaultCapabilities(), {"NET_ADMIN", "NET_WIZARD"}, {}, path);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kInvalid);
  EXPECT_EQ(got.status().message(),
            path + ".add[1]: Unsupported value: \"NET_WIZARD\": unknown capability");
  got = ApplyCapabilityChanges(DefaultCapabilities(), {}, {"CAP_"}, path);
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr(path + ".drop[0]: Unsupported value: \"CAP_\""));
}

}  // namespace
}  // namespace sbx::oci
