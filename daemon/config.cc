#include "daemon/config.h"

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "api/quantity.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/time.h"
#include "daemon/dns.h"
#include "oci/toml_settings.h"

namespace sbx::daemon {
namespace {

using Kind = SettingSpec::Kind;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

Status Bad(const std::string& what, const std::string& message) {
  return InvalidArgument(what + ": " + message);
}

Result<int64_t> ParseInteger(const std::string& value, const std::string& what, int64_t min,
                             int64_t max) {
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || n < min || n > max) {
    return Bad(what, Quoted(value) + " is not a number from " + std::to_string(min) + " to " +
                         std::to_string(max));
  }
  return static_cast<int64_t>(n);
}

Status OneOf(const std::string& value, const std::string& what,
             std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (value == a) return Status::Ok();
  }
  std::vector<std::string> names(allowed.begin(), allowed.end());
  return Bad(what, "must be " + Join(names, ", ") + "; not " + Quoted(value));
}

std::string CidrsText(const std::vector<Cidr>& list) {
  std::vector<std::string> out;
  for (const Cidr& c : list) out.push_back(c.text);
  return Join(out, ",");
}

std::string MillisText(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

// Builders for the common shapes of setting.
SettingSpec StringSetting(std::string name, std::string value_name, std::string Settings::*field,
                          std::string help, std::initializer_list<const char*> allowed = {}) {
  SettingSpec s;
  s.name = std::move(name);
  s.value_name = std::move(value_name);
  s.help = std::move(help);
  std::vector<std::string> allowed_list(allowed.begin(), allowed.end());
  s.set = [field, allowed_list](Settings* st, const std::string& v, const std::string& what) {
    if (!allowed_list.empty() &&
        std::find(allowed_list.begin(), allowed_list.end(), v) == allowed_list.end()) {
      return Bad(what, "must be " + Join(allowed_list, ", ") + "; not " + Quoted(v));
    }
    st->*field = v;
    return Status::Ok();
  };
  s.get = [field](const Settings& st) { return st.*field; };
  s.copy = [field](Settings* to, const Settings& from) { to->*field = from.*field; };
  return s;
}

SettingSpec PathSetting(std::string name, std::string value_name, std::string Settings::*field,
                        std::string help) {
  SettingSpec s;
  s.name = std::move(name);
  s.value_name = std::move(value_name);
  s.help = std::move(help);
  s.set = [field](Settings* st, const std::string& v, const std::string& what) {
    if (v.empty()) return Bad(what, "must not be empty");
    st->*field = v;
    return Status::Ok();
  };
  s.get = [field](const Settings& st) { return st.*field; };
  s.copy = [field](Settings* to, const Settings& from) { to->*field = from.*field; };
  return s;
}

template <typename T>
SettingSpec IntegerSetting(std::string name, T Settings::*field, int64_t min, int64_t max,
                           std::string help) {
  SettingSpec s;
  s.name = std::move(name);
  s.kind = Kind::kInteger;
  s.value_name = "N";
  s.help = std::move(help);
  s.set = [field, min, max](Settings* st, const std::string& v, const std::string& what) {
    auto n = ParseInteger(v, what, min, max);
    if (!n.ok()) return n.status();
    st->*field = static_cast<T>(*n);
    return Status::Ok();
  };
  s.get = [field](const Settings& st) { return std::to_string(st.*field); };
  s.copy = [field](Settings* to, const Settings& from) { to->*field = from.*field; };
  return s;
}

SettingSpec DurationSetting(std::string name, std::chrono::milliseconds Settings::*field,
                            std::string help) {
  SettingSpec s;
  s.name = std::move(name);
  s.kind = Kind::kDuration;
  s.value_name = "D";
  s.help = std::move(help);
  s.set = [field](Settings* st, const std::string& v, const std::string& what) {
    auto d = ParseDuration(v);
    if (!d.ok()) return Bad(what, d.status().message());
    st->*field = *d;
    return Status::Ok();
  };
  s.get = [field](const Settings& st) { return MillisText(st.*field); };
  s.copy = [field](Settings* to, const Settings& from) { to->*field = from.*field; };
  return s;
}

SettingSpec RepeatedPathSetting(std::string name, std::string value_name,
                                std::vector<std::string> Settings::*field, bool absolute,
                                std::string help) {
  SettingSpec s;
  s.name = std::move(name);
  s.kind = Kind::kRepeated;
  s.value_name = std::move(value_name);
  s.help = std::move(help);
  s.set = [field, absolute](Settings* st, const std::string& v, const std::string& what) {
    if (v.empty() || (absolute && v[0] != '/')) return Bad(what, "must be an absolute path");
    (st->*field).push_back(v);
    return Status::Ok();
  };
  s.get = [field](const Settings& st) { return Join(st.*field, "\n"); };
  s.copy = [field](Settings* to, const Settings& from) { to->*field = from.*field; };
  s.clear = [field](Settings* st) { (st->*field).clear(); };
  return s;
}

std::vector<SettingSpec> BuildSpecs() {
  std::vector<SettingSpec> specs;
  auto add = [&specs](SettingSpec s, bool reloadable = false) {
    s.reloadable = reloadable;
    specs.push_back(std::move(s));
  };

  add(PathSetting("state-dir", "DIR", &Settings::state_dir,
                  "persistent state: database, images, sandbox bundles and logs "
                  "(default /var/lib/sbx)"));
  add(PathSetting("run-dir", "DIR", &Settings::run_dir,
                  "runtime state: runsc root, network namespaces, API socket (default /run/sbx)"));
  add(PathSetting("socket", "PATH", &Settings::socket,
                  "the API socket (default RUN_DIR/sbxd.sock); under systemd socket activation "
                  "the socket systemd passes is used instead"));
  add(StringSetting("socket-group", "GROUP", &Settings::socket_group,
                    "the group given read/write access (mode 0660) to the API socket sbxd binds "
                    "(default none: root only, mode 0600)"));
  add(PathSetting("runsc", "PATH", &Settings::runsc, "the runsc binary (default: runsc on PATH)"));
  add(StringSetting("platform", "NAME", &Settings::platform,
                    "auto | kvm | systrap | ptrace (default auto: the first of kvm, systrap, "
                    "ptrace that boots on this host)",
                    {"auto", "kvm", "systrap", "ptrace"}));
  add(StringSetting("runsc-debug-log-dir", "DIR", &Settings::runsc_debug_log_dir,
                    "keep runsc's debug logs, one directory per sandbox "
                    "(DIR/NAMESPACE_NAME_UID/) kept after the sandbox is deleted; default none. "
                    "A sandbox annotated sbx.dev/runsc-debug: \"true\" gets them in "
                    "STATE_DIR/logs/runsc when this is unset"));
  add(IntegerSetting("workers", &Settings::workers, 1, 256,
                     "controller worker threads (default 4)"));
  add(PathSetting("pause-binary", "PATH", &Settings::pause_binary,
                  "the static sbx-pause every pod runs as its root process (default: next to "
                  "sbxd, else ../libexec/sbx/sbx-pause)"));
  add(RepeatedPathSetting("allow-host-path", "PREFIX", &Settings::host_path_prefixes, true,
                          "allow hostPath volumes under PREFIX (repeatable; default none: "
                          "hostPath volumes are refused)"));
  for (auto [name, field, example] :
       {std::tuple{"default-memory-limit", &Settings::default_memory_limit, "2Gi"},
        std::tuple{"default-cpu-limit", &Settings::default_cpu_limit, "500m"}}) {
    SettingSpec s = StringSetting(name, "Q", field, "");
    s.help = std::string(name == std::string("default-memory-limit") ? "memory" : "cpu") +
             " limit of a sandbox whose containers do not all set one (a quantity, e.g. " +
             example + "; default none)";
    s.set = [field](Settings* st, const std::string& v, const std::string& what) {
      if (!v.empty() && !api::ParseQuantityMilli(v).ok()) {
        return Bad(what, Quoted(v) + " is not a quantity");
      }
      st->*field = v;
      return Status::Ok();
    };
    add(std::move(s));
  }
  {
    SettingSpec s = IntegerSetting("default-pids-limit", &Settings::default_pids_limit, 0, 1 << 22,
                                   "pids limit of every sandbox (default 0: none; an idle gVisor "
                                   "sandbox already uses ~30 host tasks, so at least 64)");
    auto base = s.set;
    s.set = [base](Settings* st, const std::string& v, const std::string& what) {
      if (Status b = base(st, v, what); !b.ok()) return b;
      if (st->default_pids_limit > 0 && st->default_pids_limit < 64) {
        return Bad(what, "must be 0 (none) or at least 64");
      }
      return Status::Ok();
    };
    add(std::move(s));
  }
  add(PathSetting("seccomp-profile-root", "DIR", &Settings::seccomp_profile_root,
                  "where Localhost seccomp profiles are read from (default STATE_DIR/seccomp)"));
  add(StringSetting("default-seccomp", "TYPE", &Settings::default_seccomp,
                    "RuntimeDefault | Unconfined: the profile of containers that set none "
                    "(default RuntimeDefault)",
                    {"RuntimeDefault", "Unconfined"}));
  add(IntegerSetting("warm-pool-max-starting", &Settings::warm_pool_max_starting, 1, 1024,
                     "warm pool members booting at once, across all pools (default 2 per CPU)"),
      true);
  {
    SettingSpec s = StringSetting(
        "network", "MODE", &Settings::network,
        "sandbox | none: the network of sandboxes whose template does not choose one "
        "(annotation sbx.dev/network). sandbox gives each its own network namespace attached by "
        "CNI plugins, with gVisor's network stack and the egress policy below; none: loopback "
        "only (default sandbox; none, with a warning, when the CNI plugins or nft are missing "
        "and the setting was not given)",
        {"sandbox", "none"});
    auto base = s.set;
    s.set = [base](Settings* st, const std::string& v, const std::string& what) {
      SBX_RETURN_IF_ERROR(base(st, v, what));
      st->network_explicit = true;
      return Status::Ok();
    };
    add(std::move(s));
  }
  add(StringSetting("cni-conflist", "PATH", &Settings::cni_conflist,
                    "the CNI network configuration list (default: a bridge sbx0 with host-local "
                    "addresses from 10.213.0.0/16 and portmap)"));
  add(RepeatedPathSetting("cni-plugin-dir", "DIR", &Settings::cni_plugin_dirs, false,
                          "where CNI plugins are found (repeatable; default /usr/lib/cni and "
                          "/opt/cni/bin)"));
  {
    SettingSpec s;
    s.name = "dns";
    s.kind = Kind::kList;
    s.value_name = "LIST";
    s.help =
        "DNS resolvers of networked sandboxes (their /etc/resolv.conf, and allowed through "
        "the egress policy on port 53); default: the host's, or, when those are a loopback "
        "stub, systemd-resolved's upstreams";
    s.set = [](Settings* st, const std::string& v, const std::string& what) {
      std::vector<std::string> out;
      for (const std::string& item : Split(v, ',')) {
        std::string t(Trim(item));
        if (t.empty()) continue;
        auto addr = ParseAddress(t, what);
        if (!addr.ok()) return addr.status();
        if (IsLoopbackAddress(t)) {
          return Bad(what, t + " is a loopback address, which sandboxes cannot reach");
        }
        out.push_back(t);
      }
      st->dns = std::move(out);
      return Status::Ok();
    };
    s.get = [](const Settings& st) { return Join(st.dns, ","); };
    s.copy = [](Settings* to, const Settings& from) { to->dns = from.dns; };
    add(std::move(s));
  }
  for (bool deny : {true, false}) {
    SettingSpec s;
    s.name = deny ? "egress-deny" : "egress-allow";
    s.kind = Kind::kList;
    s.value_name = "LIST";
    s.help = deny ? "CIDRs networked sandboxes may not reach (default: private, shared, "
                    "loopback, link-local incl. the metadata service 169.254.169.254 and "
                    "fd00:ec2::254, multicast and reserved ranges; \"none\": nothing). The host "
                    "itself is never reachable"
                  : "CIDRs reachable despite egress-deny (default none)";
    auto field = deny ? &Settings::egress_deny : &Settings::egress_allow;
    s.set = [field, deny](Settings* st, const std::string& v, const std::string& what) {
      std::vector<Cidr> list;
      if (!(deny && v == "none") && !v.empty()) {
        auto parsed = ParseCidrList(v, what);
        if (!parsed.ok()) return parsed.status();
        list = std::move(*parsed);
      }
      st->*field = std::move(list);
      return Status::Ok();
    };
    s.get = [field](const Settings& st) { return CidrsText(st.*field); };
    s.copy = [field](Settings* to, const Settings& from) { to->*field = from.*field; };
    add(std::move(s));
  }
  {
    SettingSpec s = StringSetting("host-port-address", "IP", &Settings::host_port_address,
                                  "where a container's hostPort is published when its hostIP is "
                                  "empty (default 127.0.0.1: this host only; 0.0.0.0 for every "
                                  "address)");
    s.set = [](Settings* st, const std::string& v, const std::string& what) {
      if (auto addr = ParseAddress(v, what); !addr.ok()) return addr.status();
      st->host_port_address = v;
      return Status::Ok();
    };
    add(std::move(s));
  }
  {
    SettingSpec s;
    s.name = "warm-pool-cpu";
    s.value_name = "P";
    s.help =
        "idle | normal: CPU priority of warm pool members until a claim adopts them; idle "
        "(default) boots and keeps them on CPU nothing else wants, so a refilling pool never "
        "slows claims or running sandboxes";
    s.set = [](Settings* st, const std::string& v, const std::string& what) {
      SBX_RETURN_IF_ERROR(OneOf(v, what, {"idle", "normal"}));
      st->warm_pool_idle_cpu = v == "idle";
      return Status::Ok();
    };
    s.get = [](const Settings& st) { return st.warm_pool_idle_cpu ? "idle" : "normal"; };
    s.copy = [](Settings* to, const Settings& from) { to->warm_pool_idle_cpu = from.warm_pool_idle_cpu; };
    add(std::move(s));
  }
  add(DurationSetting("warm-pool-readiness-grace", &Settings::warm_pool_readiness_grace,
                      "a warm pool member not Ready this long is replaced (a duration, e.g. 90s; "
                      "default 5m)"),
      true);
  add(DurationSetting("claim-warm-wait", &Settings::claim_warm_wait,
                      "how long a claim waits for a Ready warm pool member before it "
                      "cold-starts a sandbox (default 2s)"),
      true);
  {
    SettingSpec s;
    s.name = "allowed-label-domains";
    s.kind = Kind::kList;
    s.value_name = "LIST";
    s.help = "label domains a claim's additionalPodMetadata may use (default sandbox.users.io)";
    s.set = [](Settings* st, const std::string& v, const std::string&) {
      st->allowed_label_domains.clear();
      for (const auto& d : Split(v, ',')) {
        std::string t(Trim(d));
        if (!t.empty()) st->allowed_label_domains.push_back(t);
      }
      return Status::Ok();
    };
    s.get = [](const Settings& st) { return Join(st.allowed_label_domains, ","); };
    s.copy = [](Settings* to, const Settings& from) { to->allowed_label_domains = from.allowed_label_domains; };
    add(std::move(s), true);
  }
  add(PathSetting("registry-config", "PATH", &Settings::registry_config,
                  "a file of [registry.\"host\"] tables (mirrors, plain HTTP, CA files), read "
                  "besides this file's own (default /etc/sbx/registries.toml, if present)"),
      true);
  add(PathSetting("auth-file", "PATH", &Settings::auth_file,
                  "registry credentials stored by `sbx login`, Docker's config.json format, mode "
                  "0600 (default STATE_DIR/auth.json)"));
  add(PathSetting("docker-config", "PATH", &Settings::docker_config,
                  "Docker's config.json, read for auths, credsStore and credHelpers after the "
                  "auth file (default $DOCKER_CONFIG/config.json, else ~/.docker/config.json; "
                  "\"none\": not read)"));
  add(IntegerSetting("max-concurrent-downloads", &Settings::parallel_downloads, 1, 32,
                     "layers of one pull fetched at once (default 3)"),
      true);
  add(IntegerSetting("image-gc-high-threshold", &Settings::image_gc_high, 0, 100,
                     "disk usage (percent) of the image store's file system above which unused "
                     "images are removed, oldest first (default 85; 100: never)"),
      true);
  add(IntegerSetting("image-gc-low-threshold", &Settings::image_gc_low, 0, 100,
                     "... until usage is at most this (default 80)"),
      true);
  {
    SettingSpec s = StringSetting("log-level", "LEVEL", &Settings::log_level,
                                  "debug | info | warning | error (default info)");
    s.set = [](Settings* st, const std::string& v, const std::string& what) {
      log::Level level;
      if (!log::ParseLevel(v, &level)) {
        return Bad(what, "must be debug, info, warning or error; not " + Quoted(v));
      }
      st->log_level = v;
      return Status::Ok();
    };
    add(std::move(s), true);
  }
  add(StringSetting("log-format", "FMT", &Settings::log_format,
                    "auto | text | json | journal (default auto: journal when stderr is "
                    "systemd's journal, else text)",
                    {"auto", "text", "json", "journal"}),
      true);
  return specs;
}

// Edit distance, for "did you mean".
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const SettingSpec* FindByName(std::string_view name) {
  for (const SettingSpec& s : SettingSpecs()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string Suggestion(std::string_view key, bool as_flag) {
  const SettingSpec* best = nullptr;
  size_t best_d = 4;
  for (const SettingSpec& s : SettingSpecs()) {
    size_t d = Distance(key, as_flag ? s.name : s.Key());
    if (d < best_d) best = &s, best_d = d;
  }
  if (best == nullptr) return "";
  return "; did you mean " + (as_flag ? "--" + best->name : best->Key()) + "?";
}

std::string TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

}  // namespace

Result<gid_t> GroupId(const std::string& name) {
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
    return static_cast<gid_t>(std::stoul(name));
  }
  std::vector<char> buf(16384);
  group g{};
  group* found = nullptr;
  int rc = getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
  if (rc != 0) return ErrnoStatus("look up group " + Quoted(name), rc);
  if (found == nullptr) return NotFound("no group " + Quoted(name) + " on this host");
  return found->gr_gid;
}

std::string SettingSpec::Key() const {
  std::string k = name;
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

const std::vector<SettingSpec>& SettingSpecs() {
  static const std::vector<SettingSpec> specs = BuildSpecs();
  return specs;
}

Result<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::optional<std::string> value;
    if (auto eq = a.find('='); eq != std::string::npos && a.starts_with("--")) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto take = [&]() -> Result<std::string> {
      if (value) return *value;
      if (i + 1 >= argc) return InvalidArgument(a + ": needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--help" || a == "-h") {
      cl.help = true;
    } else if (a == "--version") {
      cl.version = true;
    } else if (a == "--check-config") {
      cl.check_config = true;
    } else if (a == "--config") {
      SBX_ASSIGN_OR_RETURN(cl.config_file, take());
      if (cl.config_file.empty()) return InvalidArgument("--config: needs a file");
      cl.config_explicit = true;
    } else if (a.starts_with("--") && FindByName(a.substr(2)) != nullptr) {
      SBX_ASSIGN_OR_RETURN(std::string v, take());
      cl.flags.emplace_back(a.substr(2), std::move(v));
    } else {
      return InvalidArgument("unknown flag " + a +
                             Suggestion(a.starts_with("--") ? a.substr(2) : a, true) +
                             " (see --help)");
    }
  }
  return cl;
}

Status ApplyConfigText(std::string_view text, const std::string& source_name, Settings* settings) {
  SBX_ASSIGN_OR_RETURN(toml::table root, oci::ParseToml(text, source_name));
  auto at = [&](const toml::node& n, const std::string& key) {
    return oci::TomlWhere(source_name, n, key);
  };
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    if (key == "registry") continue;  // RegistrySettings::Parse reads these tables
    const SettingSpec* spec = nullptr;
    for (const SettingSpec& s : SettingSpecs()) {
      if (s.Key() == key) spec = &s;
    }
    const std::string what = at(node, key);
    if (spec == nullptr) {
      std::string hint = Suggestion(key, false);
      if (hint.empty() && key.find('-') != std::string::npos) {
        std::string underscored = key;
        std::replace(underscored.begin(), underscored.end(), '-', '_');
        hint = Suggestion(underscored, false);
      }
      return InvalidArgument(what + ": unknown key" + hint);
    }
    std::vector<std::string> values;
    switch (spec->kind) {
      case Kind::kString:
      case Kind::kDuration:
        if (!node.is_string()) {
          return Bad(what, std::string("want a string") +
                               (spec->kind == Kind::kDuration ? " such as \"90s\"" : "") +
                               ", not " + TypeName(node));
        }
        values.push_back(*node.value<std::string>());
        break;
      case Kind::kInteger:
        if (!node.is_integer()) return Bad(what, "want an integer, not " + TypeName(node));
        values.push_back(std::to_string(*node.value<int64_t>()));
        break;
      case Kind::kList:
      case Kind::kRepeated: {
        if (spec->kind == Kind::kList && node.is_string()) {
          values.push_back(*node.value<std::string>());
          break;
        }
        const toml::array* arr = node.as_array();
        if (arr == nullptr) return Bad(what, "want an array of strings, not " + TypeName(node));
        std::vector<std::string> items;
        for (size_t i = 0; i < arr->size(); ++i) {
          const toml::node& item = *arr->get(i);
          if (!item.is_string()) {
            return Bad(at(item, key) + "[" + std::to_string(i) + "]",
                       "want a string, not " + TypeName(item));
          }
          items.push_back(*item.value<std::string>());
        }
        if (spec->kind == Kind::kList) {
          for (const std::string& item : items) {
            if (item.find(',') != std::string::npos) {
              return Bad(what, "one entry per array element; " + Quoted(item) + " has a comma");
            }
          }
          values.push_back(Join(items, ","));
        } else {
          spec->clear(settings);
          values = std::move(items);
        }
        break;
      }
    }
    for (const std::string& v : values) SBX_RETURN_IF_ERROR(spec->set(settings, v, what));
  }
  auto registries = oci::RegistrySettingsFromToml(root, source_name, /*other_keys=*/true);
  if (!registries.ok()) return registries.status();
  settings->registries = std::move(*registries);
  return Status::Ok();
}

