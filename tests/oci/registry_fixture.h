// A real OCI distribution registry for tests: TestRegistry runs
// `docker-registry serve` (distribution 2.8) on 127.0.0.1 with its storage in a
// private temporary directory, optionally behind TLS (a certificate for
// 127.0.0.1 signed by a fresh test CA) and basic or bearer-token auth.
// TokenServer is the in-process token service for bearer auth; it records the
// requests it saw so tests can assert a client's auth flow. Images get into
// the registry with skopeo (Push) or raw HTTP (PutManifest, PutBlob, SendHttp).
//
// Failures (the registry not starting, skopeo failing, transport errors) are
// reported as gtest failures, fatal where the signature allows; wrap the
// constructor and Push in ASSERT_NO_FATAL_FAILURE to stop the test there.
//
// Thread safety: TestRegistry is used by one thread (the test's). TokenServer
// serves on its own thread; its accessors are safe from any thread.
// Ownership: each object owns its child process, thread, sockets and files,
// and releases them in its destructor.
#ifndef SBX_TESTS_OCI_REGISTRY_FIXTURE_H_
#define SBX_TESTS_OCI_REGISTRY_FIXTURE_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbx::oci::testing {

// One HTTP exchange through libcurl. Proxies are never used.
struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  std::string ca_file;  // PEM bundle to trust for https URLs
  std::string user;     // Basic credentials when not empty
  std::string password;
};

struct HttpResponse {
  long status = 0;                                           // 0: no response (see error)
  std::string error;                                         // libcurl's message when status is 0
  std::vector<std::pair<std::string, std::string>> headers;  // lower-cased names, in order
  std::string body;
  // The first header named `name` (any case); empty if absent.
  std::string Header(std::string_view name) const;
};

HttpResponse SendHttp(const HttpRequest& request);

// What the token server saw in one request.
struct TokenRequest {
  std::string target;               // path and query, as sent
  bool authorization = false;       // an Authorization header was present
  std::string user;                 // the authenticated user; empty if anonymous or rejected
  std::vector<std::string> scopes;  // the scope parameters, decoded
  int status = 0;                   // the status code answered
};

// Docker token protocol server: GET /token?service=...&scope=repository:<name>:<actions>
// (scope may repeat, or hold several space-separated scopes) answers 200 with
// {"token", "access_token", "expires_in": 300, "issued_at"}. The token is an
// ES256 JWT whose header carries x5c = [the signing certificate], a
// self-signed certificate that cert_pem() returns for the registry's
// rootcertbundle. Policy: anonymous requests get pull on repositories named
// "public/..." and nothing else; the configured user gets every action asked
// for; wrong credentials get 401. One request per connection.
class TokenServer {
 public:
  TokenServer(std::string username, std::string password, std::string service, std::string issuer);
  ~TokenServer();
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;

  std::string realm() const;     // "http://127.0.0.1:PORT/token"
  std::string cert_pem() const;  // the signing certificate
  std::vector<TokenRequest> requests() const;
  void ClearRequests();
  // A token for the configured user granting `scopes` ("repository:<name>:<a,b>")
  // as asked, without a request (not recorded).
  std::string MintToken(const std::vector<std::string>& scopes) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct RegistryOptions {
  enum class Auth { kNone, kHtpasswd, kToken };
  // Serve HTTPS with a certificate for 127.0.0.1 signed by a fresh test CA.
  bool tls = false;
  // kHtpasswd: basic auth (a bcrypt htpasswd file); kToken: bearer tokens from a TokenServer.
  Auth auth = Auth::kNone;
  std::string username = "sbx";
  std::string password = "s3cret-pa55";
};

inline constexpr std::string_view kTestRegistryService = "sbx-test-registry";
// The identity token the TokenServer takes (POST /token, grant_type
// refresh_token) as the configured user.
inline constexpr std::string_view kTestRefreshToken = "sbx-test-identity-token";
inline constexpr std::string_view kTestTokenIssuer = "sbx-test-issuer";

class TestRegistry {
 public:
  // Starts the registry (and, for kToken, its TokenServer) on free ports and
  // waits until /v2/ answers (about 10 s at most); on failure, fails the test
  // with the registry's log. The destructor kills the registry.
  explicit TestRegistry(RegistryOptions options = {});
  ~TestRegistry();
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;

  std::string host() const;                      // "127.0.0.1:PORT"
  std::string url(std::string_view path) const;  // "http[s]://127.0.0.1:PORT" + path
  std::string ca_file() const;                   // PEM of the test CA (tls only)
  std::string cert_dir() const;                  // a dir holding ca.crt, for skopeo --dest-cert-dir
  std::string storage_dir() const;               // the filesystem driver's root directory
  std::string log() const;                       // what the registry has logged so far
  const RegistryOptions& options() const;
  // Null unless auth is kToken.
  const TokenServer* token_server() const;
  TokenServer* token_server();

  // Path of a blob's data file in storage
  // (<root>/docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data), for tests
  // that corrupt or truncate it. The registry does not re-verify it on GET.
  std::string BlobDataPath(const std::string& digest) const;

  // skopeo copy --preserve-digests [--all] oci:<layout> docker://<host>/<dest> with this
  // registry's credentials and TLS settings. `layout` is a layout directory,
  // optionally followed by ":<tag>" to pick the index.json entry whose
  // org.opencontainers.image.ref.name is that tag. `dest` is "repo:tag".
  // Fatal failure with skopeo's output (and the registry's log) if it fails.
  void Push(const std::string& layout, const std::string& dest, bool all = true);

  // A request for `path` ("/v2/...") on this registry, trusting its CA; no credentials.
  HttpRequest Request(std::string method, std::string_view path) const;
  // Adds the configured user's credentials for pull and push on `repository`:
  // basic for kHtpasswd, a bearer token minted by the TokenServer for kToken.
  void Authorize(HttpRequest& request, const std::string& repository) const;

  // Authenticated PUT /v2/<repo>/manifests/<reference> of `body` with
  // Content-Type `media_type`, for manifests skopeo would not push (oversized,
  // unknown media types). Returns the HTTP status (0 after a transport
  // failure, which also fails the test).
  int PutManifest(const std::string& repo, const std::string& reference, const std::string& body,
                  const std::string& media_type);
  // Authenticated monolithic blob upload (POST, then PUT ?digest=) of `data`;
  // returns its digest, or "" after failing the test.
  std::string PutBlob(const std::string& repo, const std::string& data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sbx::oci::testing

#endif  // SBX_TESTS_OCI_REGISTRY_FIXTURE_H_
