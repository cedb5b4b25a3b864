// Kubernetes resource semantics: container requests/limits parsing and its
// field errors, the pod-level cgroup limits, downward-API resourceFieldRef
// values, and OOM kill counts read from v1 and v2 cgroup layouts.
#include "daemon/pod_resources.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {

std::ostream& operator<<(std::ostream& os, const ContainerResources& r) {
  return os << "{cpu " << r.cpu_request_milli << "/" << r.cpu_limit_milli << "m, memory "
            << r.memory_request << "/" << r.memory_limit << ", ephemeral " << r.ephemeral_request
            << "/" << r.ephemeral_limit << "}";
}

namespace {

using api::Json;

constexpr char kC0[] = "spec.podTemplate.spec.containers[0]";
constexpr int64_t kMi = 1024 * 1024;
constexpr int64_t kGi = 1024 * kMi;

Json Container(const char* resources) {
  Json c = {{"name", "app"}, {"image", "busybox"}};
  if (resources != nullptr) c["resources"] = Json::parse(resources);
  return c;
}

TEST(ParseContainerResourcesTest, Table) {
  struct Case {
    const char* name;
    const char* resources;  // nullptr = no resources field
    ContainerResources want;
  } cases[] = {
      {"absent", nullptr, {}},
      {"null", "null", {}},
      {"empty", "{}", {}},
      {"limits_only_default_requests",
       R"({"limits":{"cpu":"500m","memory":"128Mi","ephemeral-storage":"1Gi"}})",
       {.cpu_request_milli = 500,
        .cpu_limit_milli = 500,
        .memory_request = 128 * kMi,
        .memory_limit = 128 * kMi,
        .ephemeral_request = kGi,
        .ephemeral_limit = kGi}},
      {"requests_only",
       R"({"requests":{"cpu":"0.25","memory":"1G"}})",
       {.cpu_request_milli = 250, .memory_request = 1000000000}},
      {"requests_below_limits",
       R"({"requests":{"cpu":"100m","memory":"64Mi"},"limits":{"cpu":"2","memory":"1Gi"}})",
       {.cpu_request_milli = 100,
        .cpu_limit_milli = 2000,
        .memory_request = 64 * kMi,
        .memory_limit = kGi}},
      {"request_defaults_per_resource",
       R"({"requests":{"cpu":"100m"},"limits":{"cpu":"1","memory":"256Mi"}})",
       {.cpu_request_milli = 100,
        .cpu_limit_milli = 1000,
        .memory_request = 256 * kMi,
        .memory_limit = 256 * kMi}},
      {"numbers",
       R"({"limits":{"cpu":2,"memory":1073741824},"requests":{"cpu":0.5}})",
       {.cpu_request_milli = 500,
        .cpu_limit_milli = 2000,
        .memory_request = kGi,
        .memory_limit = kGi}},
      {"cpu_rounds_up_to_a_millicore",
       R"({"limits":{"cpu":"0.0001"}})",
       {.cpu_request_milli = 1, .cpu_limit_milli = 1}},
      {"equal_request_and_limit",
       R"({"requests":{"memory":"1Gi"},"limits":{"memory":"1024Mi"}})",
       {.memory_request = kGi, .memory_limit = kGi}},
      {"claims_ignored", R"({"claims":[{"name":"gpu"}]})", {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ParseContainerResources(Container(c.resources), kC0);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, c.want);
  }
}

TEST(ParseContainerResourcesTest, ErrorsNameTheField) {
  const std::string p = std::string(kC0) + ".resources";
  const std::string format =
      "quantities must match the regular expression "
      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  struct Case {
    const char* name;
    const char* resources;
    std::string message;
  } cases[] = {
      {"bad_suffix", R"({"limits":{"memory":"2Gx"}})",
       p + ".limits.memory: Invalid value: \"2Gx\": " + format},
      {"no_digits", R"({"requests":{"cpu":"m"}})",
       p + ".requests.cpu: Invalid value: \"m\": " + format},
      {"too_large", R"({"limits":{"ephemeral-storage":"1e100"}})",
       p + ".limits.ephemeral-storage: Invalid value: \"1e100\": quantity too large"},
      {"negative", R"({"requests":{"cpu":"-1"}})",
       p + ".requests.cpu: Invalid value: \"-1\": must be greater than or equal to 0"},
      {"not_a_quantity", R"({"limits":{"memory":true}})",
       p + ".limits.memory: Invalid value: true: must be a quantity"},
      {"unsupported_name", R"({"limits":{"nvidia.com/gpu":"1"}})",
       p + ".limits[nvidia.com/gpu]: Unsupported value: \"nvidia.com/gpu\": supported values: "
           "\"cpu\", \"ephemeral-storage\", \"memory\""},
      {"hugepages_unsupported", R"({"requests":{"hugepages-2Mi":"2Mi"}})",
       p + ".requests[hugepages-2Mi]: Unsupported value: \"hugepages-2Mi\": supported values: "
           "\"cpu\", \"ephemeral-storage\", \"memory\""},
      {"cpu_request_above_limit", R"({"requests":{"cpu":"2"},"limits":{"cpu":"1"}})",
       p + ".requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"},
      {"memory_request_above_limit", R"({"requests":{"memory":"2Gi"},"limits":{"memory":"1Gi"}})",
       p + ".requests: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi"},
      {"limits_not_an_object", R"({"limits":["cpu"]})",
       p + ".limits: Invalid value: [\"cpu\"]: must be an object"},
      {"resources_not_an_object", R"("big")", p + ": Invalid value: \"big\": must be an object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ParseContainerResources(Container(c.resources), kC0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalid);
    EXPECT_EQ(r.status().message(), c.message);
  }
}

std::string Show(const oci::BundleResources& r) {
  return "memory " + std::to_string(r.memory_limit) + " reservation " +
         std::to_string(r.memory_reservation) + " quota " + std::to_string(r.cpu_quota) + "/" +
         std::to_string(r.cpu_period) + " shares " + std::to_string(r.cpu_shares) + " pids " +
         std::to_string(r.pids_limit);
}

TEST(PodResourcesTest, Table) {
  struct Case {
    const char* name;
    const char* pod_spec;
    ResourceDefaults defaults;
    oci::BundleResources want;
  } cases[] = {
      {"nothing_declared_no_defaults", R"({"containers":[{"name":"a"}]})", {}, {}},
      {"defaults_when_nothing_declared",
       R"({"containers":[{"name":"a"}]})",
       {.memory_limit = kGi, .cpu_limit_milli = 1500, .pids_limit = 4096},
       {.memory_limit = kGi, .cpu_quota = 150000, .pids_limit = 4096}},
      {"one_container",
       R"({"containers":[{"name":"a","resources":{"limits":{"cpu":"500m","memory":"128Mi"}}}]})",
       {.memory_limit = kGi, .cpu_limit_milli = 4000},
       {.memory_limit = 128 * kMi, .cpu_quota = 50000, .cpu_shares = 512}},
      {"containers_sum",
       R"({"containers":[
           {"name":"a","resources":{"limits":{"cpu":"1","memory":"128Mi"},"requests":{"cpu":"250m"}}},
           {"name":"b","resources":{"limits":{"cpu":"500m","memory":"64Mi"}}}]})",
       {},
       {.memory_limit = 192 * kMi, .cpu_quota = 150000, .cpu_shares = 768}},
      {"one_container_without_memory_limit_gets_the_default",
       R"({"containers":[
           {"name":"a","resources":{"limits":{"cpu":"1","memory":"128Mi"}}},
           {"name":"b","resources":{"limits":{"cpu":"1"}}}]})",
       {.memory_limit = kGi},
       {.memory_limit = kGi, .cpu_quota = 200000, .cpu_shares = 2048}},
      {"undeclared_without_default_is_unlimited",
       R"({"containers":[
           {"name":"a","resources":{"limits":{"memory":"128Mi"}}},
           {"name":"b"}]})",
       {},
       {}},
      {"plain_init_container_larger_than_the_sum",
       R"({"initContainers":[{"name":"i","resources":{"limits":{"cpu":"2","memory":"1Gi"}}}],
           "containers":[{"name":"a","resources":{"limits":{"cpu":"1","memory":"128Mi"}}},
                         {"name":"b","resources":{"limits":{"cpu":"1","memory":"128Mi"}}}]})",
       {},
       {.memory_limit = kGi, .cpu_quota = 200000, .cpu_shares = 2048}},
      {"plain_init_container_smaller_than_the_sum",
       R"({"initContainers":[{"name":"i","resources":{"limits":{"memory":"200Mi"}}}],
           "containers":[{"name":"a","resources":{"limits":{"memory":"128Mi"}}},
                         {"name":"b","resources":{"limits":{"memory":"128Mi"}}}]})",
       {},
       {.memory_limit = 256 * kMi}},
      {"sidecar_adds_to_the_sum",
       R"({"initContainers":[
             {"name":"s","restartPolicy":"Always","resources":{"limits":{"memory":"64Mi"}}},
             {"name":"i","resources":{"limits":{"memory":"100Mi"}}}],
           "containers":[{"name":"a","resources":{"limits":{"memory":"128Mi"}}}]})",
       {},
       {.memory_limit = 192 * kMi}},
      {"init_after_a_sidecar_runs_beside_it",
       R"({"initContainers":[
             {"name":"s","restartPolicy":"Always","resources":{"limits":{"memory":"64Mi"}}},
             {"name":"i","resources":{"limits":{"memory":"200Mi"}}}],
           "containers":[{"name":"a","resources":{"limits":{"memory":"128Mi"}}}]})",
       {},
       {.memory_limit = 264 * kMi}},
      {"init_before_a_sidecar_does_not",
       R"({"initContainers":[
             {"name":"i","resources":{"limits":{"memory":"200Mi"}}},
             {"name":"s","restartPolicy":"Always","resources":{"limits":{"memory":"64Mi"}}}],
           "containers":[{"name":"a","resources":{"limits":{"memory":"128Mi"}}}]})",
       {},
       {.memory_limit = 200 * kMi}},
      {"init_container_without_limit_gets_the_default",
       R"({"initContainers":[{"name":"i"}],
           "containers":[{"name":"a","resources":{"limits":{"memory":"128Mi"}}}]})",
       {.memory_limit = 512 * kMi},
       {.memory_limit = 512 * kMi}},
      {"tiny_cpu_limit_gets_the_minimum_quota",
       R"({"containers":[{"name":"a","resources":{"limits":{"cpu":"5m"}}}]})",
       {},
       {.cpu_quota = 1000, .cpu_shares = 5}},
      {"tiny_cpu_request_gets_the_minimum_shares",
       R"({"containers":[{"name":"a","resources":{"requests":{"cpu":"1m"}}}]})",
       {.cpu_limit_milli = 500},
       {.cpu_quota = 50000, .cpu_shares = 2}},
      {"huge_cpu_request_gets_the_maximum_shares",
       R"({"containers":[{"name":"a","resources":{"requests":{"cpu":"1000"}}}]})",
       {},
       {.cpu_shares = 262144}},
      {"requests_alone_set_no_limits",
       R"({"containers":[{"name":"a","resources":{"requests":{"cpu":"1","memory":"1Gi"}}}]})",
       {},
       {.cpu_shares = 1024}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = PodResources(Json::parse(c.pod_spec), c.defaults);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(Show(*r), Show(c.want));
  }
}

