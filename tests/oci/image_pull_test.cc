// Pulls from a real registry (Debian's docker-registry, started by the test
// on loopback): plain, TLS with htpasswd, and token auth; images pushed with
// skopeo from OCI layouts the tests build. Bad content is planted in the
// registry's own storage or pushed as raw manifests, and must be refused with
// a clear error that leaves the store as it was.
#include "oci/image_puller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "common/fs.h"
#include "oci/digest.h"
#include "oci/image_import.h"
#include "oci/manifest.h"
#include "oci/registry_client.h"
#include "tests/oci/image_test_util.h"
#include "tests/oci/registry_fixture.h"

namespace sbx::oci {
namespace {

using ::sbx::oci::testing::Compression;
using ::sbx::oci::testing::Device;
using ::sbx::oci::testing::File;
using ::sbx::oci::testing::Hardlink;
using ::sbx::oci::testing::MakeLayer;
using ::sbx::oci::testing::RegistryOptions;
using ::sbx::oci::testing::Symlink;
using ::sbx::oci::testing::TempDir;
using ::sbx::oci::testing::TestImage;
using ::sbx::oci::testing::TestRegistry;
using ::sbx::oci::testing::WriteMultiPlatformLayout;
using ::sbx::oci::testing::WriteOciLayout;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen());
  return out;
}

