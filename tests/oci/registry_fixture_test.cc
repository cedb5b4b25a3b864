// The registry fixture against the real docker-registry and skopeo: images
// pushed with skopeo come back over the distribution API, and the TLS, basic
// and token auth set-ups behave as a registry client will see them.
#include "tests/oci/registry_fixture.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "tests/oci/image_test_util.h"

namespace sbx::oci::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";

TestImage TwoLayerImage(const std::string& marker) {
  TestImage image;
  image.layers = {MakeLayer({Dir("etc"), File("etc/hostname", marker)}),
                  MakeLayer({Dir("app"), File("app/run.sh", "echo " + marker + "\n", 0755)})};
  return image;
}

HttpResponse GetManifest(const TestRegistry& registry, const std::string& repo,
                         const std::string& reference, const std::string& accept,
                         bool authorize = true) {
  HttpRequest get = registry.Request("GET", "/v2/" + repo + "/manifests/" + reference);
  get.headers.push_back("Accept: " + accept);
  if (authorize) registry.Authorize(get, repo);
  return SendHttp(get);
}

HttpResponse GetWithBearer(const TestRegistry& registry, const std::string& path,
                           const std::string& token, const std::string& accept) {
  HttpRequest get = registry.Request("GET", path);
  get.headers = {"Accept: " + accept, "Authorization: Bearer " + token};
  return SendHttp(get);
}

// A token from the realm, as a client fetches it; empty on failure.
std::string FetchToken(const TokenServer& server, const std::string& scope,
                       const std::string& user = "", const std::string& password = "",
                       long* status = nullptr) {
  HttpRequest get;
  get.url = server.realm() + "?service=sbx-test-registry&scope=" + scope;
  get.user = user;
  get.password = password;
  HttpResponse response = SendHttp(get);
  if (status != nullptr) *status = response.status;
  if (response.status != 200) return "";
  Json j = Json::parse(response.body, nullptr, false);
  EXPECT_EQ(j["token"], j["access_token"]) << response.body;
  EXPECT_EQ(j["expires_in"], 300) << response.body;
  EXPECT_TRUE(j.contains("issued_at")) << response.body;
  return j.value("token", "");
}

TEST(RegistryFixtureTest, PlainRegistryServesPushedImageAndMultiPlatformIndex) {
  TempDir dir;
  WrittenImage image = WriteOciLayout(dir.Sub("image"), TwoLayerImage("one"));
  WrittenIndex index = WriteMultiPlatformLayout(
      dir.Sub("multi"), {{"amd64", TwoLayerImage("amd64")}, {"arm64", TwoLayerImage("arm64")}},
      "v2");
  std::unique_ptr<TestRegistry> registry;
  ASSERT_NO_FATAL_FAILURE(registry = std::make_unique<TestRegistry>());

  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("image"), "sbx/two:v1"));
  // TestImage's name carries the tag "latest", which picks the entry too.
  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("image") + ":latest", "sbx/two:latest"));
  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("multi") + ":v2", "sbx/multi:v2"));

  HttpResponse manifest = GetManifest(*registry, "sbx/two", "v1", kOciManifest);
  ASSERT_EQ(manifest.status, 200) << manifest.error << manifest.body;
  EXPECT_EQ(manifest.Header("Content-Type"), kOciManifest);
  EXPECT_EQ(manifest.Header("Docker-Content-Digest"), image.manifest_digest);
  EXPECT_EQ(Json::parse(manifest.body)["layers"].size(), 2u);
  EXPECT_EQ(
      GetManifest(*registry, "sbx/two", "latest", kOciManifest).Header("Docker-Content-Digest"),
      image.manifest_digest);

  HttpResponse got = GetManifest(*registry, "sbx/multi", "v2", kOciIndex);
  ASSERT_EQ(got.status, 200) << got.error << got.body;
  EXPECT_EQ(got.Header("Content-Type"), kOciIndex);
  EXPECT_EQ(got.Header("Docker-Content-Digest"), index.index_digest);
  Json manifests = Json::parse(got.body)["manifests"];
  ASSERT_EQ(manifests.size(), 2u);
  EXPECT_EQ(manifests[0]["platform"], (Json{{"architecture", "amd64"}, {"os", "linux"}}));
  EXPECT_EQ(manifests[1]["platform"], (Json{{"architecture", "arm64"}, {"os", "linux"}}));
  EXPECT_EQ(manifests[1]["digest"], index.images[1].manifest_digest);

  HttpResponse arm64 =
      GetManifest(*registry, "sbx/multi", index.images[1].manifest_digest, kOciManifest);
  ASSERT_EQ(arm64.status, 200) << arm64.body;
  HttpResponse config =
      SendHttp(registry->Request("GET", "/v2/sbx/multi/blobs/" + index.images[1].config_digest));
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_EQ(Json::parse(config.body)["architecture"], "arm64");
}