TEST(PodResourcesTest, ErrorsNameTheContainer) {
  auto r = PodResources(Json::parse(R"({
      "initContainers":[{"name":"i"},{"name":"j","resources":{"limits":{"cpu":"one"}}}],
      "containers":[{"name":"a"}]})"),
                        {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_TRUE(r.status().message().starts_with(
      "spec.podTemplate.spec.initContainers[1].resources.limits.cpu: Invalid value: \"one\": "))
      << r.status().message();

  auto bad = PodResources(Json::parse(R"({"containers":[
      {"name":"a"},{"name":"b","resources":{"requests":{"memory":"2Gi"},"limits":{"memory":"1Gi"}}}]})"),
                          {}, "spec");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "spec.containers[1].resources.requests: Invalid value: \"2Gi\": must be less than or "
            "equal to memory limit of 1Gi");
}

TEST(ResourceFieldRefValueTest, Table) {
  const NodeAllocatable node{.cpu_milli = 2000, .memory = 8 * kGi, .ephemeral_storage = 100 * kGi};
  const Json limited = Container(R"({"limits":{"cpu":"250m","memory":"128Mi"},
                                     "requests":{"cpu":"100m","ephemeral-storage":"1Gi"}})");
  const Json unlimited = Container(nullptr);
  struct Case {
    const char* name;
    const Json* container;
    const char* ref;
    const char* want;
  } cases[] = {
      {"cpu_limit_rounds_up_to_cores", &limited, R"({"resource":"limits.cpu"})", "1"},
      {"cpu_limit_in_millicores", &limited, R"({"resource":"limits.cpu","divisor":"1m"})", "250"},
      {"cpu_divisor_1000m_is_1", &limited, R"({"resource":"limits.cpu","divisor":"1000m"})", "1"},
      {"cpu_divisor_as_a_number", &limited, R"({"resource":"limits.cpu","divisor":1})", "1"},
      {"cpu_request", &limited, R"({"resource":"requests.cpu","divisor":"1m"})", "100"},
      {"memory_limit_in_bytes", &limited, R"({"resource":"limits.memory"})", "134217728"},
      {"memory_limit_in_mi", &limited, R"({"resource":"limits.memory","divisor":"1Mi"})", "128"},
      {"memory_limit_in_m_rounds_up", &limited, R"({"resource":"limits.memory","divisor":"1M"})",
       "135"},
      {"memory_request_defaults_to_the_limit", &limited,
       R"({"resource":"requests.memory","divisor":"1Ki"})", "131072"},
      {"ephemeral_request", &limited, R"({"resource":"requests.ephemeral-storage","divisor":"1G"})",
       "2"},
      {"unset_cpu_limit_is_the_node", &unlimited, R"({"resource":"limits.cpu"})", "2"},
      {"unset_memory_limit_is_the_node", &unlimited,
       R"({"resource":"limits.memory","divisor":"1Gi"})", "8"},
      {"unset_ephemeral_limit_is_the_node", &limited,
       R"({"resource":"limits.ephemeral-storage","divisor":"1Gi"})", "100"},
      {"unset_cpu_request_is_zero", &unlimited, R"({"resource":"requests.cpu"})", "0"},
      {"unset_memory_request_is_zero", &unlimited, R"({"resource":"requests.memory"})", "0"},
      {"null_divisor_is_1", &limited, R"({"resource":"limits.memory","divisor":null})",
       "134217728"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ResourceFieldRefValue(*c.container, Json::parse(c.ref), "env[0]", node);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, c.want);
  }
}