// How many times the registry answered "GET <path>" with 200 (its access log).
int Served(const TestRegistry& reg, const std::string& path) {
  std::string log = reg.log();
  std::string needle = "\"GET " + path + " HTTP/1.1\" 200 ";
  int n = 0;
  for (size_t pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class PullTest : public ::testing::Test {
 public:
  void SetUp() override {
    auto s = ImageStore::Open(tmp_.Sub("store"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  // A client for `reg` with these credentials (none if empty).
  std::unique_ptr<RegistryClient> Client(const TestRegistry& reg,
                                         std::optional<RegistryCredential> cred = std::nullopt) {
    RegistrySettings settings;
    if (reg.options().tls) settings.hosts[reg.host()].ca_file = reg.ca_file();
    return std::make_unique<RegistryClient>(
        settings, [cred](const std::string&) -> Result<std::optional<RegistryCredential>> {
          return cred;
        });
  }

  Result<ImageRecord> Pull(RegistryClient& client, const std::string& ref) {
    ImagePuller puller(*store_, client);
    return puller.Pull(ref);
  }

  // The store holds nothing: no image, no blob, no root file system, no
  // staging directory.
  void ExpectStoreEmpty() {
    EXPECT_THAT(store_->List(), IsEmpty());
    for (const char* dir : {"blobs/sha256", "rootfs", "tmp"}) {
      auto entries = ListDir(JoinPath(store_->root(), dir));
      ASSERT_TRUE(entries.ok());
      EXPECT_THAT(*entries, IsEmpty()) << dir;
    }
  }

  std::string Push(TestRegistry& reg, const TestImage& image, const std::string& dest) {
    std::string layout = tmp_.Sub("layout-" + std::to_string(counter_++));
    WriteOciLayout(layout, image);
    reg.Push(layout, dest);
    return layout;
  }

  TempDir tmp_;
  std::unique_ptr<ImageStore> store_;
  int counter_ = 0;
};

TestImage ThreeLayerImage() {
  TestImage image;
  image.layers = {MakeLayer({File("etc/base", "gzip layer")}, Compression::kGzip),
                  MakeLayer({File("etc/middle", "zstd layer")}, Compression::kZstd),
                  MakeLayer({File("etc/top", "plain layer"), File("etc/base", "replaced")},
                            Compression::kNone)};
  image.config = {{"Cmd", {"/bin/app"}}, {"Env", {"A=1"}}};
  return image;
}

TEST_F(PullTest, PullsTagWithGzipZstdAndPlainLayersFromPlainHttpRegistry) {
  TestRegistry reg;
  Push(reg, ThreeLayerImage(), "test/app:1");
  auto client = Client(reg);
  auto r = Pull(*client, reg.host() + "/test/app:1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->names, ElementsAre(reg.host() + "/test/app:1"));
  EXPECT_EQ(ReadFile(r->rootfs_dir + "/etc/base").value(), "replaced");
  EXPECT_EQ(ReadFile(r->rootfs_dir + "/etc/middle").value(), "zstd layer");
  EXPECT_EQ(ReadFile(r->rootfs_dir + "/etc/top").value(), "plain layer");
  EXPECT_THAT(r->config.cmd, ElementsAre("/bin/app"));
  // Every blob in the store is what its name says.
  for (const std::string& b : r->blobs) {
    auto path = store_->StoredBlob(b);
    ASSERT_TRUE(path.has_value()) << b;
    EXPECT_EQ(Sha256File(*path).value(), b);
  }
  auto resolved = store_->Resolve(reg.host() + "/test/app:1");
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->id, r->id);
  EXPECT_THAT(ListDir(JoinPath(store_->root(), "tmp")).value(), IsEmpty());
}

TEST_F(PullTest, PullsByDigestAndNamesTheImageByIt) {
  TestRegistry reg;
  Push(reg, ThreeLayerImage(), "test/app:1");
  auto client = Client(reg);
  auto tagged = Pull(*client, reg.host() + "/test/app:1");
  ASSERT_TRUE(tagged.ok()) << tagged.status().ToString();
  std::string by_digest = reg.host() + "/test/app@" + tagged->manifest_digest;
  auto r = Pull(*client, by_digest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, tagged->id);
  EXPECT_TRUE(store_->Resolve(by_digest).ok());
  // A digest the registry does not have.
  auto missing = Pull(*client, reg.host() + "/test/app@sha256:" + std::string(64, 'a'));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound) << missing.status().ToString();
}

TEST_F(PullTest, PicksThisHostsPlatformFromAnOciIndex) {
  TestRegistry reg;
  TestImage amd, arm;
  amd.layers = {MakeLayer({File("arch", "amd64")})};
  arm.layers = {MakeLayer({File("arch", "arm64")})};
  std::string layout = tmp_.Sub("multi");
  auto written = WriteMultiPlatformLayout(layout, {{"amd64", amd}, {"arm64", arm}}, "multi");
  reg.Push(layout + ":multi", "test/multi:1", /*all=*/true);
  auto client = Client(reg);
  RegistryClient& c = *client;
  ImagePuller puller(*store_, c);
  auto r = puller.Pull(reg.host() + "/test/multi:1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(r->rootfs_dir + "/arch").value(), HostArchitecture());
  // A puller for a platform the index lacks says what it has.
  PullerOptions riscv;
  riscv.architecture = "riscv64";
  ImagePuller other(*store_, c, riscv);
  auto none = other.Pull(reg.host() + "/test/multi:1");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("has no image for linux/riscv64"));
  EXPECT_THAT(none.status().message(), HasSubstr("linux/amd64, linux/arm64"));
}

TEST_F(PullTest, PullsDockerSchema2ManifestList) {
  TestRegistry reg;
  auto layer = MakeLayer({File("hello", "docker")}, Compression::kGzip);
  std::string layer_digest = reg.PutBlob("test/docker", layer.blob);
  nlohmann::json config = {{"architecture", HostArchitecture()},
                           {"os", "linux"},
                           {"config", {{"Cmd", {"sh"}}}},
                           {"rootfs", {{"type", "layers"}, {"diff_ids", {layer.diff_id}}}}};
  std::string config_text = config.dump();
  std::string config_digest = reg.PutBlob("test/docker", config_text);
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", kDockerManifestType},
      {"config",
       {{"mediaType", "application/vnd.docker.container.image.v1+json"},
        {"digest", config_digest},
        {"size", config_text.size()}}},
      {"layers",
       {{{"mediaType", "application/vnd.docker.image.rootfs.diff.tar.gzip"},
         {"digest", layer_digest},
         {"size", layer.blob.size()}}}}};
  std::string manifest_text = manifest.dump();
  std::string manifest_digest = Sha256Digest(manifest_text);
  ASSERT_EQ(reg.PutManifest("test/docker", manifest_digest, manifest_text,
                            std::string(kDockerManifestType)),
            201);
  nlohmann::json list = {
      {"schemaVersion", 2},
      {"mediaType", kDockerManifestListType},
      {"manifests",
       {{{"mediaType", kDockerManifestType},
         {"digest", manifest_digest},
         {"size", manifest_text.size()},
         {"platform", {{"os", "linux"}, {"architecture", HostArchitecture()}}}}}}};
  ASSERT_EQ(reg.PutManifest("test/docker", "v1", list.dump(), std::string(kDockerManifestListType)),
            201);
  auto client = Client(reg);
  auto r = Pull(*client, reg.host() + "/test/docker:v1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->manifest_digest, manifest_digest);
  EXPECT_EQ(ReadFile(r->rootfs_dir + "/hello").value(), "docker");
}

TEST_F(PullTest, TlsRegistryWithBasicAuthNeedsTheCredentialsAndNeverShowsThem) {
  RegistryOptions o;
  o.tls = true;
  o.auth = RegistryOptions::Auth::kHtpasswd;
  TestRegistry reg(o);
  Push(reg, ThreeLayerImage(), "private/app:1");
  std::string ref = reg.host() + "/private/app:1";

  auto anonymous = Client(reg);
  auto denied = Pull(*anonymous, ref);
  ASSERT_FALSE(denied.ok());
  EXPECT_THAT(denied.status().message(), HasSubstr("sbx login " + reg.host()));

  RegistryCredential wrong{o.username, "not-the-password", ""};
  auto refused = Pull(*Client(reg, wrong), ref);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("not-the-password")));

  // Without the CA, TLS verification fails and says so.
  RegistryClient untrusted(RegistrySettings{}, [&](const std::string&) {
    return Result<std::optional<RegistryCredential>>(
        RegistryCredential{o.username, o.password, ""});
  });
  auto unverified = Pull(untrusted, ref);
  ASSERT_FALSE(unverified.ok());
  EXPECT_THAT(unverified.status().message(), HasSubstr("certificate"));
  ExpectStoreEmpty();

  RegistryCredential right{o.username, o.password, ""};
  auto r = Pull(*Client(reg, right), ref);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadFile(r->rootfs_dir + "/etc/top").value(), "plain layer");

  // sbx login's check.
  EXPECT_TRUE(Client(reg)->CheckLogin(reg.host(), right).ok());
  Status bad = Client(reg)->CheckLogin(reg.host(), wrong);
  EXPECT_EQ(bad.code(), Code::kFailedPrecondition) << bad.ToString();
  EXPECT_THAT(bad.message(), Not(HasSubstr("not-the-password")));
}

TEST_F(PullTest, TokenAuthAnonymousForPublicAndCredentialsForPrivateRepositories) {
  RegistryOptions o;
  o.auth = RegistryOptions::Auth::kToken;
  TestRegistry reg(o);
  Push(reg, ThreeLayerImage(), "public/app:1");
  Push(reg, ThreeLayerImage(), "private/app:1");
  const_cast<testing::TokenServer*>(reg.token_server())->ClearRequests();

  auto anonymous = Client(reg);
  auto pub = Pull(*anonymous, reg.host() + "/public/app:1");
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  auto priv = Pull(*anonymous, reg.host() + "/private/app:1");
  ASSERT_FALSE(priv.ok());
  EXPECT_THAT(priv.status().message(), HasSubstr("sbx login"));
  for (const auto& req : reg.token_server()->requests()) {
    EXPECT_FALSE(req.authorization) << req.target;
  }

  RegistryCredential cred{o.username, o.password, ""};
  auto with_login = Pull(*Client(reg, cred), reg.host() + "/private/app:1");
  ASSERT_TRUE(with_login.ok()) << with_login.status().ToString();
  bool asked_as_user = false;
  for (const auto& req : reg.token_server()->requests()) {
    if (req.user == o.username) {
      asked_as_user = true;
      EXPECT_THAT(req.scopes, ElementsAre("repository:private/app:pull"));
    }
  }
  EXPECT_TRUE(asked_as_user);
  EXPECT_TRUE(Client(reg)->CheckLogin(reg.host(), cred).ok());
  EXPECT_FALSE(Client(reg)->CheckLogin(reg.host(), {o.username, "wrong", ""}).ok());

  // An identity token (config.json "identitytoken", or a credential helper's
  // "<token>" answer) is an OAuth2 refresh token.
  store_ = nullptr;
  ASSERT_TRUE(RemoveAll(tmp_.Sub("store")).ok());
  SetUp();
  const_cast<testing::TokenServer*>(reg.token_server())->ClearRequests();
  RegistryCredential identity{"", "", std::string(testing::kTestRefreshToken)};
  auto with_token = Pull(*Client(reg, identity), reg.host() + "/private/app:1");
  ASSERT_TRUE(with_token.ok()) << with_token.status().ToString();
  ASSERT_FALSE(reg.token_server()->requests().empty());
  EXPECT_EQ(reg.token_server()->requests()[0].user, o.username);
  EXPECT_THAT(reg.token_server()->requests()[0].scopes, ElementsAre("repository:private/app:pull"));
  RegistryCredential stale{"", "", "not-a-valid-refresh-token"};
  auto refused = Pull(*Client(reg, stale), reg.host() + "/private/app:2");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("not-a-valid-refresh-token")));
}

