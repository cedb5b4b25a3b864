// Standard base64 (RFC 4648 §4, with padding), as Kubernetes uses for Secret
// and ConfigMap binary data. Thread safety: pure functions.
#ifndef SBX_COMMON_BASE64_H_
#define SBX_COMMON_BASE64_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace sbx {

std::string Base64Encode(std::string_view data);
// Strict, as Go's base64.StdEncoding: padding required, no whitespace.
// InvalidArgument "illegal base64 data at input byte N" otherwise.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace sbx

#endif  // SBX_COMMON_BASE64_H_
