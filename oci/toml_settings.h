// TOML settings files: one parse with errors as "file:line: what", and the
// [registry."host"] tables read from an already parsed file, so sbxd's
// configuration (daemon/config) and registries.toml share both.
#ifndef SBX_OCI_TOML_SETTINGS_H_
#define SBX_OCI_TOML_SETTINGS_H_

#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "common/status.h"
#include "oci/registry_client.h"

namespace sbx::oci {

// Parses `text`; a syntax error is InvalidArgument "source_name:LINE: ...".
Result<toml::table> ParseToml(std::string_view text, const std::string& source_name);

// "source_name:LINE: key", the prefix of an error about node `n`.
std::string TomlWhere(const std::string& source_name, const toml::node& n, const std::string& key);

// The [registry."host"] tables of `root` (see RegistrySettings). other_keys:
// other top-level keys are the caller's; otherwise they are errors.
Result<RegistrySettings> RegistrySettingsFromToml(const toml::table& root,
                                                  const std::string& source_name, bool other_keys);

}  // namespace sbx::oci

#endif  // SBX_OCI_TOML_SETTINGS_H_
