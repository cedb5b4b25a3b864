#include "daemon/dns.h"

#include <arpa/inet.h>

#include <sstream>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::daemon {

namespace {

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ' ' || c == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool IsAddress(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

ResolvConf ParseResolvConf(std::string_view text) {
  ResolvConf conf;
  for (const std::string& raw : Split(text, '\n')) {
    std::string_view line = raw;
    if (auto hash = line.find_first_of("#;"); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string> w = Words(line);
    if (w.empty()) continue;
    if (w[0] == "nameserver" && w.size() >= 2) {
      // A scoped IPv6 address ("fe80::1%eth0") names a host interface.
      if (IsAddress(w[1])) conf.nameservers.push_back(w[1]);
    } else if ((w[0] == "search" || w[0] == "domain") && w.size() >= 2) {
      conf.search.assign(w.begin() + 1, w.end());  // the last one wins, as in resolv.conf(5)
    } else if (w[0] == "options") {
      conf.options.insert(conf.options.end(), w.begin() + 1, w.end());
    }
  }
  return conf;
}

std::string FormatResolvConf(const ResolvConf& conf) {
  std::ostringstream s;
  if (!conf.source.empty()) s << "# sbx: resolvers from " << conf.source << "\n";
  for (const std::string& n : conf.nameservers) s << "nameserver " << n << "\n";
  if (!conf.search.empty()) s << "search " << Join(conf.search, " ") << "\n";
  if (!conf.options.empty()) s << "options " << Join(conf.options, " ") << "\n";
  return s.str();
}

bool IsLoopbackAddress(const std::string& ip) {
  unsigned char b[16];
  if (::inet_pton(AF_INET, ip.c_str(), b) == 1) return b[0] == 127;
  if (::inet_pton(AF_INET6, ip.c_str(), b) == 1) {
    for (int i = 0; i < 15; ++i) {
      if (b[i] != 0) return false;
    }
    return b[15] == 1;
  }
  return false;
}

Result<ResolvConf> SandboxResolvConf(const std::vector<std::string>& configured, const std::string& host_path,
                                     const std::string& resolved_path) {
  ResolvConf out;
  if (!configured.empty()) {
    for (const std::string& n : configured) {
      if (!IsAddress(n)) return InvalidArgument("--dns: \"" + n + "\" is not an IP address");
      if (IsLoopbackAddress(n)) {
        return InvalidArgument("--dns: " + n + " is a loopback address, which sandboxes cannot reach");
      }
      out.nameservers.push_back(n);
    }
    out.source = "the daemon's settings (--dns)";
    return out;
  }
  auto keep = [](const ResolvConf& c) {
    ResolvConf r = c;
    r.nameservers.clear();
    for (const std::string& n : c.nameservers) {
      if (!IsLoopbackAddress(n)) r.nameservers.push_back(n);
    }
    return r;
  };
  ResolvConf host;
  if (auto text = ReadFile(host_path); text.ok()) {
    host = ParseResolvConf(*text);
    out = keep(host);
    out.source = host_path;
    if (!out.nameservers.empty()) return out;
  }
  if (auto text = ReadFile(resolved_path); text.ok()) {
    ResolvConf upstream = keep(ParseResolvConf(*text));
    if (!upstream.nameservers.empty()) {
      upstream.source = resolved_path;
      return upstream;
    }
  }
  out.nameservers.clear();
  return out;
}

Result<ResolvConf> PodResolvConf(const nlohmann::json& pod_spec, const ResolvConf& cluster,
                                 const ResolvConf& upstream, const std::string& path) {
  const std::string policy = pod_spec.value("dnsPolicy", std::string("ClusterFirst"));
  ResolvConf out;
  if (policy == "ClusterFirst" || policy == "ClusterFirstWithHostNet") {
    out = cluster;
  } else if (policy == "Default") {
    out = upstream;
  } else if (policy != "None") {
    return InvalidArgument(path + ".dnsPolicy: Unsupported value: \"" + policy +
                           "\": supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", "
                           "\"None\"");
  }
  out.source.clear();
  const nlohmann::json& config = pod_spec.value("dnsConfig", nlohmann::json::object());
  if (!config.is_object()) return InvalidArgument(path + ".dnsConfig: must be an object");
  const nlohmann::json& servers = config.value("nameservers", nlohmann::json::array());
  for (size_t i = 0; i < servers.size(); ++i) {
    std::string ns = servers[i].is_string() ? servers[i].get<std::string>() : "";
    if (!IsAddress(ns)) {
      return InvalidArgument(path + ".dnsConfig.nameservers[" + std::to_string(i) + "]: Invalid value: \"" + ns +
                             "\": must be a valid IP address");
    }
    out.nameservers.push_back(ns);
  }
  if (policy == "None" && servers.empty()) {
    return InvalidArgument(path + ".dnsConfig.nameservers: Required value: must provide at least one DNS "
                           "nameserver when dnsPolicy is None");
  }
  if (out.nameservers.size() > 3) {
    return InvalidArgument(path + ".dnsConfig.nameservers: Invalid value: must not have more than 3 nameservers");
  }
  for (const auto& d : config.value("searches", nlohmann::json::array())) {
    if (d.is_string()) out.search.push_back(d.get<std::string>());
  }
  for (const auto& o : config.value("options", nlohmann::json::array())) {
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) continue;
    std::string name = o["name"].get<std::string>();
    std::string item = name;
    if (o.contains("value") && o["value"].is_string()) item += ":" + o["value"].get<std::string>();
    std::erase_if(out.options, [&](const std::string& have) {
      return have == name || have.rfind(name + ":", 0) == 0;
    });
    out.options.push_back(item);
  }
  return out;
}

}  // namespace sbx::daemon
