#include "daemon/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string SourceDir() { return SBX_TEST_SOURCE_DIR; }
std::string BuildDir() { return SBX_TEST_BUILD_DIR; }
std::string PauseBinary() { return BuildDir() + "/daemon/sbx-pause"; }

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Loads `toml` (written to sbxd.toml) with `flags` after it.
  Result<Settings> Load(const std::string& toml, std::vector<std::string> flags = {}) {
    std::string path = Write("sbxd.toml", toml);
    std::vector<std::string> args = {"sbxd", "--config", path, "--pause-binary=" + PauseBinary(),
                                     "--registry-config=" + dir_ + "/none.toml"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    auto cl = ParseCommandLine(static_cast<int>(argv.size()), argv.data());
    if (!cl.ok()) return cl.status();
    return LoadSettings(*cl);
  }

  std::string dir_;
};

TEST_F(ConfigTest, NoFileMeansDefaults) {
  const char* argv[] = {"sbxd", "--config", "/nonexistent/sbxd.toml"};
  auto cl = ParseCommandLine(3, argv);
  ASSERT_TRUE(cl.ok());
  auto missing = LoadSettings(*cl);
  ASSERT_FALSE(missing.ok()) << "an explicit --config must exist";
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/sbxd.toml does not exist"));

  CommandLine defaults;  // the default path, absent here: defaults only
  defaults.config_file = dir_ + "/absent.toml";
  defaults.flags = {{"pause-binary", PauseBinary()}};
  auto s = LoadSettings(defaults);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->state_dir, "/var/lib/sbx");
  EXPECT_EQ(s->socket, "/run/sbx/sbxd.sock");
  EXPECT_EQ(s->auth_file, "/var/lib/sbx/auth.json");
  EXPECT_EQ(s->workers, 4u);
  EXPECT_EQ(s->config_file, "");
}

TEST_F(ConfigTest, FileSetsEverySettingKindAndFlagsWin) {
  std::string ca = Write("ca.pem", "not checked here\n");
  auto s = Load(R"(
state_dir = "/srv/sbx"
workers = 8
claim_warm_wait = "750ms"
dns = ["1.1.1.1", "9.9.9.9"]
egress_allow = "10.1.0.0/16,10.2.0.0/16"
allow_host_path = ["/data", "/models"]
warm_pool_cpu = "normal"
log_level = "debug"
socket_group = "0"

[registry."10.0.0.5:5000"]
plain_http = true
[registry."corp.example"]
ca_file = ")" + ca + R"("
)",
                {"--workers=3", "--allow-host-path", "/scratch"});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->state_dir, "/srv/sbx");
  EXPECT_EQ(s->socket, "/run/sbx/sbxd.sock");
  EXPECT_EQ(s->auth_file, "/srv/sbx/auth.json") << "derived defaults follow the file";
  EXPECT_EQ(s->seccomp_profile_root, "/srv/sbx/seccomp");
  EXPECT_EQ(s->workers, 3u) << "the flag wins";
  EXPECT_EQ(s->claim_warm_wait, std::chrono::milliseconds(750));
  EXPECT_THAT(s->dns, ElementsAre("1.1.1.1", "9.9.9.9"));
  ASSERT_EQ(s->egress_allow.size(), 2u);
  EXPECT_EQ(s->egress_allow[1].text, "10.2.0.0/16");
  EXPECT_THAT(s->host_path_prefixes, ElementsAre("/scratch"))
      << "a repeated flag replaces the list";
  EXPECT_FALSE(s->warm_pool_idle_cpu);
  EXPECT_EQ(s->log_level, "debug");
  ASSERT_EQ(s->registries.hosts.size(), 2u);
  EXPECT_TRUE(s->registries.For("10.0.0.5:5000").plain_http);
  EXPECT_EQ(s->registries.For("corp.example").ca_file, ca);
}

TEST_F(ConfigTest, RegistryFileJoinsTheConfigFileTables) {
  Write("none.toml", "[registry.\"mirror.example\"]\nplain_http = true\n");
  auto s = Load("[registry.\"10.0.0.5:5000\"]\nplain_http = true\n");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->registries.hosts.size(), 2u);
  auto dup = Load("[registry.\"mirror.example\"]\nplain_http = true\n");
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(), HasSubstr("registry \"mirror.example\" is set in both"));
}

struct BadInput {
  std::string toml;
  std::string message;  // a substring of the error
};