Status FinalizeSettings(Settings* f) {
  if (f->socket.empty()) f->socket = JoinPath(f->run_dir, "sbxd.sock");
  if (f->image_gc_low > f->image_gc_high) {
    return InvalidArgument("image-gc-low-threshold (" + std::to_string(f->image_gc_low) +
                           ") must not exceed image-gc-high-threshold (" +
                           std::to_string(f->image_gc_high) + ")");
  }
  if (f->auth_file.empty()) f->auth_file = JoinPath(f->state_dir, "auth.json");
  if (f->docker_config.empty()) {
    const char* dc = std::getenv("DOCKER_CONFIG");
    const char* home = std::getenv("HOME");
    if (dc != nullptr && *dc != '\0') {
      f->docker_config = JoinPath(dc, "config.json");
    } else if (home != nullptr && *home != '\0') {
      f->docker_config = JoinPath(home, ".docker/config.json");
    }
  }
  if (f->docker_config == "none") f->docker_config.clear();
  if (f->seccomp_profile_root.empty()) f->seccomp_profile_root = JoinPath(f->state_dir, "seccomp");
  if (!f->runsc_debug_log_dir.empty() && f->runsc_debug_log_dir.front() != '/') {
    return InvalidArgument("runsc-debug-log-dir: must be an absolute path, not " +
                           Quoted(f->runsc_debug_log_dir));
  }
  if (!f->socket_group.empty()) {
    if (auto gid = GroupId(f->socket_group); !gid.ok()) {
      return InvalidArgument("socket-group: " + gid.status().message());
    }
  }
  if (f->pause_binary.empty()) {
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string();
    dir = dir.substr(0, dir.rfind('/'));
    f->pause_binary = JoinPath(dir, "sbx-pause");
    if (::access(f->pause_binary.c_str(), X_OK) != 0) {
      f->pause_binary = JoinPath(dir, "../libexec/sbx/sbx-pause");
    }
  }
  if (::access(f->pause_binary.c_str(), X_OK) != 0) {
    return InvalidArgument("pause-binary: " + f->pause_binary + " is not an executable");
  }
  // The separate registry settings file joins the configuration file's tables.
  auto extra = oci::RegistrySettings::Load(f->registry_config);
  if (!extra.ok()) return extra.status();
  for (auto& [host, s] : extra->hosts) {
    if (f->registries.hosts.count(host) != 0) {
      return InvalidArgument("registry " + Quoted(host) + " is set in both " + f->config_file +
                             " and " + f->registry_config);
    }
    f->registries.hosts[host] = std::move(s);
  }
  return Status::Ok();
}