TEST_F(PullTest, ConcurrentPullsOfOneReferenceShareOneDownload) {
  TestRegistry reg;
  TestImage image;
  image.layers = {MakeLayer({File("big", RandomBytes(8 << 20, 1))}, Compression::kNone)};
  Push(reg, image, "test/big:1");
  std::string layer_digest = Sha256Digest(image.layers[0].blob);
  auto client = Client(reg);
  ImagePuller puller(*store_, *client);
  std::vector<Result<ImageRecord>> results(4, Internal("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = puller.Pull(reg.host() + "/test/big:1"); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->id, results[0]->id);
  }
  // Later pulls may re-check the manifest, but the layer came down once.
  EXPECT_EQ(Served(reg, "/v2/test/big/blobs/" + layer_digest), 1) << reg.log();
}

TEST_F(PullTest, LayersTheStoreHasAreNotDownloadedAgain) {
  TestRegistry reg;
  TestImage a = ThreeLayerImage();
  TestImage b = ThreeLayerImage();
  b.config = {{"Cmd", {"/bin/other"}}};  // same layers, another image
  Push(reg, a, "test/a:1");
  Push(reg, b, "test/b:1");
  auto client = Client(reg);
  ImagePuller puller(*store_, *client);
  ASSERT_TRUE(puller.Pull(reg.host() + "/test/a:1").ok());
  std::vector<PullProgress> seen;
  std::mutex mu;
  auto rb = puller.Pull(reg.host() + "/test/b:1", [&](const PullProgress& p) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(p);
  });
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().phase, PullProgress::Phase::kDone);
  ASSERT_EQ(seen.back().layers.size(), 3u);
  for (const auto& l : seen.back().layers) EXPECT_TRUE(l.cached) << l.digest;
  for (const auto& l : a.layers) {
    EXPECT_EQ(Served(reg, "/v2/test/a/blobs/" + Sha256Digest(l.blob)), 1);
    EXPECT_EQ(Served(reg, "/v2/test/b/blobs/" + Sha256Digest(l.blob)), 0);
  }
  EXPECT_THAT(rb->config.cmd, ElementsAre("/bin/other"));
}