TEST_F(ConfigTest, BadInputNamesFileLineAndKey) {
  const std::vector<BadInput> cases = {
      {"\n\nworkerz = 4\n", "sbxd.toml:3: workerz: unknown key; did you mean workers?"},
      {"state-dir = \"/x\"\n", "sbxd.toml:1: state-dir: unknown key; did you mean state_dir?"},
      {"[server]\nport = 1\n", "sbxd.toml:1: server: unknown key"},
      {"workers = \"4\"\n", "sbxd.toml:1: workers: want an integer, not a string"},
      {"workers = 0\n", "sbxd.toml:1: workers: \"0\" is not a number from 1 to 256"},
      {"workers = 4.5\n", "workers: want an integer, not a number"},
      {"platform = \"kvmm\"\n",
       "sbxd.toml:1: platform: must be auto, kvm, systrap, ptrace; not \"kvmm\""},
      {"claim_warm_wait = 2\n", "claim_warm_wait: want a string such as \"90s\", not an integer"},
      {"claim_warm_wait = \"2 seconds\"\n", "sbxd.toml:1: claim_warm_wait:"},
      {"dns = [\"127.0.0.53\"]\n", "dns: 127.0.0.53 is a loopback address"},
      {"dns = [\"1.1.1.1\", 8]\n", "sbxd.toml:1: dns[1]: want a string, not an integer"},
      {"dns = [\"1.1.1.1,8.8.8.8\"]\n", "dns: one entry per array element"},
      {"egress_deny = [\"10.0.0.0/33\"]\n", "sbxd.toml:1: egress_deny:"},
      {"host_port_address = \"localhost\"\n", "host_port_address: \"localhost\" is not"},
      {"allow_host_path = [\"data\"]\n", "allow_host_path: must be an absolute path"},
      {"allow_host_path = \"/data\"\n", "allow_host_path: want an array of strings, not a string"},
      {"default_pids_limit = 10\n", "default_pids_limit: must be 0 (none) or at least 64"},
      {"default_memory_limit = \"2 gigs\"\n", "default_memory_limit: \"2 gigs\" is not a quantity"},
      {"default_seccomp = \"unconfined\"\n", "default_seccomp: must be RuntimeDefault, Unconfined"},
      {"network = \"host\"\n", "network: must be sandbox, none; not \"host\""},
      {"warm_pool_cpu = \"low\"\n", "warm_pool_cpu: must be idle, normal"},
      {"log_level = \"verbose\"\n", "log_level: must be debug, info, warning or error"},
      {"log_format = \"xml\"\n", "log_format: must be auto, text, json, journal"},
      {"image_gc_high_threshold = 101\n",
       "image_gc_high_threshold: \"101\" is not a number from 0 to 100"},
      {"image_gc_high_threshold = 50\nimage_gc_low_threshold = 60\n",
       "image-gc-low-threshold (60) must not exceed image-gc-high-threshold (50)"},
      {"max_concurrent_downloads = 0\n",
       "max_concurrent_downloads: \"0\" is not a number from 1 to 32"},
      {"socket_group = \"no-such-group-sbx\"\n", "socket-group: no group \"no-such-group-sbx\""},
      {"runsc_debug_log_dir = \"logs\"\n", "runsc-debug-log-dir: must be an absolute path"},
      {"workers = 4\nworkers = 5\n", "sbxd.toml:2:"},
      {"workers = \n", "sbxd.toml:1:"},
      {"[registry.\"r.example\"]\nplain_htttp = true\n",
       "sbxd.toml:2: registry.\"r.example\".plain_htttp: unknown key"},
      {"[registry.\"r.example\"]\nmirrors = \"https://m\"\n",
       "registry.\"r.example\".mirrors: want an array"},
  };
  for (const BadInput& c : cases) {
    auto s = Load(c.toml);
    ASSERT_FALSE(s.ok()) << "accepted: " << c.toml;
    EXPECT_THAT(s.status().message(), HasSubstr(c.message)) << c.toml;
    if (c.message.starts_with("sbxd.toml:")) {
      EXPECT_THAT(s.status().message(), HasSubstr(dir_ + "/sbxd.toml:")) << "names the file";
    }
  }
}

TEST_F(ConfigTest, BadFlagsNameTheFlag) {
  auto bad = Load("", {"--workers=x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--workers: \"x\" is not a number"));

  const char* unknown[] = {"sbxd", "--state-dri", "/x"};
  auto cl = ParseCommandLine(3, unknown);
  ASSERT_FALSE(cl.ok());
  EXPECT_THAT(cl.status().message(),
              HasSubstr("unknown flag --state-dri; did you mean --state-dir?"));

  const char* no_value[] = {"sbxd", "--socket"};
  cl = ParseCommandLine(2, no_value);
  ASSERT_FALSE(cl.ok());
  EXPECT_THAT(cl.status().message(), HasSubstr("--socket: needs a value"));

  auto pause = Load("pause_binary = \"/nonexistent/sbx-pause\"\n");
  ASSERT_TRUE(pause.ok()) << "the flag's pause binary wins over the file's";
  const char* bad_pause[] = {"sbxd", "--config=/dev/null", "--pause-binary=/nonexistent/pause"};
  cl = ParseCommandLine(3, bad_pause);
  ASSERT_TRUE(cl.ok());
  auto s = LoadSettings(*cl);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(),
              HasSubstr("pause-binary: /nonexistent/pause is not an executable"));
}