Result<Settings> LoadSettings(const CommandLine& cl) {
  Settings settings;
  if (PathExists(cl.config_file)) {
    auto text = ReadFile(cl.config_file);
    if (!text.ok()) return InvalidArgument(cl.config_file + ": " + text.status().message());
    SBX_RETURN_IF_ERROR(ApplyConfigText(*text, cl.config_file, &settings));
    settings.config_file = cl.config_file;
  } else if (cl.config_explicit) {
    return InvalidArgument("--config: " + cl.config_file + " does not exist");
  }
  std::set<std::string> cleared;
  for (const auto& [name, value] : cl.flags) {
    const SettingSpec* spec = FindByName(name);
    if (spec == nullptr) return InvalidArgument("unknown flag --" + name);
    if (spec->kind == Kind::kRepeated && cleared.insert(name).second) spec->clear(&settings);
    SBX_RETURN_IF_ERROR(spec->set(&settings, value, "--" + name));
  }
  SBX_RETURN_IF_ERROR(FinalizeSettings(&settings));
  return settings;
}

std::vector<std::string> ChangedSettings(const Settings& a, const Settings& b) {
  std::vector<std::string> out;
  for (const SettingSpec& s : SettingSpecs()) {
    if (s.get(a) != s.get(b)) out.push_back(s.Key());
  }
  if (!(a.registries == b.registries)) out.push_back("registry");
  return out;
}

