// Image references, normalised as Docker does.
//
//   busybox                  -> docker.io/library/busybox:latest
//   me/app:1.2               -> docker.io/me/app:1.2
//   localhost:5000/x         -> localhost:5000/x:latest
//   ghcr.io/a/b@sha256:<hex> -> ghcr.io/a/b@sha256:<hex>   (no tag added)
//
// The grammar is distribution/reference's: the first component is a registry
// domain when it contains '.' or ':', is "localhost", or has upper-case
// letters; repository path components are lower-case alphanumerics joined by
// '.', '_', '__' or dashes; tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
// digests are sha256 only. A bare 64-hex string is refused because it is an
// image ID, not a name.
//
// Thread safety: values and pure functions.
#ifndef SBX_OCI_REFERENCE_H_
#define SBX_OCI_REFERENCE_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace sbx::oci {

struct ImageReference {
  std::string domain;  // "docker.io", "localhost:5000", "ghcr.io"
  std::string path;    // "library/busybox"
  std::string tag;     // "latest"; empty only when digest is set and no tag was given
  std::string digest;  // "sha256:<64 hex>" or empty

  // "docker.io/library/busybox" (domain and path, no tag or digest).
  std::string Repository() const;
  // Fully normalised: "docker.io/library/busybox:latest".
  std::string String() const;
  // As Docker prints it: "busybox:latest", "me/app:1.2", "ghcr.io/a/b@sha256:...".
  std::string Familiar() const;

  bool operator==(const ImageReference&) const = default;
};

// Errors are InvalidArgument and name the reference:
//   invalid image reference "Busybox": repository name must be lowercase
Result<ImageReference> ParseImageReference(std::string_view text);

}  // namespace sbx::oci

#endif  // SBX_OCI_REFERENCE_H_