TEST_F(ConfigTest, ChangedSettingsNamesKeys) {
  auto a = Load("workers = 4\nlog_level = \"info\"\n");
  auto b = Load(
      "workers = 4\nlog_level = \"debug\"\nclaim_warm_wait = \"5s\"\n"
      "[registry.\"x.example\"]\nplain_http = true\n");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_THAT(ChangedSettings(*a, *b), ElementsAre("claim_warm_wait", "log_level", "registry"));
  EXPECT_TRUE(ChangedSettings(*a, *a).empty());
}

// A reload copies each applied setting from the new settings.
TEST_F(ConfigTest, EverySettingCopiesAndReads) {
  auto a = Load("");
  auto b = Load(R"(
state_dir = "/srv/a"
workers = 9
dns = ["9.9.9.9"]
egress_deny = "none"
egress_allow = ["10.3.0.0/16"]
warm_pool_cpu = "normal"
allowed_label_domains = ["x.example"]
allow_host_path = ["/data"]
cni_plugin_dir = ["/opt/x"]
claim_warm_wait = "9s"
log_format = "json"
default_pids_limit = 128
network = "none"
)");
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().message();
  for (const SettingSpec& spec : SettingSpecs()) {
    ASSERT_TRUE(spec.set && spec.get && spec.copy) << spec.name;
    Settings t = *a;
    spec.copy(&t, *b);
    EXPECT_EQ(spec.get(t), spec.get(*b)) << spec.name;
  }
  EXPECT_GE(ChangedSettings(*a, *b).size(), 12u);
}

// The example file installed as /etc/sbx/sbxd.toml: valid as shipped, names
// every setting, and each commented example line is itself valid.
TEST_F(ConfigTest, ExampleFileDocumentsEverySetting) {
  auto text = ReadFile(SourceDir() + "/systemd/sbxd.toml");
  ASSERT_TRUE(text.ok());
  Settings shipped;
  ASSERT_TRUE(ApplyConfigText(*text, "sbxd.toml", &shipped).ok());
  for (const SettingSpec& spec : SettingSpecs()) {
    EXPECT_THAT(*text, HasSubstr("\n# " + spec.Key() + " = "))
        << spec.Key() << " is not documented";
  }
  std::regex example(R"(^# ([a-z_]+ = .*)$)");
  // Each "# key = value" line of the settings (the registry tables follow).
  std::istringstream lines(text->substr(0, text->find("# [registry.")));
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, example)) continue;
    Settings s;
    Status st = ApplyConfigText(m[1].str() + "\n", "example", &s);
    EXPECT_TRUE(st.ok()) << line << ": " << st.message();
    ++checked;
  }
  EXPECT_GE(checked, static_cast<int>(SettingSpecs().size()));
  // Uncommented registry tables parse too.
  std::string registries = text->substr(text->find("# [registry."));
  std::string uncommented =
      std::regex_replace(registries, std::regex("^# ?", std::regex::multiline), "");
  uncommented = std::regex_replace(uncommented, std::regex("ca_file = .*"), "");
  Settings r;
  Status st = ApplyConfigText(uncommented, "registries", &r);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(r.registries.hosts.size(), 3u);
}

TEST_F(ConfigTest, HelpListsEveryFlag) {
  std::string help = UsageText();
  for (const char* section : {"NAME\n", "SYNOPSIS\n", "CONFIGURATION\n", "OPTIONS\n", "SIGNALS\n",
                              "FILES\n", "EXIT STATUS\n"}) {
    EXPECT_THAT(help, HasSubstr(section));
  }
  for (const SettingSpec& spec : SettingSpecs()) {
    EXPECT_THAT(help, HasSubstr("\n    --" + spec.name + " ")) << spec.name;
  }
  for (const std::string& line : Split(help, '\n')) {
    EXPECT_LE(line.size(), 80u) << line;
  }
}

// The sbxd binary: --check-config's answer and exit status.
TEST_F(ConfigTest, CheckConfigCommand) {
  auto run = [&](const std::string& args, std::string* out) {
    std::string cmd = BuildDir() + "/daemon/sbxd " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    out->clear();
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  std::string out;
  std::string good = Write("good.toml", "workers = 2\n");
  EXPECT_EQ(run("--check-config --config " + good, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("configuration OK (" + good + ")"));

  std::string bad = Write("bad.toml", "# comment\nworkers = 2\nlog_levle = \"debug\"\n");
  EXPECT_EQ(run("--check-config --config " + bad, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr(bad + ":3: log_levle: unknown key; did you mean log_level?"));

  EXPECT_EQ(run("--check-config --config " + good + " --workers=0", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("--workers"));
  EXPECT_EQ(run("--no-such-flag", &out), 2) << out;

  EXPECT_EQ(run("--help", &out), 0);
  EXPECT_THAT(out, HasSubstr("--check-config"));
  EXPECT_EQ(run("--version", &out), 0);
  EXPECT_THAT(out, ::testing::MatchesRegex("sbxd [0-9]+\\.[0-9]+\\.[0-9]+\n"));
}

}  // namespace
}  // namespace sbx::daemon
