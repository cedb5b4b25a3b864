// Random identifiers from the kernel's CSPRNG. Thread-safe.
#ifndef SBX_COMMON_RANDOM_H_
#define SBX_COMMON_RANDOM_H_

#include <string>

namespace sbx {

// `bytes` random bytes as lowercase hex (2*bytes characters).
std::string RandomHex(size_t bytes);
// RFC 4122 version 4 UUID, as Kubernetes uses for metadata.uid.
std::string NewUuid();
// Kubernetes generateName suffix: 5 characters from "bcdfghjklmnpqrstvwxz2456789".
std::string RandomNameSuffix(size_t n = 5);

}  // namespace sbx

#endif  // SBX_COMMON_RANDOM_H_
