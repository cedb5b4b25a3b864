#include "oci/credentials.h"

#include <limits.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/base64.h"
#include "common/fs.h"
#include "common/strings.h"

namespace sbx::oci {
namespace {

using Json = nlohmann::json;
// Save and Erase rewrite a file the user may have edited by hand: keep its
// key order.
using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kDockerHub = "docker.io";
constexpr std::string_view kDockerHubServerUrl = "https://index.docker.io/v1/";
constexpr std::string_view kHelperPrefix = "docker-credential-";
// Username a helper answers when Secret is an identity token.
constexpr std::string_view kTokenUsername = "<token>";
constexpr std::string_view kHelperNotFound = "credentials not found";
constexpr std::chrono::seconds kHelperTimeout{30};
// How much of a failing helper's output goes into an error.
constexpr size_t kMaxHelperMessage = 512;

// `auths["ghcr.io"]`; the key is JSON-quoted so odd bytes stay readable.
std::string KeyPath(std::string_view section, std::string_view key) {
  return std::string(section) + "[" +
         Json(std::string(key)).dump(-1, ' ', false, Json::error_handler_t::replace) + "]";
}

// Parses a whole file as one JSON object. An empty file is an empty object
// (Docker accepts one). The parser's own message is not used: it quotes the
// text it choked on, which may be a secret.
template <typename J>
Result<J> ParseJsonObject(std::string_view text) {
  if (Trim(text).empty()) return J::object();
  try {
    J root = J::parse(text);
    if (!root.is_object()) return InvalidArgument("want a JSON object");
    return root;
  } catch (const nlohmann::json::parse_error& e) {
    return InvalidArgument("malformed JSON at byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::exception&) {
    return InvalidArgument("malformed JSON");
  }
}

// A config file's text, or nullopt if there is no file.
Result<std::optional<std::string>> ReadIfExists(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
    return ErrnoStatus("stat " + file, errno);
  }
  SBX_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  return std::optional<std::string>(std::move(text));
}

// Absent and null both mean unset.
Status GetString(const Json& obj, const char* key, const std::string& path, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return InvalidArgument(path + "." + key + ": want a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

bool IsEmpty(const RegistryCredential& c) {
  return c.username.empty() && c.password.empty() && c.identity_token.empty();
}

// Helper names become part of a program name looked up in PATH; anything
// that could make it a path or an option is refused.
bool ValidHelperName(std::string_view name) {
  if (name.empty() || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

// ---- config.json, as Get reads it -------------------------------------

struct AuthEntry {
  std::string key;
  RegistryCredential cred;  // empty when the entry holds no credential
};

struct NamedHelper {
  std::string key;  // credHelpers key
  std::string name;
};

struct DockerConfig {
  std::vector<AuthEntry> auths;
  std::vector<NamedHelper> cred_helpers;
  std::string creds_store;  // empty: none
};

Result<RegistryCredential> ParseAuthEntry(const Json& v, const std::string& path) {
  RegistryCredential c;
  if (v.is_null()) return c;
  if (!v.is_object()) return InvalidArgument(path + ": want an object");
  std::string auth;
  SBX_RETURN_IF_ERROR(GetString(v, "auth", path, &auth));
  SBX_RETURN_IF_ERROR(GetString(v, "username", path, &c.username));
  SBX_RETURN_IF_ERROR(GetString(v, "password", path, &c.password));
  SBX_RETURN_IF_ERROR(GetString(v, "identitytoken", path, &c.identity_token));
  if (!auth.empty()) {
    // As Docker: "auth" replaces username and password; split at the first
    // ':' since passwords may contain one.
    Result<std::string> decoded = Base64Decode(auth);
    size_t colon = decoded.ok() ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      return InvalidArgument(path + ".auth: not base64 \"user:password\"");
    }
    c.username = decoded->substr(0, colon);
    c.password = decoded->substr(colon + 1);
  }
  return c;
}

Result<std::string> ParseHelperName(const Json& v, const std::string& path) {
  if (!v.is_string()) return InvalidArgument(path + ": want a string");
  std::string name = v.get<std::string>();
  if (!ValidHelperName(name)) {
    return InvalidArgument(path + ": invalid credential helper name " +
                           Json(name).dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return name;
}

// Every entry is checked, not only the registry asked for: as with Docker, a
// broken file is reported whatever is being pulled.
Result<DockerConfig> ParseDockerConfig(std::string_view text) {
  SBX_ASSIGN_OR_RETURN(Json root, ParseJsonObject<Json>(text));
  DockerConfig config;
  if (auto it = root.find("auths"); it != root.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgument("auths: want an object");
    for (const auto& [key, value] : it->items()) {
      SBX_ASSIGN_OR_RETURN(RegistryCredential cred, ParseAuthEntry(value, KeyPath("auths", key)));
      config.auths.push_back({key, std::move(cred)});
    }
  }
  if (auto it = root.find("credHelpers"); it != root.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgument("credHelpers: want an object");
    for (const auto& [key, value] : it->items()) {
      SBX_ASSIGN_OR_RETURN(std::string name, ParseHelperName(value, KeyPath("credHelpers", key)));
      config.cred_helpers.push_back({key, std::move(name)});
    }
  }
  if (auto it = root.find("credsStore"); it != root.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgument("credsStore: want a string");
    if (!it->get<std::string>().empty()) {
      SBX_ASSIGN_OR_RETURN(config.creds_store, ParseHelperName(*it, "credsStore"));
    }
  }
  return config;
}

// Indices of the keys that canonicalise to host, the preferred spellings
// first (in the order given), then the rest in file order.
std::vector<size_t> MatchingKeys(const std::vector<std::string_view>& keys, const std::string& host,
                                 const std::vector<std::string_view>& preferred) {
  std::vector<std::pair<size_t, size_t>> ranked;  // (rank, index)
  for (size_t i = 0; i < keys.size(); ++i) {
    if (CanonicalRegistryHost(keys[i]) != host) continue;
    auto p = std::find(preferred.begin(), preferred.end(), keys[i]);
    ranked.emplace_back(static_cast<size_t>(p - preferred.begin()), i);
  }
  std::sort(ranked.begin(), ranked.end());
  std::vector<size_t> out;
  for (const auto& r : ranked) out.push_back(r.second);
  return out;
}

// ---- credential helpers -----------------------------------------------

// What a failing helper said, for an error. stderr first; stdout only when
// it is not JSON (docker-credential-helpers print their errors on stdout,
// but a JSON answer could hold a secret).
std::string HelperFailureText(const CommandResult& r) {
  std::string_view text = Trim(r.err);
  if (text.empty()) {
    text = Trim(r.out);
    if (!text.empty() && text.front() == '{') text = {};
  }
  std::string out(text.substr(0, kMaxHelperMessage));
  if (text.size() > kMaxHelperMessage) out += "...";
  return out;
}

// Runs `docker-credential-<helper> get` for server_url. nullopt when the
// helper has nothing for it.
Result<std::optional<RegistryCredential>> RunHelper(CommandRunner& runner,
                                                    const std::string& helper,
                                                    const std::string& server_url) {
  const std::string program = std::string(kHelperPrefix) + helper;
  if (!FindExecutable(program).ok()) {
    return FailedPrecondition("credential helper " + program + " not found in PATH");
  }
  const std::string context = "credential helper " + program + " get";
  CommandSpec spec;
  spec.argv = {program, "get"};
  spec.stdin_data = server_url + "\n";
  spec.timeout = kHelperTimeout;
  Result<CommandResult> run = runner.Run(spec);
  if (!run.ok()) return run.status().Annotate(context);
  const CommandResult& r = *run;
  if (r.timed_out) {
    return Unavailable(context + ": timed out after " + std::to_string(kHelperTimeout.count()) +
                       "s");
  }
  if (r.exit_code != 0) {
    if (ToLower(r.out).find(kHelperNotFound) != std::string::npos ||
        ToLower(r.err).find(kHelperNotFound) != std::string::npos) {
      return std::optional<RegistryCredential>();
    }
    std::string msg = r.exit_code < 0 ? "killed by signal " + std::to_string(r.term_signal)
                                      : "exit " + std::to_string(r.exit_code);
    std::string text = HelperFailureText(r);
    if (!text.empty()) msg += ": " + text;
    return Unavailable(context + ": " + msg);
  }
  Json answer = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) {
    return Unavailable(context + ": answer is not a JSON object");
  }
  std::string username, secret;
  Status s = GetString(answer, "Username", "answer", &username);
  if (s.ok()) s = GetString(answer, "Secret", "answer", &secret);
  if (!s.ok()) return Unavailable(context + ": " + s.message());
  RegistryCredential cred;
  if (username == kTokenUsername) {
    cred.identity_token = std::move(secret);
  } else {
    cred.username = std::move(username);
    cred.password = std::move(secret);
  }
  if (IsEmpty(cred)) return std::optional<RegistryCredential>();
  return std::optional<RegistryCredential>(std::move(cred));
}

// ---- editing a config file --------------------------------------------

// The canonical host for Save/Erase, refusing names that cannot be a
// registry.
Result<std::string> HostToEdit(const std::string& registry) {
  std::string host = CanonicalRegistryHost(registry);
  if (host.empty()) return InvalidArgument("empty registry name");
  for (char c : host) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      return InvalidArgument("invalid registry name " +
                             Json(host).dump(-1, ' ', false, Json::error_handler_t::replace));
    }
  }
  return host;
}

// The file to rewrite: a symlinked config.json is written through to its
// target, so that the rename does not replace the link.
Result<std::string> WriteTarget(const std::string& file) {
  struct stat st;
  if (::lstat(file.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return file;
  char resolved[PATH_MAX];
  if (::realpath(file.c_str(), resolved) == nullptr) return ErrnoStatus("resolve " + file, errno);
  return std::string(resolved);
}

// The file's document, or nullopt if there is no file.
Result<std::optional<OrderedJson>> LoadForEdit(const std::string& file) {
  SBX_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadIfExists(file));
  if (!text) return std::optional<OrderedJson>();
  Result<OrderedJson> root = ParseJsonObject<OrderedJson>(*text);
  if (!root.ok()) return root.status().Annotate(file);
  return std::optional<OrderedJson>(std::move(root).value());
}

// Removes the auths keys that canonicalise to host; returns how many.
size_t RemoveRegistry(OrderedJson* auths, const std::string& host) {
  std::vector<std::string> doomed;
  for (const auto& [key, value] : auths->items()) {
    if (CanonicalRegistryHost(key) == host) doomed.push_back(key);
  }
  for (const std::string& key : doomed) auths->erase(key);
  return doomed.size();
}

Status WriteConfig(const std::string& file, const OrderedJson& root) {
  size_t slash = file.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = file.substr(0, slash);
    if (!IsDirectory(dir)) SBX_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  }
  // Tab-indented, as Docker writes it.
  std::string data = root.dump(1, '\t', false, OrderedJson::error_handler_t::replace) + "\n";
  return WriteFileAtomic(file, data, 0600);
}

}  // namespace

std::string CanonicalRegistryHost(std::string_view key) {
  std::string_view s = Trim(key);
  if (size_t scheme = s.find("://"); scheme != std::string_view::npos) s.remove_prefix(scheme + 3);
  s = s.substr(0, s.find('/'));
  std::string host = ToLower(s);
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == kDockerHub) {
    return std::string(kDockerHub);
  }
  return host;
}

std::string RegistryServerUrl(std::string_view registry) {
  if (CanonicalRegistryHost(registry) == kDockerHub) return std::string(kDockerHubServerUrl);
  return std::string(registry);
}

CredentialStore::CredentialStore(std::vector<std::string> config_files, CommandRunner& runner)
    : config_files_(std::move(config_files)), runner_(runner) {}

Result<std::optional<RegistryCredential>> CredentialStore::Get(const std::string& registry) const {
  const std::string host = CanonicalRegistryHost(registry);
  if (host.empty()) return InvalidArgument("registry credentials: empty registry name");
  const std::string server_url = RegistryServerUrl(host);
  using Found = std::optional<RegistryCredential>;

  for (const std::string& file : config_files_) {
    SBX_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadIfExists(file));
    if (!text) continue;
    Result<DockerConfig> parsed = ParseDockerConfig(*text);
    if (!parsed.ok()) return parsed.status().Annotate(file);
    const DockerConfig& config = *parsed;

    std::vector<std::string_view> keys;
    for (const NamedHelper& h : config.cred_helpers) keys.push_back(h.key);
    for (size_t i : MatchingKeys(keys, host, {host, server_url})) {
      const NamedHelper& h = config.cred_helpers[i];
      Result<Found> found = RunHelper(runner_, h.name, server_url);
      if (!found.ok()) return found.status().Annotate(file + ": " + KeyPath("credHelpers", h.key));
      if (*found) return found;
    }

    keys.clear();
    for (const AuthEntry& a : config.auths) keys.push_back(a.key);
    for (size_t i : MatchingKeys(keys, host, {server_url, host})) {
      if (!IsEmpty(config.auths[i].cred)) return Found(config.auths[i].cred);
    }

    if (!config.creds_store.empty()) {
      Result<Found> found = RunHelper(runner_, config.creds_store, server_url);
      if (!found.ok()) return found.status().Annotate(file + ": credsStore");
      if (*found) return found;
    }
  }
  return Found();
}

Status CredentialStore::Save(const std::string& file, const std::string& registry,
                             const RegistryCredential& cred) {
  SBX_ASSIGN_OR_RETURN(std::string host, HostToEdit(registry));
  const std::string context = "save credentials for " + host;
  if (IsEmpty(cred)) return InvalidArgument(context + ": empty credential");
  if (cred.username.find(':') != std::string::npos) {
    return InvalidArgument(context + ": username must not contain ':'");
  }
  SBX_ASSIGN_OR_RETURN(std::string target, WriteTarget(file));
  SBX_ASSIGN_OR_RETURN(std::optional<OrderedJson> loaded, LoadForEdit(target));
  OrderedJson root = loaded ? std::move(*loaded) : OrderedJson::object();
  if (auto it = root.find("auths"); it == root.end() || it->is_null()) {
    root["auths"] = OrderedJson::object();
  } else if (!it->is_object()) {
    return InvalidArgument(file + ": auths: want an object");
  }
  OrderedJson& auths = root["auths"];
  RemoveRegistry(&auths, host);
  OrderedJson entry = OrderedJson::object();
  if (!cred.username.empty() || !cred.password.empty()) {
    entry["auth"] = Base64Encode(cred.username + ":" + cred.password);
  }
  if (!cred.identity_token.empty()) entry["identitytoken"] = cred.identity_token;
  auths[RegistryServerUrl(host)] = std::move(entry);
  return WriteConfig(target, root);
}

Result<bool> CredentialStore::Erase(const std::string& file, const std::string& registry) {
  SBX_ASSIGN_OR_RETURN(std::string host, HostToEdit(registry));
  SBX_ASSIGN_OR_RETURN(std::string target, WriteTarget(file));
  SBX_ASSIGN_OR_RETURN(std::optional<OrderedJson> root, LoadForEdit(target));
  if (!root) return false;
  auto it = root->find("auths");
  if (it == root->end() || it->is_null()) return false;
  if (!it->is_object()) return InvalidArgument(file + ": auths: want an object");
  if (RemoveRegistry(&*it, host) == 0) return false;
  SBX_RETURN_IF_ERROR(WriteConfig(target, *root));
  return true;
}

}  // namespace sbx::oci
