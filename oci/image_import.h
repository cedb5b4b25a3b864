// Reading an image source: an OCI image layout or a `docker save` archive,
// already on disk as a directory tree.
//
// Every blob is verified before use: its size against the descriptor (when
// one gives a size) and its sha256 against its digest; verified blobs are
// placed in a staging directory named by their hex digest, which the image
// store later moves into its content store. JSON documents (indexes,
// manifests, configs) are limited to kMaxManifestBytes. Unknown media types
// are refused with the type named. Docker archives carry no manifest, so one
// is synthesised (OCI media types) to give the image a manifest digest.
//
// Nothing here touches the store; errors leave only files in the staging
// directory, which the caller discards. Thread safety: reentrant.
#ifndef SBX_OCI_IMAGE_IMPORT_H_
#define SBX_OCI_IMAGE_IMPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "oci/image_config.h"
#include "oci/manifest.h"

namespace sbx::oci {

struct StagedBlob {
  std::string digest;  // "sha256:<hex>"
  std::string path;    // verified copy in the staging directory
  int64_t size = 0;
};

struct SourceImage {
  std::vector<std::string> names;  // normalised references, no duplicates
  std::string manifest_digest;
  std::string config_digest;  // the image ID
  ImageConfig config;
  std::vector<StagedBlob> layers;  // base layer first
  std::vector<StagedBlob> blobs;   // manifest, config and layers
};

struct SourceOptions {
  // "amd64", "arm64", ...: picks the manifest from a multi-platform index.
  std::string architecture;
  std::string variant;  // with architecture; "" matches any
  // The tree was extracted by us and nobody else writes to it, so verified
  // blobs may be hard-linked into staging instead of copied.
  bool source_is_private = false;
};

// The Go architecture name of this build ("amd64", "arm64", ...).
std::string HostArchitecture();

// Reads the images at source_dir: an OCI layout (oci-layout + index.json; a
// Docker 25+ save has one too and is read that way) or else a docker save
// archive (manifest.json). Names come from index.json annotations
// (io.containerd.image.name, then org.opencontainers.image.ref.name; a bare
// ref.name is a tag for the containerd name) or from RepoTags. The same image
// listed twice is returned once with the names merged.
Result<std::vector<SourceImage>> ReadImageSource(const std::string& source_dir,
                                                 const std::string& staging_dir,
                                                 const SourceOptions& options);

}  // namespace sbx::oci

#endif  // SBX_OCI_IMAGE_IMPORT_H_
