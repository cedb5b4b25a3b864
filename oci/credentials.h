// Registry credentials, found the way Docker finds them, for the image puller
// and written by `sbx login` / `sbx logout`.
//
// Sources are docker config.json-format files ({"auths": {...}, "credHelpers":
// {...}, "credsStore": "..."}) and the credential helpers they name
// (docker-credential-<name>, spoken to with the docker-credential-helpers
// protocol through a CommandRunner).
//
// Secrets: no password, identity token or "auth" string ever appears in a
// Status message. Errors name the file and the JSON path instead:
//   /root/.docker/config.json: auths["ghcr.io"].auth: not base64 "user:password"
// Helper failures carry the helper's name, exit code and trimmed stderr (or,
// if that is empty, its stdout unless that looks like JSON: the
// docker-credential-helpers print their errors there), never what was written
// to its stdin.
//
// Thread safety: CanonicalRegistryHost and RegistryServerUrl are pure.
// CredentialStore holds no mutable state; Get may be called from several
// threads at once if the runner allows it. Get blocks on file reads and on
// helpers (up to 30 s each), so it belongs on a worker thread, not the loop.
// Save and Erase take no lock: two concurrent writers of one file each leave
// a whole file (the rewrite is an atomic rename), and the last one wins.
#ifndef SBX_OCI_CREDENTIALS_H_
#define SBX_OCI_CREDENTIALS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "oci/command.h"

namespace sbx::oci {

struct RegistryCredential {
  std::string username;
  std::string password;  // or the helper's Secret
  // OAuth2 refresh token: config.json "identitytoken", or a helper's Secret
  // when it answers Username "<token>".
  std::string identity_token;

  bool operator==(const RegistryCredential&) const = default;
};

// The key a registry is known by: "docker.io" for Docker Hub (config.json keys
// "https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"
// and "docker.io" all mean it), otherwise host[:port] with the host
// lower-cased, taken from a key that may carry a scheme and a path
// ("https://registry.example.com:5000/v2/" -> "registry.example.com:5000").
// Empty for an empty key.
std::string CanonicalRegistryHost(std::string_view key);

// What Docker passes to credential helpers and uses as the auths key for a
// registry: "https://index.docker.io/v1/" for Docker Hub (any of its
// spellings), otherwise `registry` as given.
std::string RegistryServerUrl(std::string_view registry);

class CredentialStore {
 public:
  // config_files: docker config.json-format files, searched in order. A
  // missing file is skipped; an unreadable or malformed one makes Get fail
  // with an error naming the file and the field. runner runs credential
  // helpers; it is borrowed and must outlive the store.
  CredentialStore(std::vector<std::string> config_files, CommandRunner& runner);

  // The credential for `registry` ("docker.io", "localhost:5000"; any
  // spelling CanonicalRegistryHost accepts). Per file, in order:
  //   1. credHelpers entry whose key canonicalises to the registry -> run
  //      that helper;
  //   2. auths entry whose key canonicalises to the registry (the
  //      RegistryServerUrl key first): "auth" (base64 "user:password", which
  //      wins over "username"/"password") and "identitytoken";
  //   3. credsStore -> run that helper.
  // The first source that has a credential wins. A helper answering
  // "credentials not found" and an auths entry with no credential in it (the
  // `{}` Docker leaves when a credsStore holds the secret) pass on to the
  // next source. nullopt when nothing has one. Files are re-read on every
  // call: `sbx login` edits them and they are small.
  //
  // Errors: InvalidArgument for a malformed file or an empty registry;
  // FailedPrecondition "credential helper docker-credential-X not found in
  // PATH"; Unavailable when a helper fails, times out or answers garbage;
  // whatever ReadFile returns for an unreadable file.
  Result<std::optional<RegistryCredential>> Get(const std::string& registry) const;

  // `sbx login`: sets auths[RegistryServerUrl(CanonicalRegistryHost(registry))]
  // in `file` and removes every other auths key that canonicalises to the
  // same registry, keeping all other keys of the file in their order. The
  // entry is {"auth": base64 "user:password"} plus "identitytoken" when set.
  // The file (and a missing parent directory, 0700) is created; it is
  // rewritten atomically with mode 0600 even if it was wider. A symlinked
  // file is written through to its target. InvalidArgument for an empty
  // credential, a username containing ':' (it could not be read back), or a
  // malformed existing file, which is left untouched.
  static Status Save(const std::string& file, const std::string& registry,
                     const RegistryCredential& cred);

  // `sbx logout`: removes every auths key of `file` that canonicalises to
  // `registry`, rewriting the file as Save does. Returns whether something
  // was removed; a missing file is false, not an error.
  static Result<bool> Erase(const std::string& file, const std::string& registry);

 private:
  std::vector<std::string> config_files_;
  CommandRunner& runner_;  // borrowed; outlives this store
};

}  // namespace sbx::oci

#endif  // SBX_OCI_CREDENTIALS_H_
