// OCI image documents: descriptors, image manifests and image indexes (and
// their Docker schema-2 twins), parsed and checked. Shared by the importer
// (image layouts, docker save archives) and the registry puller.
//
// Parsing refuses what sbx cannot run, naming the document and the field:
// unknown manifest, config or layer media types, schemaVersion other than 2,
// malformed descriptors. Platform selection follows containerd: os "linux",
// the host's architecture, and for arm the variant when the index gives one.
//
// Thread safety: values and pure functions.
#ifndef SBX_OCI_MANIFEST_H_
#define SBX_OCI_MANIFEST_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sbx::oci {

inline constexpr std::string_view kOciManifestType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndexType = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfigType = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTarType = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzipType =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstdType =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifestType =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestListType =
    "application/vnd.docker.distribution.manifest.list.v2+json";

// JSON documents (indexes, manifests, configs) larger than this are refused.
inline constexpr int64_t kMaxManifestBytes = 4 << 20;

bool IsManifestType(std::string_view media_type);
bool IsIndexType(std::string_view media_type);
bool IsConfigType(std::string_view media_type);
bool IsLayerType(std::string_view media_type);
// "Accept" header value listing every manifest and index type sbx reads.
std::string ManifestAcceptHeader();

struct Descriptor {
  std::string media_type;
  std::string digest;  // validated "sha256:<hex>"
  int64_t size = 0;
  std::vector<std::string> urls;  // foreign layers only
  std::map<std::string, std::string> annotations;
  std::string os;            // platform, if given
  std::string architecture;  // platform, if given
  std::string variant;       // platform, if given
};

// `where` prefixes errors ("manifest sha256:...: layers[2]").
Result<Descriptor> ParseDescriptor(const nlohmann::json& j, const std::string& where);

// Parses JSON, InvalidArgument "<what>: malformed JSON" on error.
Result<nlohmann::json> ParseJsonDocument(std::string_view text, const std::string& what);

struct ImageManifest {
  Descriptor config;
  std::vector<Descriptor> layers;  // base layer first
};

// An image manifest (OCI or Docker schema 2). `what` names it in errors.
Result<ImageManifest> ParseImageManifest(std::string_view text, const std::string& what);

// The manifests of an image index (OCI) or manifest list (Docker).
Result<std::vector<Descriptor>> ParseImageIndex(std::string_view text, const std::string& what);

// The platform's entry of an index: linux/<architecture>[/<variant>].
// InvalidArgument "<what> has no image for linux/<arch>" (listing what it has).
Result<Descriptor> PickPlatform(const std::vector<Descriptor>& manifests,
                                const std::string& architecture, const std::string& variant,
                                const std::string& what);

// The variant of this build's architecture ("v7", "v8") or empty.
std::string HostVariant();

}  // namespace sbx::oci

#endif  // SBX_OCI_MANIFEST_H_
