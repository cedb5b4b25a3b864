// The parts of an OCI image config (or Docker's, which is the same shape)
// that running a container needs, and their one JSON conversion.
//
// The JSON form is the image config's own: {"os", "architecture", "config":
// {"Entrypoint", "Cmd", "Env", "WorkingDir", "User", "Labels",
// "ExposedPorts"}, "rootfs": {"diff_ids"}}. The image store persists configs
// in the same form, so one parser serves both.
//
// Thread safety: values and pure functions.
#ifndef SBX_OCI_IMAGE_CONFIG_H_
#define SBX_OCI_IMAGE_CONFIG_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sbx::oci {

struct ImageConfig {
  std::vector<std::string> entrypoint;  // empty: unset
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string working_dir;
  std::string user;  // "uid", "uid:gid", "name", "name:group" or empty
  std::string os;
  std::string architecture;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // "80/tcp", sorted
  bool operator==(const ImageConfig&) const = default;
};

struct ParsedImageConfig {
  ImageConfig config;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, base layer first
};

// Parses a config blob. Type errors are InvalidArgument naming the field
// ("config.Env[1]: want a string"); unknown fields are ignored, as in the
// image spec.
Result<ParsedImageConfig> ParseImageConfig(std::string_view json);

// The inverse of ParseImageConfig (without diff IDs).
nlohmann::json ImageConfigToJson(const ImageConfig& config);
Result<ImageConfig> ImageConfigFromJson(const nlohmann::json& json);

}  // namespace sbx::oci

#endif  // SBX_OCI_IMAGE_CONFIG_H_