TEST_F(PullTest, MirrorServesFirstAndTheRegistryIsTheFallback) {
  TestRegistry upstream, mirror;
  Push(upstream, ThreeLayerImage(), "test/app:1");
  Push(upstream, ThreeLayerImage(), "test/only-upstream:1");
  Push(mirror, ThreeLayerImage(), "test/app:1");
  RegistrySettings settings;
  settings.hosts[upstream.host()].mirrors = {"http://" + mirror.host()};
  settings.hosts[upstream.host()].plain_http = true;
  settings.hosts[mirror.host()].plain_http = true;
  RegistryClient client(settings, nullptr);
  ImagePuller puller(*store_, client);
  auto r = puller.Pull(upstream.host() + "/test/app:1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Served(upstream, "/v2/test/app/manifests/1"), 0);
  EXPECT_EQ(Served(mirror, "/v2/test/app/manifests/1"), 1);
  auto fallback = puller.Pull(upstream.host() + "/test/only-upstream:1");
  ASSERT_TRUE(fallback.ok()) << fallback.status().ToString();
}

struct BadCase {
  std::string name;
  // Plants the bad content for `ref` ("test/bad:1") in the registry.
  std::function<void(PullTest*, TestRegistry&)> plant;
  std::string message;
};

class PullBadInputTest : public PullTest {
 public:
  std::string PushLayer(TestRegistry& reg, std::vector<testing::TarEntry> entries) {
    TestImage image;
    image.layers = {MakeLayer({File("ok", "fine")}), MakeLayer(std::move(entries))};
    return Push(reg, image, "test/bad:1");
  }
};

TEST_F(PullBadInputTest, EachIsRefusedWithAClearErrorAndNothingIsLeft) {
  TestImage good = ThreeLayerImage();
  std::vector<BadCase> cases = {
      {"digest mismatch",
       [](PullTest* t, TestRegistry& reg) {
         TestImage image = ThreeLayerImage();
         t->Push(reg, image, "test/bad:1");
         std::string path = reg.BlobDataPath(Sha256Digest(image.layers[1].blob));
         std::string data = ReadFile(path).value();
         data[data.size() / 2] ^= 0x55;
         ASSERT_TRUE(WriteFileAtomic(path, data).ok());
       },
       "digest mismatch for blob sha256:"},
      {"truncated blob",
       [](PullTest* t, TestRegistry& reg) {
         TestImage image = ThreeLayerImage();
         t->Push(reg, image, "test/bad:1");
         std::string path = reg.BlobDataPath(Sha256Digest(image.layers[0].blob));
         ASSERT_EQ(::truncate(path.c_str(), 10), 0);
       },
       "is truncated: received 10 of"},
      {"unknown media type",
       [](PullTest*, TestRegistry& reg) {
         std::string cfg = reg.PutBlob("test/bad", "{\"model\":\"weights\"}");
         nlohmann::json m = {
             {"schemaVersion", 2},
             {"mediaType", kOciManifestType},
             {"config",
              {{"mediaType", "application/vnd.example.model.config.v1+json"},
               {"digest", cfg},
               {"size", 19}}},
             {"layers", nlohmann::json::array()}};
         ASSERT_EQ(reg.PutManifest("test/bad", "1", m.dump(), std::string(kOciManifestType)),
                   201);
       },
       "unsupported config media type \"application/vnd.example.model.config.v1+json\""},
      {"dot-dot path",
       [](PullTest* t, TestRegistry& reg) {
         static_cast<PullBadInputTest*>(t)->PushLayer(reg, {File("../escape", "x")});
       },
       "path contains \"..\""},
      {"escaping symlink",
       [](PullTest* t, TestRegistry& reg) {
         static_cast<PullBadInputTest*>(t)->PushLayer(
             reg, {Symlink("a", "../../../../../etc"), File("a/evil", "x")});
       },
       "escaping symlink"},
      {"escaping hardlink",
       [](PullTest* t, TestRegistry& reg) {
         static_cast<PullBadInputTest*>(t)->PushLayer(reg, {Hardlink("h", "/etc/passwd")});
       },
       "is outside the root"},
      {"device node",
       [](PullTest* t, TestRegistry& reg) {
         static_cast<PullBadInputTest*>(t)->PushLayer(reg, {Device("dev/sda", true)});
       },
       "device"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    TestRegistry reg;
    c.plant(this, reg);
    if (HasFatalFailure()) return;
    auto client = Client(reg);
    auto r = Pull(*client, reg.host() + "/test/bad:1");
    ASSERT_FALSE(r.ok());
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
    ExpectStoreEmpty();
    EXPECT_FALSE(PathExists("/etc/evil"));
  }
}

// docker-registry neither takes nor serves a manifest over 4 MiB, so a
// plain file server plays a registry that does: python3's http.server over a
// directory laid out as the API's paths.
TEST_F(PullTest, RefusesAnOversizedManifest) {
  std::string root = tmp_.Sub("static");
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", kOciManifestType},
                      {"annotations", {{"padding", std::string(5 << 20, 'x')}}}};
  testing::WriteBytes(root + "/v2/test/big/manifests/1", m.dump());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  std::string pidfile = tmp_.Sub("http.pid");
  ASSERT_EQ(testing::Run("cd '" + root + "' && (python3 -m http.server --bind 127.0.0.1 " +
                         std::to_string(port) + " >/dev/null 2>&1 & echo $! > '" + pidfile +
                         "')"),
            0);
  std::string pid = ReadFile(pidfile).value();
  RegistrySettings settings;
  settings.hosts["127.0.0.1:" + std::to_string(port)].plain_http = true;
  RegistryClient client(settings, nullptr);
  ImagePuller puller(*store_, client);
  Result<ImageRecord> r = Internal("not run");
  for (int i = 0; i < 50; ++i) {  // until the server listens
    r = puller.Pull("127.0.0.1:" + std::to_string(port) + "/test/big:1");
    if (r.ok() || r.status().code() != Code::kUnavailable) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  testing::Run("kill " + pid);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTooLarge) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("is larger than 4194304 bytes"));
  ExpectStoreEmpty();
}