std::string UsageText() {
  std::string out = R"(NAME
    sbxd - run agent-sandbox objects in gVisor sandboxes on this host

SYNOPSIS
    sbxd [--config FILE] [flags]
    sbxd --check-config [--config FILE] [flags]
    sbxd --version | --help

DESCRIPTION
    sbxd stores Sandbox, SandboxTemplate, SandboxClaim and SandboxWarmPool
    objects in SQLite, runs each sandbox with runsc (gVisor) and serves the
    Kubernetes-style API on a Unix socket, for the sbx command line.

    Sandboxes outlive sbxd: stopping or restarting it leaves them running, and
    the next sbxd adopts them.

CONFIGURATION
    Settings come from the configuration file, then from flags, which win.
    Every flag --some-name is the key some_name in the file; lists are TOML
    arrays (a LIST flag takes a comma-separated value; a repeated flag
    replaces the file's list). The file may also hold [registry."host"]
    tables (mirrors, plain_http, skip_tls_verify, ca_file). Unknown keys and
    bad values are errors naming the file, line and key.

    --config FILE    the configuration file (default /etc/sbx/sbxd.toml; a
                     missing default file means defaults only)
    --check-config   check the file and flags, print the result and exit
                     (0 when valid, 1 otherwise)

OPTIONS
)";
  for (const SettingSpec& s : SettingSpecs()) {
    std::string head = "    --" + s.name + " " + s.value_name;
    out += head + "\n";
    // Wraps the help at 76 columns, indented under the flag.
    std::string line = "        ";
    for (const std::string& word : Split(s.help, ' ')) {
      if (line.size() + word.size() + 1 > 78 && line.size() > 8) {
        out += line + "\n";
        line = "        ";
      }
      if (line.size() > 8) line += " ";
      line += word;
    }
    if (s.reloadable) {
      std::string tag = "(reloaded on SIGHUP)";
      if (line.size() + tag.size() + 1 > 78) {
        out += line + "\n";
        line = "        ";
      } else {
        line += " ";
      }
      line += tag;
    }
    out += line + "\n";
  }
  out += R"(    --version
        print the version and exit
    --help
        this text

SIGNALS
    SIGTERM, SIGINT  stop serving and exit; sandboxes keep running
    SIGHUP           read the configuration again: apply the settings marked
                     "reloaded on SIGHUP" and log which other changed settings
                     need a restart; a file with errors changes nothing

SYSTEMD
    Under systemd (Type=notify) sbxd reports READY=1 once its socket is
    listening, its store is open and running sandboxes are adopted; STOPPING=1
    and RELOADING=1 likewise; it pings the watchdog when WatchdogSec= is set.
    With socket activation (sbxd.socket) it serves the socket systemd passes.

FILES
    /etc/sbx/sbxd.toml        configuration
    /etc/sbx/registries.toml  more registry settings (optional)
    /var/lib/sbx              state: sbx.db, images, sandboxes, auth.json
    /run/sbx                  runtime: sbxd.sock, runsc state, netns

EXIT STATUS
    0 after a clean shutdown or a valid --check-config; 1 when sbxd cannot
    start or the configuration is invalid; 2 for bad command-line usage.

SEE ALSO
    sbx(1), runsc(8), systemd.service(5)
)";
  return out;
}

}  // namespace sbx::daemon
