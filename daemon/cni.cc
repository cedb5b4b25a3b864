#include "daemon/cni.h"

#include <unistd.h>

#include <utility>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::daemon::cni {

Result<NetworkConfigList> NetworkConfigList::Parse(std::string_view text,
                                                   const std::string& source) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(source + ": not a JSON object (a CNI network configuration list)");
  }
  auto string_field = [&](const char* name) -> Result<std::string> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
      return InvalidArgument(source + ": \"" + name + "\" must be a non-empty string");
    }
    return it->get<std::string>();
  };
  NetworkConfigList list;
  list.raw = j;
  SBX_ASSIGN_OR_RETURN(list.cni_version, string_field("cniVersion"));
  SBX_ASSIGN_OR_RETURN(list.name, string_field("name"));
  auto plugins = j.find("plugins");
  if (plugins == j.end() || !plugins->is_array() || plugins->empty()) {
    return InvalidArgument(source + ": \"plugins\" must be a non-empty array");
  }
  for (size_t i = 0; i < plugins->size(); ++i) {
    const Json& p = (*plugins)[i];
    const std::string where = source + ": plugins[" + std::to_string(i) + "]";
    if (!p.is_object()) return InvalidArgument(where + " must be an object");
    auto type = p.find("type");
    if (type == p.end() || !type->is_string() || type->get<std::string>().empty()) {
      return InvalidArgument(where + ".type must be a non-empty string");
    }
    const std::string t = type->get<std::string>();
    if (t.find('/') != std::string::npos || t == "." || t == "..") {
      return InvalidArgument(where + ".type \"" + t + "\" must be a plain file name");
    }
    list.plugins.push_back(p);
  }
  return list;
}

Result<AddResult> AddResult::FromJson(const Json& result) {
  if (!result.is_object()) return InvalidArgument("CNI result is not a JSON object");
  AddResult r;
  r.raw = result;
  if (auto ifs = result.find("interfaces"); ifs != result.end() && ifs->is_array()) {
    for (const Json& i : *ifs) {
      if (!i.is_object() || !i.contains("name") || !i["name"].is_string()) continue;
      auto sandbox = i.find("sandbox");
      if (sandbox != i.end() && sandbox->is_string() && !sandbox->get<std::string>().empty()) continue;
      r.host_interfaces.push_back(i["name"].get<std::string>());
    }
  }
  auto ips = result.find("ips");
  if (ips == result.end()) return r;
  if (!ips->is_array()) return InvalidArgument("CNI result: \"ips\" is not an array");
  for (const Json& ip : *ips) {
    if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) {
      return InvalidArgument("CNI result: an \"ips\" entry has no address");
    }
    IpConfig c;
    c.address = ip["address"].get<std::string>();
    if (auto g = ip.find("gateway"); g != ip.end() && g->is_string()) c.gateway = g->get<std::string>();
    r.ips.push_back(std::move(c));
  }
  return r;
}

Plugins::Plugins(oci::CommandRunner& runner, std::vector<std::string> plugin_dirs,
                 std::chrono::milliseconds timeout)
    : runner_(runner), plugin_dirs_(std::move(plugin_dirs)), timeout_(timeout) {}

Result<std::string> Plugins::Find(const std::string& type) const {
  for (const std::string& dir : plugin_dirs_) {
    std::string path = JoinPath(dir, type);
    if (::access(path.c_str(), X_OK) == 0 && !IsDirectory(path)) return path;
  }
  return NotFound("CNI plugin \"" + type + "\" not found in " + Join(plugin_dirs_, ":") +
                  " (Debian: apt install containernetworking-plugins)");
}

Result<Json> Plugins::Invoke(const char* command, const NetworkConfigList& list,
                             const Json& plugin, const Attachment& a,
                             const Json& prev_result) const {
  const std::string type = plugin["type"].get<std::string>();
  SBX_ASSIGN_OR_RETURN(std::string path, Find(type));
  Json conf = plugin;
  conf["cniVersion"] = list.cni_version;
  conf["name"] = list.name;
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;
  conf.erase("runtimeConfig");
  if (auto caps = plugin.find("capabilities"); caps != plugin.end() && caps->is_object()) {
    Json rc = Json::object();
    for (const auto& [cap, on] : caps->items()) {
      if (on.is_boolean() && on.get<bool>() && a.runtime_config.contains(cap)) {
        rc[cap] = a.runtime_config[cap];
      }
    }
    if (!rc.empty()) conf["runtimeConfig"] = rc;
  }

  oci::CommandSpec spec;
  spec.argv = {path};
  spec.stdin_data = conf.dump();
  spec.timeout = timeout_;
  spec.env = {std::string("CNI_COMMAND=") + command, "CNI_CONTAINERID=" + a.container_id,
              "CNI_NETNS=" + a.netns, "CNI_IFNAME=" + a.ifname,
              "CNI_PATH=" + Join(plugin_dirs_, ":")};
  const std::string what = std::string("CNI plugin ") + type + " " + command;
  SBX_ASSIGN_OR_RETURN(oci::CommandResult r, runner_.Run(spec));
  if (r.timed_out) return Unavailable(what + ": timed out");
  Json out = Trim(r.out).empty() ? Json() : Json::parse(r.out, nullptr, false);
  if (r.exit_code != 0) {
    std::string msg;
    if (out.is_object() && out.contains("msg") && out["msg"].is_string()) {
      msg = out["msg"].get<std::string>();
      if (out.contains("details") && out["details"].is_string() &&
          !out["details"].get<std::string>().empty()) {
        msg += ": " + out["details"].get<std::string>();
      }
    } else {
      msg = std::string(Trim(r.err.empty() ? r.out : r.err));
      if (msg.empty()) msg = "exit code " + std::to_string(r.exit_code);
    }
    return Unavailable(what + ": " + msg);
  }
  if (std::string_view(command) != "ADD") return Json();
  if (!out.is_object()) return Internal(what + ": the result is not a JSON object");
  return out;
}

Result<AddResult> Plugins::Add(const NetworkConfigList& list, const Attachment& a) const {
  Json prev;
  for (const Json& plugin : list.plugins) {
    SBX_ASSIGN_OR_RETURN(prev, Invoke("ADD", list, plugin, a, prev));
  }
  return AddResult::FromJson(prev);
}

Status Plugins::Del(const NetworkConfigList& list, const Attachment& a, const Json& cached) const {
  Status first = Status::Ok();
  for (auto it = list.plugins.rbegin(); it != list.plugins.rend(); ++it) {
    auto r = Invoke("DEL", list, *it, a, cached);
    if (!r.ok() && first.ok()) first = r.status();
  }
  return first;
}

Status Plugins::Check(const NetworkConfigList& list, const Attachment& a,
                      const Json& cached) const {
  for (const Json& plugin : list.plugins) {
    SBX_RETURN_IF_ERROR(Invoke("CHECK", list, plugin, a, cached).status());
  }
  return Status::Ok();
}

}  // namespace sbx::daemon::cni
