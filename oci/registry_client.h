// A client of the OCI distribution API (Docker Registry HTTP API v2), over
// libcurl: manifests and blobs of one registry, with its authentication and
// transport settings.
//
// Authentication follows Docker: a request goes out without credentials (or
// with the token this client already holds for the repository); a 401 names
// the scheme in WWW-Authenticate. "Bearer" sends the client to the token
// realm (with basic credentials, or an identity token as an OAuth2 refresh
// token, when the registry has some), "Basic" gets the credentials directly.
// Tokens are cached per repository until they expire. Credentials never
// appear in errors or logs; redirected blob downloads (registries hand out
// signed storage URLs) do not carry the Authorization header to another host.
//
// Transport: HTTPS verified against the system's CAs plus the registry's
// ca_file; plain_http for registries that speak HTTP only; a loopback
// registry with no settings is tried over HTTPS and then HTTP, as Docker
// treats 127.0.0.0/8. Mirrors are tried in order before the registry itself
// for reads; a mirror that fails or lacks the content is skipped.
//
// Thread safety: all methods may be called from any thread (layers are
// fetched in parallel); the token cache is guarded.
#ifndef SBX_OCI_REGISTRY_CLIENT_H_
#define SBX_OCI_REGISTRY_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "oci/credentials.h"
#include "oci/reference.h"

namespace sbx::oci {

struct RegistryHostSettings {
  bool plain_http = false;       // http:// only
  bool skip_tls_verify = false;  // https without certificate checks
  std::string ca_file;           // extra trusted CAs (PEM)
  // "https://mirror.example:5000", "http://10.0.0.2:5000" or "host:port"
  // (https); tried in order before the registry for manifests and blobs.
  std::vector<std::string> mirrors;
  bool operator==(const RegistryHostSettings&) const = default;
};

// Per-registry settings, from a TOML file:
//
//   [registry."docker.io"]
//   mirrors = ["https://mirror.internal:5000"]
//   [registry."10.0.0.5:5000"]
//   plain_http = true
//   [registry."registry.corp.example"]
//   ca_file = "/etc/sbx/certs/corp-ca.pem"
//
// Keys are registries as image references name them ("docker.io",
// "host:port"). A mirror's own transport settings are looked up under its
// host[:port]. Unknown keys and bad values are InvalidArgument naming the file,
// the key and its line.
struct RegistrySettings {
  std::map<std::string, RegistryHostSettings> hosts;

  // A missing file gives no settings.
  static Result<RegistrySettings> Load(const std::string& path);
  // other_keys: top-level keys other than "registry" are left to the caller
  // (sbxd.toml holds these tables among its own settings).
  static Result<RegistrySettings> Parse(std::string_view toml, const std::string& source_name,
                                        bool other_keys = false);
  RegistryHostSettings For(const std::string& registry) const;
  bool operator==(const RegistrySettings&) const = default;
};

// Where credentials come from: nullopt when the registry has none.
using CredentialLookup =
    std::function<Result<std::optional<RegistryCredential>>(const std::string& registry)>;

struct FetchedManifest {
  std::string media_type;  // from Content-Type, else the document's mediaType
  std::string digest;      // sha256 of body, checked against what was asked for
  std::string body;
};

// Bytes received so far for one blob download.
using BlobProgress = std::function<void(int64_t bytes)>;

class RegistryClient {
 public:
  // credentials: may be empty (anonymous only).
  RegistryClient(RegistrySettings settings, CredentialLookup credentials);
  // Replaces the settings (sbxd's configuration reload); pulls already
  // under way keep the endpoints they started with.
  void SetSettings(RegistrySettings settings);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // GET /v2/<repo>/manifests/<reference>; reference is the tag or digest.
  // A digest reference must match the body's sha256; for a tag, the
  // Docker-Content-Digest header (when sent) must. Bodies over
  // kMaxManifestBytes are refused (TooLarge). NotFound when the registry does
  // not have it.
  Result<FetchedManifest> GetManifest(const ImageReference& image, const std::string& reference);

  // Downloads a blob into `path` (created; must not exist), verifying its size
  // and digest while it streams. On error the file is removed.
  Status GetBlob(const ImageReference& image, const std::string& digest, int64_t size,
                 const std::string& path, const BlobProgress& progress = nullptr);

  // Checks that `credential` is accepted by the registry (sbx login): GET
  // /v2/ and, for token registries, a token for the registry itself.
  // Unauthenticated-style failures are FailedPrecondition "login to X failed:
  // unauthorized"; the credential is not stored anywhere.
  Status CheckLogin(const std::string& registry, const RegistryCredential& credential);

  // Aborts every transfer in progress and refuses new ones (shutdown).
  void Cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sbx::oci

#endif  // SBX_OCI_REGISTRY_CLIENT_H_
