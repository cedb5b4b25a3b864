#include "oci/image_config.h"

#include <algorithm>

namespace sbx::oci {
namespace {

using Json = nlohmann::json;

Status WrongType(const std::string& path, std::string_view want) {
  return InvalidArgument(path + ": want " + std::string(want));
}

// Absent and null both mean "unset" in image configs.
Status GetString(const Json& obj, const char* key, const std::string& path, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return WrongType(path + key, "a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status GetStrings(const Json& obj, const char* key, const std::string& path,
                  std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return WrongType(path + key, "an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& v = (*it)[i];
    if (!v.is_string()) return WrongType(path + key + "[" + std::to_string(i) + "]", "a string");
    out->push_back(v.get<std::string>());
  }
  return Status::Ok();
}

Status ParseInto(const Json& root, ParsedImageConfig* out) {
  if (!root.is_object()) return WrongType("image config", "a JSON object");
  ImageConfig& c = out->config;
  SBX_RETURN_IF_ERROR(GetString(root, "os", "", &c.os));
  SBX_RETURN_IF_ERROR(GetString(root, "architecture", "", &c.architecture));
  if (auto rootfs = root.find("rootfs"); rootfs != root.end() && !rootfs->is_null()) {
    if (!rootfs->is_object()) return WrongType("rootfs", "an object");
    SBX_RETURN_IF_ERROR(GetStrings(*rootfs, "diff_ids", "rootfs.", &out->diff_ids));
  }
  auto it = root.find("config");
  if (it == root.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return WrongType("config", "an object");
  const Json& cfg = *it;
  SBX_RETURN_IF_ERROR(GetStrings(cfg, "Entrypoint", "config.", &c.entrypoint));
  SBX_RETURN_IF_ERROR(GetStrings(cfg, "Cmd", "config.", &c.cmd));
  SBX_RETURN_IF_ERROR(GetStrings(cfg, "Env", "config.", &c.env));
  SBX_RETURN_IF_ERROR(GetString(cfg, "WorkingDir", "config.", &c.working_dir));
  SBX_RETURN_IF_ERROR(GetString(cfg, "User", "config.", &c.user));
  if (auto labels = cfg.find("Labels"); labels != cfg.end() && !labels->is_null()) {
    if (!labels->is_object()) return WrongType("config.Labels", "an object");
    for (const auto& [k, v] : labels->items()) {
      if (!v.is_string()) return WrongType("config.Labels." + k, "a string");
      c.labels[k] = v.get<std::string>();
    }
  }
  if (auto ports = cfg.find("ExposedPorts"); ports != cfg.end() && !ports->is_null()) {
    if (!ports->is_object()) return WrongType("config.ExposedPorts", "an object");
    for (const auto& [k, v] : ports->items()) c.exposed_ports.push_back(k);
    std::sort(c.exposed_ports.begin(), c.exposed_ports.end());
  }
  return Status::Ok();
}

}  // namespace

Result<ParsedImageConfig> ParseImageConfig(std::string_view json) {
  Json root = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return InvalidArgument("image config: malformed JSON");
  ParsedImageConfig out;
  Status s = ParseInto(root, &out);
  if (!s.ok()) return s.Annotate("image config");
  return out;
}

Json ImageConfigToJson(const ImageConfig& c) {
  Json cfg = Json::object();
  if (!c.entrypoint.empty()) cfg["Entrypoint"] = c.entrypoint;
  if (!c.cmd.empty()) cfg["Cmd"] = c.cmd;
  if (!c.env.empty()) cfg["Env"] = c.env;
  if (!c.working_dir.empty()) cfg["WorkingDir"] = c.working_dir;
  if (!c.user.empty()) cfg["User"] = c.user;
  if (!c.labels.empty()) cfg["Labels"] = c.labels;
  if (!c.exposed_ports.empty()) {
    Json ports = Json::object();
    for (const std::string& p : c.exposed_ports) ports[p] = Json::object();
    cfg["ExposedPorts"] = std::move(ports);
  }
  Json root = Json::object();
  if (!c.os.empty()) root["os"] = c.os;
  if (!c.architecture.empty()) root["architecture"] = c.architecture;
  root["config"] = std::move(cfg);
  return root;
}

Result<ImageConfig> ImageConfigFromJson(const Json& json) {
  ParsedImageConfig out;
  Status s = ParseInto(json, &out);
  if (!s.ok()) return s.Annotate("image config");
  return out.config;
}

}  // namespace sbx::oci