TEST(RegistrySettingsTest, ParsesHostsMirrorsAndTls) {
  TempDir tmp;
  std::string ca = tmp.Sub("ca.pem");
  ASSERT_TRUE(WriteFileAtomic(ca, "pem").ok());
  auto s = RegistrySettings::Parse(
      "[registry.\"docker.io\"]\nmirrors = [\"https://mirror.internal:5000\", "
      "\"http://10.0.0.2:5000/\"]\n"
      "[registry.\"10.0.0.2:5000\"]\nplain_http = true\n"
      "[registry.\"corp.example\"]\nca_file = \"" + ca + "\"\n",
      "registries.toml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_THAT(s->For("docker.io").mirrors,
              ElementsAre("https://mirror.internal:5000", "http://10.0.0.2:5000/"));
  EXPECT_TRUE(s->For("10.0.0.2:5000").plain_http);
  EXPECT_EQ(s->For("corp.example").ca_file, ca);
  EXPECT_EQ(s->For("elsewhere.example"), RegistryHostSettings{});
  auto missing = RegistrySettings::Load(tmp.Sub("absent.toml"));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->hosts.empty());
}

TEST(RegistrySettingsTest, BadInputNamesTheFileLineAndKey) {
  struct Case {
    std::string toml, message;
  };
  std::vector<Case> cases = {
      {"[mirrors]\n", "registries.toml:1: mirrors: unknown key"},
      {"[registry.\"a.example\"]\nplain_http = \"yes\"\n",
       "registries.toml:2: registry.\"a.example\".plain_http: want true or false"},
      {"[registry.\"a.example\"]\n\nmirror = []\n",
       "registries.toml:3: registry.\"a.example\".mirror: unknown key"},
      {"[registry.\"a.example\"]\nmirrors = [\"ftp://m\"]\n",
       "registry.\"a.example\".mirrors[0]: want an http or https URL"},
      {"[registry.\"a.example\"]\nmirrors = [\"https://m/path\"]\n",
       "want scheme://host[:port]"},
      {"[registry.\"a.example\"]\nca_file = \"relative.pem\"\n", "want an absolute path"},
      {"[registry.\"a.example\"]\nca_file = \"/nonexistent/ca.pem\"\n", "does not exist"},
      {"[registry.\"a.example\"]\nplain_http = true\nskip_tls_verify = true\n",
       "plain_http does not go with TLS settings"},
      {"[registry.\"a/b\"]\n", "want a registry host[:port]"},
      {"[registry\n", "registries.toml:1:"},
  };
  for (const Case& c : cases) {
    auto s = RegistrySettings::Parse(c.toml, "registries.toml");
    ASSERT_FALSE(s.ok()) << c.toml;
    EXPECT_THAT(s.status().message(), HasSubstr(c.message)) << c.toml;
  }
}

}  // namespace
}  // namespace sbx::oci