TEST(ResourceFieldRefValueTest, ErrorsNameTheField) {
  const NodeAllocatable node{.cpu_milli = 1000, .memory = kGi, .ephemeral_storage = kGi};
  const std::string p = "spec.podTemplate.spec.containers[0].env[1].valueFrom.resourceFieldRef";
  struct Case {
    const char* name;
    const char* ref;
    std::string message;
  } cases[] = {
      {"unsupported_resource", R"({"resource":"limits.nvidia.com/gpu"})",
       p + ".resource: Unsupported value: \"limits.nvidia.com/gpu\": supported values: "
           "\"limits.cpu\", \"limits.ephemeral-storage\", \"limits.memory\", \"requests.cpu\", "
           "\"requests.ephemeral-storage\", \"requests.memory\""},
      {"missing_resource", R"({"divisor":"1"})", p + ".resource: Required value"},
      {"cpu_divisor", R"({"resource":"limits.cpu","divisor":"2"})",
       p + ".divisor: Invalid value: \"2\": only divisor's values 1m and 1 are supported with "
           "the cpu resource"},
      {"memory_divisor", R"({"resource":"requests.memory","divisor":"3Mi"})",
       p + ".divisor: Invalid value: \"3Mi\": only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, "
           "1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"},
      {"ephemeral_divisor", R"({"resource":"limits.ephemeral-storage","divisor":"10"})",
       p + ".divisor: Invalid value: \"10\": only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, "
           "1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage "
           "resource"},
      {"zero_divisor", R"({"resource":"limits.memory","divisor":"0"})",
       p + ".divisor: Invalid value: \"0\": only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, "
           "1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"},
      {"malformed_divisor", R"({"resource":"limits.memory","divisor":"1Q"})",
       p + ".divisor: Invalid value: \"1Q\": quantities must match the regular expression "
           "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ResourceFieldRefValue(Container(nullptr), Json::parse(c.ref), p, node);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalid);
    EXPECT_EQ(r.status().message(), c.message);
  }
  // The container's own resources are checked too, named by the container.
  auto r = ResourceFieldRefValue(Container(R"({"limits":{"memory":"x"}})"),
                                 Json::parse(R"({"resource":"limits.cpu"})"), p, node);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().message().starts_with("container \"app\".resources.limits.memory: "))
      << r.status().message();
}

