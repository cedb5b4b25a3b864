// sbxd's settings: one table of every setting, read from the configuration
// file (/etc/sbx/sbxd.toml) and then from the command line, which wins.
//
// Every flag --some-name has the key some_name in the file (dashes become
// underscores); lists are TOML arrays. The file may also hold
// [registry."host"] tables (oci/registry_client.h). Unknown keys and bad values
// are errors naming the file, line and key (or the flag).
//
//   auto cl = ParseCommandLine(argc, argv);     // --config, --check-config, flags
//   auto settings = LoadSettings(*cl);          // file, then flags, then checks
//
// On SIGHUP sbxd calls LoadSettings again with the same command line and
// applies the settings that can change while it runs (SettingSpec::reloadable);
// ChangedSettings names the others, which take effect after a restart.
#ifndef SBX_DAEMON_CONFIG_H_
#define SBX_DAEMON_CONFIG_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "daemon/firewall.h"
#include "oci/registry_client.h"

namespace sbx::daemon {

inline constexpr char kDefaultConfigFile[] = "/etc/sbx/sbxd.toml";

struct Settings {
  std::string state_dir = "/var/lib/sbx";
  std::string run_dir = "/run/sbx";
  std::string socket;        // default RUN_DIR/sbxd.sock
  std::string socket_group;  // group owning the socket sbxd binds itself; empty: root's
  std::string runsc = "runsc";
  std::string platform = "auto";
  std::string runsc_debug_log_dir;  // empty: runsc debug logs off
  std::string log_level = "info";
  std::string log_format = "auto";  // auto | text | json | journal
  size_t workers = 4;
  std::string pause_binary;  // default: next to sbxd, or ../libexec/sbx/
  std::vector<std::string> host_path_prefixes;
  std::string default_memory_limit, default_cpu_limit;
  int64_t default_pids_limit = 0;
  std::string seccomp_profile_root;  // default STATE_DIR/seccomp
  std::string default_seccomp = "RuntimeDefault";
  std::string network = "sandbox";
  bool network_explicit = false;  // set by the file or a flag
  std::string cni_conflist;
  std::vector<std::string> cni_plugin_dirs;
  std::vector<std::string> dns;
  std::vector<Cidr> egress_deny = DefaultEgressDeny();
  std::vector<Cidr> egress_allow;
  std::string host_port_address = "127.0.0.1";
  size_t warm_pool_max_starting = 0;  // default: 2 per CPU
  bool warm_pool_idle_cpu = true;
  std::chrono::milliseconds warm_pool_readiness_grace{std::chrono::minutes(5)};
  std::chrono::milliseconds claim_warm_wait{2000};
  std::vector<std::string> allowed_label_domains{"sandbox.users.io"};
  std::string registry_config = "/etc/sbx/registries.toml";
  std::string auth_file;      // default STATE_DIR/auth.json
  std::string docker_config;  // default $DOCKER_CONFIG/config.json or ~/.docker/config.json
  int image_gc_high = 85;
  int image_gc_low = 80;
  int parallel_downloads = 3;

  // From the file's [registry."host"] tables and registry_config.
  oci::RegistrySettings registries;
  // The configuration file read ("" when there was none).
  std::string config_file;
};

// One setting: its flag is "--" + name, its key name with '_' for '-'.
struct SettingSpec {
  enum class Kind {
    kString,    // a TOML string
    kInteger,   // a TOML integer
    kDuration,  // a TOML string such as "90s"
    kList,      // a TOML array of strings (or one comma-separated string); a flag's value is
                // comma-separated
    kRepeated,  // a TOML array of strings; the flag is repeated, and replaces the file's list
  };
  std::string name;  // "state-dir"
  Kind kind = Kind::kString;
  std::string value_name;   // "DIR", for the help text
  std::string help;         // for --help and the example file
  bool reloadable = false;  // applied on SIGHUP without a restart
  // Sets the value; errors are InvalidArgument messages starting with `what`
  // ("--workers" or "sbxd.toml:12: workers").
  std::function<Status(Settings*, const std::string& value, const std::string& what)> set;
  // The value, normalized, to tell whether a reload changed it.
  std::function<std::string(const Settings&)> get;
  // Copies the value from one Settings to another (a reload applying it).
  std::function<void(Settings* to, const Settings& from)> copy;
  // For kRepeated: empties the list before the first flag.
  std::function<void(Settings*)> clear;

  std::string Key() const;
};

const std::vector<SettingSpec>& SettingSpecs();

struct CommandLine {
  std::string config_file = kDefaultConfigFile;
  bool config_explicit = false;  // --config given: the file must exist
  bool check_config = false;
  bool help = false;
  bool version = false;
  std::vector<std::pair<std::string, std::string>> flags;  // (name, value), in order
};

// Flags without a known name, or without a value, are InvalidArgument naming
// the flag. Values are checked by LoadSettings.
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv);

// Reads the configuration file (a missing default file is no settings), then
// the flags, then resolves defaults and checks the settings together.
Result<Settings> LoadSettings(const CommandLine& cl);

// Applies one file's text (the name is used in errors) to *settings.
Status ApplyConfigText(std::string_view text, const std::string& source_name, Settings* settings);

// Fills in defaults that depend on other settings or the environment and
// checks the settings together.
Status FinalizeSettings(Settings* settings);

// The names of the settings whose values differ ("registry" for the
// [registry."host"] tables).
std::vector<std::string> ChangedSettings(const Settings& a, const Settings& b);

// The id of a group, by name or number.
Result<gid_t> GroupId(const std::string& name);

// The man-style --help text.
std::string UsageText();

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_CONFIG_H_
