#include "oci/manifest.h"

#include <algorithm>

#include "oci/digest.h"

namespace sbx::oci {
namespace {

using Json = nlohmann::json;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

constexpr std::string_view kLayerTypes[] = {
    kOciLayerTarType,
    kOciLayerGzipType,
    kOciLayerZstdType,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};

Result<std::string> OptionalString(const Json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgument(where + "." + key + ": want a string");
  return it->get<std::string>();
}

}  // namespace

bool IsManifestType(std::string_view t) { return t == kOciManifestType || t == kDockerManifestType; }
bool IsIndexType(std::string_view t) { return t == kOciIndexType || t == kDockerManifestListType; }
bool IsConfigType(std::string_view t) {
  return t == kOciConfigType || t == "application/vnd.docker.container.image.v1+json";
}
bool IsLayerType(std::string_view t) {
  return std::find(std::begin(kLayerTypes), std::end(kLayerTypes), t) != std::end(kLayerTypes);
}

std::string ManifestAcceptHeader() {
  return std::string(kOciIndexType) + ", " + std::string(kDockerManifestListType) + ", " +
         std::string(kOciManifestType) + ", " + std::string(kDockerManifestType);
}

Result<Descriptor> ParseDescriptor(const Json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": want a descriptor object");
  Descriptor d;
  auto media = j.find("mediaType");
  if (media == j.end() || !media->is_string()) {
    return InvalidArgument(where + ".mediaType: want a string");
  }
  d.media_type = media->get<std::string>();
  auto digest = j.find("digest");
  if (digest == j.end() || !digest->is_string()) {
    return InvalidArgument(where + ".digest: want a string");
  }
  d.digest = digest->get<std::string>();
  Result<std::string> hex = ValidateDigest(d.digest);
  if (!hex.ok()) return hex.status().Annotate(where + ".digest");
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return InvalidArgument(where + ".size: want a non-negative integer");
  }
  d.size = size->get<int64_t>();
  if (auto a = j.find("annotations"); a != j.end() && !a->is_null()) {
    if (!a->is_object()) return InvalidArgument(where + ".annotations: want an object");
    for (const auto& [k, v] : a->items()) {
      if (!v.is_string()) return InvalidArgument(where + ".annotations." + k + ": want a string");
      d.annotations[k] = v.get<std::string>();
    }
  }
  if (auto u = j.find("urls"); u != j.end() && !u->is_null()) {
    if (!u->is_array()) return InvalidArgument(where + ".urls: want an array of strings");
    for (const Json& url : *u) {
      if (!url.is_string()) return InvalidArgument(where + ".urls: want an array of strings");
      d.urls.push_back(url.get<std::string>());
    }
  }
  if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
    if (!p->is_object()) return InvalidArgument(where + ".platform: want an object");
    SBX_ASSIGN_OR_RETURN(d.os, OptionalString(*p, "os", where + ".platform"));
    SBX_ASSIGN_OR_RETURN(d.architecture, OptionalString(*p, "architecture", where + ".platform"));
    SBX_ASSIGN_OR_RETURN(d.variant, OptionalString(*p, "variant", where + ".platform"));
  }
  return d;
}

Result<Json> ParseJsonDocument(std::string_view text, const std::string& what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(what + ": malformed JSON");
  return j;
}

Result<ImageManifest> ParseImageManifest(std::string_view text, const std::string& what) {
  SBX_ASSIGN_OR_RETURN(Json m, ParseJsonDocument(text, what));
  if (!m.is_object()) return InvalidArgument(what + ": want a JSON object");
  if (m.value("schemaVersion", Json()) != 2) {
    return InvalidArgument(what + ": schemaVersion must be 2");
  }
  if (auto mt = m.find("mediaType"); mt != m.end() && !mt->is_null()) {
    if (!mt->is_string()) return InvalidArgument(what + ".mediaType: want a string");
    if (!IsManifestType(mt->get<std::string>())) {
      return InvalidArgument(what + ": unsupported media type " + Quote(mt->get<std::string>()));
    }
  }
  ImageManifest out;
  SBX_ASSIGN_OR_RETURN(out.config, ParseDescriptor(m.value("config", Json()), what + ": config"));
  if (!IsConfigType(out.config.media_type)) {
    return InvalidArgument(what + ": unsupported config media type " +
                           Quote(out.config.media_type) + " (not a container image)");
  }
  auto layers = m.find("layers");
  if (layers == m.end() || !layers->is_array()) {
    return InvalidArgument(what + ": layers: want an array");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string where = what + ": layers[" + std::to_string(i) + "]";
    SBX_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*layers)[i], where));
    if (!IsLayerType(d.media_type)) {
      return InvalidArgument(where + ": unsupported layer media type " + Quote(d.media_type));
    }
    out.layers.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<Descriptor>> ParseImageIndex(std::string_view text, const std::string& what) {
  SBX_ASSIGN_OR_RETURN(Json j, ParseJsonDocument(text, what));
  if (!j.is_object()) return InvalidArgument(what + ": want a JSON object");
  if (j.value("schemaVersion", Json()) != 2) {
    return InvalidArgument(what + ": schemaVersion must be 2");
  }
  auto manifests = j.find("manifests");
  if (manifests == j.end() || !manifests->is_array()) {
    return InvalidArgument(what + ": manifests: want an array");
  }
  std::vector<Descriptor> out;
  for (size_t i = 0; i < manifests->size(); ++i) {
    SBX_ASSIGN_OR_RETURN(
        Descriptor d,
        ParseDescriptor((*manifests)[i], what + ": manifests[" + std::to_string(i) + "]"));
    out.push_back(std::move(d));
  }
  return out;
}

Result<Descriptor> PickPlatform(const std::vector<Descriptor>& manifests,
                                const std::string& architecture, const std::string& variant,
                                const std::string& what) {
  const Descriptor* any_variant = nullptr;
  std::vector<std::string> offered;
  for (const Descriptor& d : manifests) {
    if (!IsManifestType(d.media_type)) continue;  // attestations, nested indexes
    if (!d.os.empty() || !d.architecture.empty()) {
      offered.push_back(d.os + "/" + d.architecture + (d.variant.empty() ? "" : "/" + d.variant));
    }
    if (d.os != "linux" || d.architecture != architecture) continue;
    if (d.variant == variant) return d;
    if (any_variant == nullptr && (d.variant.empty() || variant.empty())) any_variant = &d;
  }
  if (any_variant != nullptr) return *any_variant;
  std::string platform = "linux/" + architecture + (variant.empty() ? "" : "/" + variant);
  std::string has = offered.empty() ? "no platforms listed" : "it has " + [&] {
    std::string s;
    for (const std::string& o : offered) s += (s.empty() ? "" : ", ") + o;
    return s;
  }();
  return InvalidArgument(what + " has no image for " + platform + " (" + has + ")");
}

std::string HostVariant() {
#if defined(__aarch64__)
  return "v8";
#elif defined(__ARM_ARCH_7A__)
  return "v7";
#else
  return "";
#endif
}

}  // namespace sbx::oci