TEST(ResourceFieldRefValueTest, UnsetLimitsResolveToThisHost) {
  auto node = HostAllocatable();
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_EQ(node->cpu_milli, ::sysconf(_SC_NPROCESSORS_ONLN) * 1000);
  std::string mem_total;
  for (const std::string& line : Split(*ReadFile("/proc/meminfo"), '\n')) {
    if (line.starts_with("MemTotal:")) mem_total = line;
  }
  ASSERT_FALSE(mem_total.empty());
  EXPECT_EQ(node->memory, std::stoll(mem_total.substr(9)) * 1024);
  EXPECT_GT(node->ephemeral_storage, 0);

  auto memory = ResourceFieldRefValue(
      Container(nullptr), Json::parse(R"({"resource":"limits.memory","divisor":"1Ki"})"), "env[0]");
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  EXPECT_EQ(*memory, std::to_string(node->memory / 1024));
  auto cpu = ResourceFieldRefValue(Container(nullptr), Json::parse(R"({"resource":"limits.cpu"})"),
                                   "env[0]");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(*cpu, std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)));
}

TEST(CgroupOomKillsTest, ReadsV1AndV2Layouts) {
  oci::runsc_testing::TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string v1 = tmp.Sub("v1"), v2 = tmp.Sub("v2");
  // v1: one hierarchy per controller; the memory one holds the counter.
  ASSERT_TRUE(MakeDirs(v1 + "/cpu/sbx/sbx-a").ok());
  ASSERT_TRUE(MakeDirs(v1 + "/memory/sbx/sbx-a").ok());
  ASSERT_TRUE(WriteFileAtomic(v1 + "/memory/sbx/sbx-a/memory.oom_control",
                              "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
                  .ok());
  ASSERT_TRUE(MakeDirs(v1 + "/memory/sbx/sbx-old").ok());
  ASSERT_TRUE(WriteFileAtomic(v1 + "/memory/sbx/sbx-old/memory.oom_control",
                              "oom_kill_disable 0\nunder_oom 0\n")
                  .ok());
  ASSERT_TRUE(MakeDirs(v1 + "/memory/sbx/sbx-nofile").ok());
  // v2: one unified tree.
  ASSERT_TRUE(MakeDirs(v2 + "/sbx/sbx-a").ok());
  ASSERT_TRUE(WriteFileAtomic(v2 + "/cgroup.controllers", "cpu memory pids\n").ok());
  ASSERT_TRUE(WriteFileAtomic(v2 + "/sbx/sbx-a/memory.events",
                              "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n")
                  .ok());
  ASSERT_TRUE(MakeDirs(v2 + "/sbx/no-memory-controller").ok());
  ASSERT_TRUE(MakeDirs(v2 + "/sbx/sbx-zero").ok());
  ASSERT_TRUE(WriteFileAtomic(v2 + "/sbx/sbx-zero/memory.events",
                              "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
                  .ok());

  struct Case {
    const char* name;
    std::string root;
    const char* path;
    Code code;
    int64_t want;
  } cases[] = {
      {"v1", v1, "/sbx/sbx-a", Code::kOk, 3},
      {"v1_gone", v1, "/sbx/sbx-b", Code::kNotFound, 0},
      {"v1_kernel_without_the_counter", v1, "/sbx/sbx-old", Code::kInternal, 0},
      {"v1_without_the_file", v1, "/sbx/sbx-nofile", Code::kFailedPrecondition, 0},
      {"v2", v2, "/sbx/sbx-a", Code::kOk, 1},
      {"v2_none", v2, "/sbx/sbx-zero", Code::kOk, 0},
      {"v2_memory_controller_off", v2, "/sbx/no-memory-controller", Code::kFailedPrecondition, 0},
      {"v2_gone", v2, "/sbx/sbx-b", Code::kNotFound, 0},
      {"relative", v2, "sbx/sbx-a", Code::kInvalidArgument, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = CgroupOomKills(c.path, c.root);
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    if (c.code == Code::kOk && r.ok()) {
      EXPECT_EQ(*r, c.want);
    }
  }
}

}  // namespace
}  // namespace sbx::daemon