TEST(RegistryFixtureTest, BlobDataPathIsServedAsStoredWithoutReverification) {
  TempDir dir;
  WrittenImage image = WriteOciLayout(dir.Sub("image"), TwoLayerImage("one"));
  std::unique_ptr<TestRegistry> registry;
  ASSERT_NO_FATAL_FAILURE(registry = std::make_unique<TestRegistry>());
  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("image"), "sbx/two:v1"));
  std::string layer = image.layer_digests[0];
  std::string path = registry->BlobDataPath(layer);
  ASSERT_TRUE(PathExists(path)) << path;
  Result<std::string> stored = ReadFile(path);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  std::string original = *stored;

  ASSERT_NO_FATAL_FAILURE(WriteBytes(path, original.substr(0, original.size() / 2)));
  HttpResponse truncated = SendHttp(registry->Request("GET", "/v2/sbx/two/blobs/" + layer));

  ASSERT_EQ(truncated.status, 200) << truncated.error;
  EXPECT_EQ(truncated.body, original.substr(0, original.size() / 2));
  EXPECT_EQ(truncated.Header("Docker-Content-Digest"), layer);

  // Manifests too are stored as blobs and served unchecked under their old digest.
  std::string forged = R"({"schemaVersion":2,"mediaType":")" + std::string(kOciManifest) +
                       R"(","config":{"mediaType":"x","digest":"sha256:)" + std::string(64, '1') +
                       R"(","size":1},"layers":[]})";
  ASSERT_NO_FATAL_FAILURE(WriteBytes(registry->BlobDataPath(image.manifest_digest), forged));
  HttpResponse manifest = GetManifest(*registry, "sbx/two", "v1", kOciManifest);
  ASSERT_EQ(manifest.status, 200) << manifest.body;
  EXPECT_EQ(manifest.body, forged);
  EXPECT_EQ(manifest.Header("Docker-Content-Digest"), image.manifest_digest);
}

TEST(RegistryFixtureTest, PutBlobAndPutManifestUploadWhatSkopeoWouldNot) {
  std::unique_ptr<TestRegistry> registry;
  ASSERT_NO_FATAL_FAILURE(registry = std::make_unique<TestRegistry>());
  std::string config =
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  std::string config_digest = registry->PutBlob("odd/app", config);
  ASSERT_FALSE(config_digest.empty());
  HttpResponse blob = SendHttp(registry->Request("GET", "/v2/odd/app/blobs/" + config_digest));
  EXPECT_EQ(blob.body, config);

  Json manifest = {{"schemaVersion", 2},
                   {"mediaType", kOciManifest},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", config_digest},
                     {"size", config.size()}}},
                   {"layers", Json::array()}};
  EXPECT_EQ(registry->PutManifest("odd/app", "ok", manifest.dump(), kOciManifest), 201);

  // distribution 2.8 caps manifest bodies at 4 MiB.
  Json big = manifest;
  big["annotations"] = {{"padding", std::string(4 << 20, 'x')}};
  EXPECT_EQ(registry->PutManifest("odd/app", "big", big.dump(), kOciManifest), 400);
  Json almost = manifest;
  almost["annotations"] = {{"padding", std::string((4 << 20) - 1024, 'x')}};
  EXPECT_EQ(registry->PutManifest("odd/app", "almost", almost.dump(), kOciManifest), 201);

  // Only the manifest's own media type is checked, not its config's.
  Json artifact = manifest;
  artifact["config"]["mediaType"] = "application/vnd.example.artifact+json";
  EXPECT_EQ(registry->PutManifest("odd/app", "artifact", artifact.dump(), kOciManifest), 201);
  // An OCI manifest is not served to a client that does not accept its type.
  HttpResponse not_accepted = GetManifest(*registry, "odd/app", "ok",
                                          "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(not_accepted.status, 404);
  EXPECT_THAT(not_accepted.body, HasSubstr("MANIFEST_UNKNOWN"));

  // An unknown media type falls back to the schema1 parser, which rejects it.
  EXPECT_EQ(registry->PutManifest("odd/app", "unknown", manifest.dump(),
                                  "application/vnd.example.unknown+json"),
            400);
  // A manifest naming a blob the repository lacks is rejected.
  Json dangling = manifest;
  dangling["config"]["digest"] = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(registry->PutManifest("odd/app", "dangling", dangling.dump(), kOciManifest), 400);
}

