#include "oci/credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/base64.h"
#include "common/fs.h"
#include "oci/command.h"
#include "tests/oci/image_test_util.h"

namespace sbx::oci {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
using testing::TempDir;
using testing::WriteBytes;

int FileMode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

Json ReadJson(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return Json();
  return Json::parse(*text, nullptr, false);
}

// Each test gets its own config directory and a bin/ directory put first in
// PATH, where it writes fake docker-credential-* helpers.
class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = std::getenv("PATH");
    had_path_ = path != nullptr;
    old_path_ = had_path_ ? path : "";
    bin_ = tmp_.Sub("bin");
    ASSERT_TRUE(MakeDirs(bin_).ok());
    ASSERT_EQ(::setenv("PATH", (bin_ + ":" + old_path_).c_str(), 1), 0);
  }

  void TearDown() override {
    if (had_path_) {
      ::setenv("PATH", old_path_.c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }

  // Writes a config file; returns its path.
  std::string Config(const std::string& name, const std::string& content) {
    std::string path = tmp_.Sub(name);
    WriteBytes(path, content);
    return path;
  }
  std::string Config(const std::string& name, const Json& content) {
    return Config(name, content.dump());
  }

  // A docker-credential-<name> that records its stdin in StdinOf(name),
  // prints `out` on stdout and `err` on stderr, and exits with `code`.
  void WriteHelper(const std::string& name, const std::string& out, int code = 0,
                   const std::string& err = "") {
    std::string script = "#!/bin/sh\n[ \"$1\" = get ] || exit 9\ncat > '" + StdinOf(name) +
                         "'\ncat <<'EOF'\n" + out + "\nEOF\n";
    if (!err.empty()) script += "cat >&2 <<'EOF'\n" + err + "\nEOF\n";
    script += "exit " + std::to_string(code) + "\n";
    std::string path = bin_ + "/docker-credential-" + name;
    WriteBytes(path, script);
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  }
  void WriteAnsweringHelper(const std::string& name, const std::string& username,
                            const std::string& secret) {
    WriteHelper(name,
                Json{{"ServerURL", "ignored"}, {"Username", username}, {"Secret", secret}}.dump());
  }
  std::string StdinOf(const std::string& helper) const { return tmp_.Sub(helper + ".stdin"); }

  Result<std::optional<RegistryCredential>> Get(const std::vector<std::string>& files,
                                                const std::string& registry) {
    CredentialStore store(files, runner_);
    return store.Get(registry);
  }

  TempDir tmp_;
  std::string bin_;
  SimpleCommandRunner runner_;

 private:
  bool had_path_ = false;
  std::string old_path_;
};

RegistryCredential UserPass(std::string user, std::string pass) {
  return RegistryCredential{std::move(user), std::move(pass), ""};
}

// ---- registry names ---------------------------------------------------

struct HostCase {
  std::string key;
  std::string host;
  std::string server_url;
};

void PrintTo(const HostCase& c, std::ostream* os) { *os << '"' << c.key << '"'; }

class RegistryNameTest : public ::testing::TestWithParam<HostCase> {};

TEST_P(RegistryNameTest, CanonicalisesAsDockerDoes) {
  const HostCase& c = GetParam();
  EXPECT_EQ(CanonicalRegistryHost(c.key), c.host);
  EXPECT_EQ(RegistryServerUrl(c.key), c.server_url);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RegistryNameTest,
    ::testing::Values(HostCase{"docker.io", "docker.io", "https://index.docker.io/v1/"},
                      HostCase{"https://index.docker.io/v1/", "docker.io",
                               "https://index.docker.io/v1/"},
                      HostCase{"index.docker.io", "docker.io", "https://index.docker.io/v1/"},
                      HostCase{"registry-1.docker.io", "docker.io", "https://index.docker.io/v1/"},
                      HostCase{"Docker.IO", "docker.io", "https://index.docker.io/v1/"},
                      HostCase{"https://registry.example.com:5000/v2/", "registry.example.com:5000",
                               "https://registry.example.com:5000/v2/"},
                      HostCase{"HTTP://Registry.Example.com:5000", "registry.example.com:5000",
                               "HTTP://Registry.Example.com:5000"},
                      HostCase{"localhost:5000", "localhost:5000", "localhost:5000"},
                      HostCase{"ghcr.io/org/repo", "ghcr.io", "ghcr.io/org/repo"},
                      HostCase{"[::1]:5000", "[::1]:5000", "[::1]:5000"}, HostCase{"", "", ""}));

// ---- auths ------------------------------------------------------------

struct AuthsCase {
  std::string name;
  Json entry;  // auths["ghcr.io"]
  RegistryCredential want;
};

void PrintTo(const AuthsCase& c, std::ostream* os) { *os << c.name; }

class AuthsEntryTest : public CredentialsTest, public ::testing::WithParamInterface<AuthsCase> {};

TEST_P(AuthsEntryTest, YieldsCredential) {
  const AuthsCase& c = GetParam();
  std::string file = Config("config.json", Json{{"auths", {{"ghcr.io", c.entry}}}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, AuthsEntryTest,
    ::testing::Values(
        AuthsCase{
            "auth_base64", {{"auth", Base64Encode("alice:s3cret")}}, UserPass("alice", "s3cret")},
        AuthsCase{"password_with_colon",
                  {{"auth", Base64Encode("alice:a:b:c")}},
                  UserPass("alice", "a:b:c")},
        AuthsCase{
            "username_password", {{"username", "bob"}, {"password", "pw"}}, UserPass("bob", "pw")},
        AuthsCase{"auth_wins_over_username_password",
                  {{"auth", Base64Encode("alice:s3cret")}, {"username", "bob"}, {"password", "pw"}},
                  UserPass("alice", "s3cret")},
        AuthsCase{"identitytoken_with_auth",
                  {{"auth", Base64Encode("alice:")}, {"identitytoken", "refresh"}},
                  RegistryCredential{"alice", "", "refresh"}},
        AuthsCase{"identitytoken_only",
                  {{"identitytoken", "refresh"}},
                  RegistryCredential{"", "", "refresh"}},
        AuthsCase{"unknown_fields_ignored",
                  {{"auth", Base64Encode("alice:s3cret")}, {"email", "a@example.com"}},
                  UserPass("alice", "s3cret")}),
    [](const ::testing::TestParamInfo<AuthsCase>& info) { return info.param.name; });

TEST_F(CredentialsTest, DockerHubIsFoundUnderEveryKeySpelling) {
  for (const char* key :
       {"https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io", "docker.io"}) {
    SCOPED_TRACE(key);
    std::string file =
        Config("config.json", Json{{"auths", {{key, {{"auth", Base64Encode("hub:pw")}}}}}});
    for (const char* registry : {"docker.io", "index.docker.io"}) {
      auto got = Get({file}, registry);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(got->has_value()) << registry;
      EXPECT_EQ(**got, UserPass("hub", "pw"));
    }
  }
}

TEST_F(CredentialsTest, KeyWithSchemeAndPathMatchesHost) {
  std::string file = Config(
      "config.json",
      Json{{"auths",
            {{"https://Registry.Example.com:5000/v2/", {{"auth", Base64Encode("alice:pw")}}}}}});
  auto got = Get({file}, "registry.example.com:5000");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, UserPass("alice", "pw"));

  // The port is part of the name.
  auto other_port = Get({file}, "registry.example.com");
  ASSERT_TRUE(other_port.ok());
  EXPECT_FALSE(other_port->has_value());
}

TEST_F(CredentialsTest, ServerUrlKeyWinsOverOtherSpellings) {
  std::string file = Config(
      "config.json", Json{{"auths",
                           {{"docker.io", {{"auth", Base64Encode("short:pw")}}},
                            {"https://index.docker.io/v1/", {{"auth", Base64Encode("url:pw")}}}}}});
  auto got = Get({file}, "docker.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "url");
}

TEST_F(CredentialsTest, NothingFoundIsNullopt) {
  std::string file =
      Config("config.json", Json{{"auths", {{"ghcr.io", {{"auth", Base64Encode("a:b")}}}}}});
  auto got = Get({file}, "quay.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->has_value());
}

TEST_F(CredentialsTest, MissingAndEmptyFilesAreSkipped) {
  std::string empty = Config("empty.json", std::string());
  std::string real =
      Config("config.json", Json{{"auths", {{"ghcr.io", {{"auth", Base64Encode("a:b")}}}}}});
  auto got = Get({tmp_.Sub("missing.json"), tmp_.Sub("nodir/config.json"), empty, real}, "ghcr.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, UserPass("a", "b"));

  auto none = Get({tmp_.Sub("missing.json")}, "ghcr.io");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
}

TEST_F(CredentialsTest, FirstFileWithCredentialWins) {
  std::string first = Config(
      "first.json",
      Json{{"auths",
            {{"ghcr.io", {{"auth", Base64Encode("first:pw")}}}, {"quay.io", Json::object()}}}});
  std::string second =
      Config("second.json", Json{{"auths",
                                  {{"ghcr.io", {{"auth", Base64Encode("second:pw")}}},
                                   {"quay.io", {{"auth", Base64Encode("second:pw")}}}}}});
  auto ghcr = Get({first, second}, "ghcr.io");
  ASSERT_TRUE(ghcr.ok()) << ghcr.status().ToString();
  ASSERT_TRUE(ghcr->has_value());
  EXPECT_EQ((*ghcr)->username, "first");
  // An empty entry holds nothing, so the search goes on.
  auto quay = Get({first, second}, "quay.io");
  ASSERT_TRUE(quay.ok()) << quay.status().ToString();
  ASSERT_TRUE(quay->has_value());
  EXPECT_EQ((*quay)->username, "second");
}

TEST_F(CredentialsTest, EmptyRegistryIsInvalid) {
  auto got = Get({}, "");
  EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
}

// ---- malformed files --------------------------------------------------

struct MalformedCase {
  std::string name;
  std::string content;
  std::string want;  // in the message after the file name
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

class MalformedConfigTest : public CredentialsTest,
                            public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedConfigTest, ErrorNamesFileAndFieldButNoSecret) {
  const MalformedCase& c = GetParam();
  std::string file = Config("config.json", c.content);
  auto got = Get({file}, "ghcr.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr(file + ": " + c.want));
  EXPECT_THAT(got.status().message(), Not(HasSubstr("s3cret")));
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedConfigTest,
    ::testing::Values(
        MalformedCase{"truncated_json", R"({"auths": {"ghcr.io": {"auth": "s3cret)",
                      "malformed JSON at byte"},
        MalformedCase{"bad_literal", R"({"auths": {"ghcr.io": s3cret}})", "malformed JSON"},
        MalformedCase{"top_level_array", R"(["s3cret"])", "want a JSON object"},
        MalformedCase{"auths_not_object", R"({"auths": ["s3cret"]})", "auths: want an object"},
        MalformedCase{"entry_not_object", R"({"auths": {"ghcr.io": "s3cret"}})",
                      R"(auths["ghcr.io"]: want an object)"},
        MalformedCase{"username_not_string", R"({"auths": {"ghcr.io": {"username": 5}}})",
                      R"(auths["ghcr.io"].username: want a string)"},
        MalformedCase{"password_not_string",
                      R"({"auths": {"ghcr.io": {"username": "a", "password": ["s3cret"]}}})",
                      R"(auths["ghcr.io"].password: want a string)"},
        MalformedCase{"other_registry_broken", R"({"auths": {"quay.io": {"auth": 1}}})",
                      R"(auths["quay.io"].auth: want a string)"},
        MalformedCase{"helper_not_string", R"({"credHelpers": {"ghcr.io": 1}})",
                      R"(credHelpers["ghcr.io"]: want a string)"},
        MalformedCase{"helper_name_is_path", R"({"credHelpers": {"ghcr.io": "../../bin/sh"}})",
                      R"(credHelpers["ghcr.io"]: invalid credential helper name)"},
        MalformedCase{"creds_store_not_string", R"({"credsStore": true})",
                      "credsStore: want a string"}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

class BadBase64Test : public CredentialsTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(BadBase64Test, NamesFieldNotValue) {
  const std::string& auth = GetParam();
  std::string file = Config("config.json", Json{{"auths", {{"ghcr.io", {{"auth", auth}}}}}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(got.status().message(),
            file + R"(: auths["ghcr.io"].auth: not base64 "user:password")");
  EXPECT_THAT(got.status().message(), Not(HasSubstr(auth)));
  EXPECT_THAT(got.status().message(), Not(HasSubstr("s3cret")));
}

INSTANTIATE_TEST_SUITE_P(Table, BadBase64Test,
                         ::testing::Values("!!s3cret!!", "czNjcmV0",  // "s3cret": no colon
                                           Base64Encode("alice:s3cret").substr(1)));

TEST_F(CredentialsTest, UnreadableConfigIsErrorNamingFile) {
  std::string dir = tmp_.Sub("config.json");
  ASSERT_TRUE(MakeDirs(dir).ok());  // reading a directory fails even as root
  auto got = Get({dir}, "ghcr.io");
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr(dir));
}

// ---- credential helpers -----------------------------------------------

TEST_F(CredentialsTest, HelperReceivesServerUrlOnStdin) {
  WriteAnsweringHelper("sbxtest", "alice", "s3cret");
  std::string file = Config("config.json", Json{{"credsStore", "sbxtest"}});
  struct {
    std::string registry;
    std::string stdin_data;
  } cases[] = {
      {"docker.io", "https://index.docker.io/v1/\n"},
      {"index.docker.io", "https://index.docker.io/v1/\n"},
      {"localhost:5000", "localhost:5000\n"},
      {"ghcr.io", "ghcr.io\n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.registry);
    auto got = Get({file}, c.registry);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, UserPass("alice", "s3cret"));
    Result<std::string> seen = ReadFile(StdinOf("sbxtest"));
    ASSERT_TRUE(seen.ok()) << seen.status().ToString();
    EXPECT_EQ(*seen, c.stdin_data);
  }
}

TEST_F(CredentialsTest, HelperTokenUsernameMeansIdentityToken) {
  WriteAnsweringHelper("sbxtest", "<token>", "refresh-token");
  std::string file = Config("config.json", Json{{"credHelpers", {{"ghcr.io", "sbxtest"}}}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, (RegistryCredential{"", "", "refresh-token"}));
}

TEST_F(CredentialsTest, CredHelperBeatsAuths) {
  WriteAnsweringHelper("sbxtest", "from-helper", "s3cret");
  std::string file = Config(
      "config.json", Json{{"credHelpers", {{"ghcr.io", "sbxtest"}}},
                          {"auths", {{"ghcr.io", {{"auth", Base64Encode("from-auths:pw")}}}}}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, UserPass("from-helper", "s3cret"));
  EXPECT_EQ(*ReadFile(StdinOf("sbxtest")), "ghcr.io\n");
}

TEST_F(CredentialsTest, CredHelperKeyIsCanonicalised) {
  WriteAnsweringHelper("sbxtest", "hub", "s3cret");
  std::string file =
      Config("config.json", Json{{"credHelpers", {{"https://index.docker.io/v1/", "sbxtest"}}}});
  auto got = Get({file}, "docker.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "hub");
}

TEST_F(CredentialsTest, CredsStoreIsFallbackAfterAuths) {
  WriteAnsweringHelper("sbxtest", "from-store", "s3cret");
  // The empty Docker Hub entry is what Docker leaves behind when the secret
  // is in the store.
  Json auths = {{"ghcr.io", {{"auth", Base64Encode("from-auths:pw")}}},
                {"https://index.docker.io/v1/", Json::object()}};
  std::string file = Config("config.json", Json{{"credsStore", "sbxtest"}, {"auths", auths}});
  auto ghcr = Get({file}, "ghcr.io");
  ASSERT_TRUE(ghcr.ok()) << ghcr.status().ToString();
  ASSERT_TRUE(ghcr->has_value());
  EXPECT_EQ((*ghcr)->username, "from-auths");
  EXPECT_FALSE(PathExists(StdinOf("sbxtest"))) << "the store must not be asked";

  for (const char* registry : {"docker.io", "quay.io"}) {
    auto got = Get({file}, registry);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value()) << registry;
    EXPECT_EQ(**got, UserPass("from-store", "s3cret"));
  }
}

TEST_F(CredentialsTest, HelperNotFoundAnswerIsNoCredential) {
  WriteHelper("sbxtest", "credentials not found in native keychain", 1);
  std::string file = Config("config.json", Json{{"credsStore", "sbxtest"}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->has_value());
}

TEST_F(CredentialsTest, HelperNotFoundAnswerPassesOnToAuths) {
  WriteHelper("sbxtest", "credentials not found in native keychain", 1);
  std::string file = Config(
      "config.json", Json{{"credHelpers", {{"ghcr.io", "sbxtest"}}},
                          {"auths", {{"ghcr.io", {{"auth", Base64Encode("from-auths:pw")}}}}}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "from-auths");
}

TEST_F(CredentialsTest, FailingHelperErrorNamesHelperButNoSecret) {
  // A broken helper that still prints a credential must not leak it.
  WriteHelper("sbxtest", R"({"Username":"alice","Secret":"s3cret"})", 3, "  keychain is locked\n");
  std::string file =
      Config("config.json",
             Json{{"credHelpers", {{"ghcr.io", "sbxtest"}}},
                  {"auths", {{"quay.io", {{"auth", Base64Encode("bob:an0ther-s3cret")}}}}}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  const std::string& msg = got.status().message();
  EXPECT_THAT(msg, HasSubstr(file));
  EXPECT_THAT(msg, HasSubstr("docker-credential-sbxtest"));
  EXPECT_THAT(msg, HasSubstr("exit 3: keychain is locked"));
  EXPECT_THAT(msg, Not(HasSubstr("s3cret")));
  EXPECT_THAT(msg, Not(HasSubstr("ghcr.io\n")));
}

TEST_F(CredentialsTest, FailingHelperWithOnlyJsonOutputWithholdsIt) {
  WriteHelper("sbxtest", R"({"Username":"alice","Secret":"s3cret"})", 2);
  std::string file = Config("config.json", Json{{"credsStore", "sbxtest"}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_THAT(got.status().message(), HasSubstr("docker-credential-sbxtest get: exit 2"));
  EXPECT_THAT(got.status().message(), Not(HasSubstr("s3cret")));
}

TEST_F(CredentialsTest, HelperAnsweringGarbageIsUnavailableWithoutEchoingIt) {
  WriteHelper("sbxtest", "s3cret-not-json", 0);
  std::string file = Config("config.json", Json{{"credsStore", "sbxtest"}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_THAT(got.status().message(), HasSubstr("docker-credential-sbxtest"));
  EXPECT_THAT(got.status().message(), Not(HasSubstr("s3cret")));
}

TEST_F(CredentialsTest, MissingHelperIsFailedPrecondition) {
  std::string file = Config("config.json", Json{{"credHelpers", {{"ghcr.io", "sbxnothere"}}}});
  auto got = Get({file}, "ghcr.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(got.status().message(),
              HasSubstr("credential helper docker-credential-sbxnothere not found in PATH"));
  EXPECT_THAT(got.status().message(), HasSubstr(file));
}

// ---- Save and Erase ---------------------------------------------------

TEST_F(CredentialsTest, SaveCreatesPrivateFileAndDirectory) {
  std::string file = tmp_.Sub("home/.docker/config.json");
  ASSERT_TRUE(CredentialStore::Save(file, "ghcr.io", UserPass("alice", "s3cret")).ok());
  EXPECT_EQ(FileMode(file), 0600);
  EXPECT_EQ(FileMode(tmp_.Sub("home/.docker")), 0700);
  EXPECT_EQ(ReadJson(file),
            (Json{{"auths", {{"ghcr.io", {{"auth", Base64Encode("alice:s3cret")}}}}}}));
}

TEST_F(CredentialsTest, SaveKeepsOtherKeys) {
  Json before = {
      {"credsStore", "desktop"},
      {"credHelpers", {{"gcr.io", "gcloud"}}},
      {"auths", {{"quay.io", {{"auth", Base64Encode("bob:pw")}, {"email", "b@example.com"}}}}},
      {"HttpHeaders", {{"User-Agent", "x"}}},
  };
  std::string file = Config("config.json", before);
  ASSERT_TRUE(CredentialStore::Save(file, "docker.io", UserPass("alice", "s3cret")).ok());

  Json want = before;
  want["auths"]["https://index.docker.io/v1/"] = {{"auth", Base64Encode("alice:s3cret")}};
  EXPECT_EQ(ReadJson(file), want);
}

TEST_F(CredentialsTest, SaveReplacesEverySpellingOfTheRegistry) {
  std::string file =
      Config("config.json", Json{{"auths",
                                  {{"index.docker.io", {{"auth", Base64Encode("old:pw")}}},
                                   {"docker.io", {{"auth", Base64Encode("old:pw")}}},
                                   {"ghcr.io", {{"auth", Base64Encode("keep:pw")}}}}}});
  ASSERT_TRUE(CredentialStore::Save(file, "index.docker.io", UserPass("new", "pw")).ok());
  EXPECT_EQ(ReadJson(file)["auths"],
            (Json{{"https://index.docker.io/v1/", {{"auth", Base64Encode("new:pw")}}},
                  {"ghcr.io", {{"auth", Base64Encode("keep:pw")}}}}));
}

TEST_F(CredentialsTest, SaveTightensWideFileTo0600) {
  std::string file = Config("config.json", Json{{"auths", Json::object()}});
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  ASSERT_TRUE(CredentialStore::Save(file, "ghcr.io", UserPass("alice", "s3cret")).ok());
  EXPECT_EQ(FileMode(file), 0600);
}

TEST_F(CredentialsTest, SaveWritesThroughSymlink) {
  std::string target = Config("real.json", Json::object());
  std::string link = tmp_.Sub("config.json");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  ASSERT_TRUE(CredentialStore::Save(link, "ghcr.io", UserPass("alice", "s3cret")).ok());
  struct stat st;
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(FileMode(target), 0600);
  EXPECT_TRUE(ReadJson(target)["auths"].contains("ghcr.io"));
}

TEST_F(CredentialsTest, SaveThenGetRoundTrips) {
  struct {
    std::string registry;
    RegistryCredential cred;
  } cases[] = {
      {"ghcr.io", UserPass("alice", "s3cret")},
      {"localhost:5000", UserPass("alice", "pass:with:colons")},
      {"docker.io", RegistryCredential{"alice", "", "refresh-token"}},
      {"quay.io", RegistryCredential{"", "", "refresh-token"}},
  };
  std::string file = tmp_.Sub("config.json");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.registry);
    ASSERT_TRUE(CredentialStore::Save(file, c.registry, c.cred).ok());
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.registry);
    auto got = Get({file}, c.registry);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, c.cred);
  }
}

TEST_F(CredentialsTest, SaveRefusesMalformedFileAndLeavesIt) {
  const std::string broken = R"({"auths": {"ghcr.io": )";
  std::string file = Config("config.json", broken);
  Status s = CredentialStore::Save(file, "ghcr.io", UserPass("alice", "s3cret"));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(file));
  EXPECT_EQ(*ReadFile(file), broken);
}

TEST_F(CredentialsTest, SaveRefusesCredentialItCannotReadBack) {
  std::string file = tmp_.Sub("config.json");
  Status colon = CredentialStore::Save(file, "ghcr.io", UserPass("al:ice", "s3cret"));
  EXPECT_EQ(colon.code(), Code::kInvalidArgument);
  EXPECT_THAT(colon.message(), Not(HasSubstr("s3cret")));
  EXPECT_EQ(CredentialStore::Save(file, "ghcr.io", RegistryCredential{}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(CredentialStore::Save(file, "", UserPass("a", "b")).code(), Code::kInvalidArgument);
  EXPECT_FALSE(PathExists(file));
}

TEST_F(CredentialsTest, EraseRemovesThenReportsNothingToRemove) {
  std::string file =
      Config("config.json", Json{{"credsStore", "desktop"},
                                 {"auths",
                                  {{"https://index.docker.io/v1/", {{"auth", Base64Encode("a:b")}}},
                                   {"docker.io", {{"auth", Base64Encode("a:b")}}},
                                   {"ghcr.io", {{"auth", Base64Encode("keep:pw")}}}}}});
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);

  Result<bool> first = CredentialStore::Erase(file, "docker.io");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  EXPECT_EQ(ReadJson(file), (Json{{"credsStore", "desktop"},
                                  {"auths", {{"ghcr.io", {{"auth", Base64Encode("keep:pw")}}}}}}));
  EXPECT_EQ(FileMode(file), 0600);

  Result<bool> second = CredentialStore::Erase(file, "docker.io");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(*second);
}

TEST_F(CredentialsTest, EraseOnMissingFileIsFalse) {
  Result<bool> erased = CredentialStore::Erase(tmp_.Sub("missing.json"), "ghcr.io");
  ASSERT_TRUE(erased.ok()) << erased.status().ToString();
  EXPECT_FALSE(*erased);
  EXPECT_FALSE(PathExists(tmp_.Sub("missing.json")));
}

}  // namespace
}  // namespace sbx::oci
