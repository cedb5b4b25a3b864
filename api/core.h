// Typed access to core v1 Secret and ConfigMap values.
//
// Thread safety: pure functions.
#ifndef SBX_API_CORE_H_
#define SBX_API_CORE_H_

#include <string>

#include "api/object.h"
#include "common/status.h"

namespace sbx::api {

// The decoded value of data[key] of a Secret (stringData is merged into data
// on decode). NotFound naming the secret and key when absent;
// InvalidArgument when the stored value is not base64.
Result<std::string> SecretValue(const Object& secret, const std::string& key);

// data[key] of a ConfigMap, else the decoded binaryData[key]. NotFound naming
// the config map and key when absent.
Result<std::string> ConfigMapValue(const Object& cm, const std::string& key);

}  // namespace sbx::api

#endif  // SBX_API_CORE_H_
