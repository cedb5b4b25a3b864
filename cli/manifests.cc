// ReadManifests: the -f arguments of apply and delete.
#include <unistd.h>

#include <cerrno>

#include "api/decode.h"
#include "cli/commands.h"
#include "cli/prompt.h"
#include "common/fs.h"

namespace sbx::cli {
namespace {

bool IsManifestFile(std::string_view name) {
  return name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json");
}

Status AddDocuments(std::string_view text, const std::string& source, std::vector<Manifest>* out) {
  SBX_ASSIGN_OR_RETURN(std::vector<Json> docs, api::ParseDocuments(text, source));
  for (auto& d : docs) out->push_back(Manifest{source, std::move(d)});
  return Status::Ok();
}

}  // namespace

Result<std::vector<Manifest>> ReadManifests(const std::vector<std::string>& paths, int stdin_fd) {
  std::vector<Manifest> out;
  for (const std::string& path : paths) {
    if (path == "-") {
      SBX_ASSIGN_OR_RETURN(std::string text, ReadAll(stdin_fd));
      SBX_RETURN_IF_ERROR(AddDocuments(text, "STDIN", &out));
      continue;
    }
    if (!PathExists(path)) {
      return NotFound("the path \"" + path + "\" does not exist");
    }
    std::vector<std::string> files;
    if (IsDirectory(path)) {
      SBX_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(path));
      for (const auto& n : names) {
        std::string full = JoinPath(path, n);
        if (IsManifestFile(n) && !IsDirectory(full)) files.push_back(full);
      }
    } else {
      files.push_back(path);
    }
    for (const auto& f : files) {
      SBX_ASSIGN_OR_RETURN(std::string text, ReadFile(f));
      SBX_RETURN_IF_ERROR(AddDocuments(text, f, &out));
    }
  }
  return out;
}

Result<api::KindInfo> KindOfManifest(const Manifest& manifest) {
  const Json& o = manifest.object;
  std::string api_version = o.value("apiVersion", "");
  std::string kind = o.value("kind", "");
  const api::KindInfo* info = api::FindKindByApiVersion(api_version, kind);
  if (!info) {
    const Json& meta = o.contains("metadata") ? o["metadata"] : Json::object();
    return NotFound("resource mapping not found for name: \"" + meta.value("name", "") +
                    "\" namespace: \"" + meta.value("namespace", "") + "\" from \"" +
                    manifest.source + "\": no matches for kind \"" + kind + "\" in version \"" +
                    api_version + "\"");
  }
  api::KindInfo k = *info;
  size_t slash = api_version.find('/');
  k.version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  return k;
}

Result<std::string> NamespaceOfManifest(const Invocation& inv, const api::KindInfo& kind,
                                        const Manifest& manifest) {
  if (!kind.namespaced) return std::string();
  std::string own;
  const Json& o = manifest.object;
  if (o.contains("metadata") && o["metadata"].is_object()) {
    own = o["metadata"].value("namespace", "");
  }
  if (own.empty()) return inv.ns;
  if (inv.ns_explicit && own != inv.ns) {
    return InvalidArgument(
        "the namespace from the provided object \"" + own + "\" does not match the namespace \"" +
        inv.ns + "\". You must pass '--namespace=" + own + "' to perform this operation.");
  }
  return own;
}

}  // namespace sbx::cli