TEST(RegistryFixtureTest, TlsHtpasswdRegistryRequiresBasicCredentials) {
  TempDir dir;
  WrittenImage image = WriteOciLayout(dir.Sub("image"), TwoLayerImage("tls"));
  std::unique_ptr<TestRegistry> registry;
  ASSERT_NO_FATAL_FAILURE(registry = std::make_unique<TestRegistry>(RegistryOptions{
                              .tls = true, .auth = RegistryOptions::Auth::kHtpasswd}));
  EXPECT_THAT(registry->url("/v2/"), StartsWith("https://127.0.0.1:"));
  EXPECT_TRUE(PathExists(registry->cert_dir() + "/ca.crt"));

  HttpResponse anonymous = SendHttp(registry->Request("GET", "/v2/"));
  EXPECT_EQ(anonymous.status, 401) << anonymous.error;
  EXPECT_THAT(anonymous.Header("WWW-Authenticate"), StartsWith("Basic "));

  HttpRequest authorized = registry->Request("GET", "/v2/");
  registry->Authorize(authorized, "");
  EXPECT_EQ(SendHttp(authorized).status, 200);

  HttpRequest wrong = registry->Request("GET", "/v2/");
  wrong.user = "sbx";
  wrong.password = "wrong";
  EXPECT_EQ(SendHttp(wrong).status, 401);

  HttpRequest untrusted = registry->Request("GET", "/v2/");
  untrusted.ca_file.clear();
  HttpResponse refused = SendHttp(untrusted);
  EXPECT_EQ(refused.status, 0) << "the server certificate must need the test CA";

  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("image"), "private/app:v1"));
  HttpResponse manifest = GetManifest(*registry, "private/app", "v1", kOciManifest);
  EXPECT_EQ(manifest.status, 200) << manifest.body;
  EXPECT_EQ(manifest.Header("Docker-Content-Digest"), image.manifest_digest);
}

TEST(RegistryFixtureTest, TokenRegistryChallengesAndAcceptsTokensFromTheRealm) {
  TempDir dir;
  WrittenImage image = WriteOciLayout(dir.Sub("image"), TwoLayerImage("token"));
  std::unique_ptr<TestRegistry> registry;
  ASSERT_NO_FATAL_FAILURE(registry = std::make_unique<TestRegistry>(
                              RegistryOptions{.auth = RegistryOptions::Auth::kToken}));
  const TokenServer& tokens = *registry->token_server();

  HttpResponse anonymous = SendHttp(registry->Request("GET", "/v2/"));
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.Header("WWW-Authenticate"),
            "Bearer realm=\"" + tokens.realm() + "\",service=\"sbx-test-registry\"");

  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("image"), "private/app:v1"));
  std::vector<TokenRequest> seen = tokens.requests();
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(seen.back().authorization);
  EXPECT_EQ(seen.back().user, "sbx");
  EXPECT_EQ(seen.back().status, 200);
  EXPECT_THAT(seen.back().scopes, Contains("repository:private/app:pull,push"));
  EXPECT_THAT(seen.back().target, HasSubstr("service=sbx-test-registry"));

  std::string token = FetchToken(tokens, "repository:private/app:pull", "sbx", "s3cret-pa55");
  ASSERT_FALSE(token.empty());
  HttpResponse manifest =
      GetWithBearer(*registry, "/v2/private/app/manifests/v1", token, kOciManifest);
  EXPECT_EQ(manifest.status, 200) << manifest.body;
  EXPECT_EQ(manifest.Header("Docker-Content-Digest"), image.manifest_digest);

  long status = 0;
  EXPECT_EQ(FetchToken(tokens, "repository:private/app:pull", "sbx", "wrong", &status), "");
  EXPECT_EQ(status, 401);
  EXPECT_EQ(tokens.requests().back().user, "");
}

TEST(RegistryFixtureTest, AnonymousTokensPullOnlyPublicRepositories) {
  TempDir dir;
  WriteOciLayout(dir.Sub("image"), TwoLayerImage("anon"));
  std::unique_ptr<TestRegistry> registry;
  ASSERT_NO_FATAL_FAILURE(registry = std::make_unique<TestRegistry>(
                              RegistryOptions{.auth = RegistryOptions::Auth::kToken}));
  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("image"), "public/app:v1"));
  ASSERT_NO_FATAL_FAILURE(registry->Push(dir.Sub("image"), "private/app:v1"));
  const TokenServer& tokens = *registry->token_server();

  std::string public_token = FetchToken(tokens, "repository:public/app:pull,push");
  ASSERT_FALSE(public_token.empty());
  EXPECT_FALSE(tokens.requests().back().authorization);
  EXPECT_EQ(
      GetWithBearer(*registry, "/v2/public/app/manifests/v1", public_token, kOciManifest).status,
      200);
  HttpRequest push = registry->Request("PUT", "/v2/public/app/manifests/v2");
  push.headers = {"Content-Type: " + std::string(kOciManifest),
                  "Authorization: Bearer " + public_token};
  push.body = "{}";
  HttpResponse pushed = SendHttp(push);
  EXPECT_EQ(pushed.status, 401) << "anonymous tokens carry pull only";
  EXPECT_THAT(pushed.Header("WWW-Authenticate"), HasSubstr("error=\"insufficient_scope\""));

  std::string private_token = FetchToken(tokens, "repository:private/app:pull");
  ASSERT_FALSE(private_token.empty());
  EXPECT_EQ(tokens.requests().back().status, 200) << "anonymous: a token with no access";
  HttpResponse denied =
      GetWithBearer(*registry, "/v2/private/app/manifests/v1", private_token, kOciManifest);
  EXPECT_EQ(denied.status, 401);
  EXPECT_THAT(denied.Header("WWW-Authenticate"),
              HasSubstr("scope=\"repository:private/app:pull\",error=\"insufficient_scope\""));
}

}  // namespace
}  // namespace sbx::oci::testing
