#include "oci/registry_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/base64.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/toml_settings.h"

namespace sbx::oci {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kMaxAttempts = 3;
constexpr long kConnectTimeoutSeconds = 30;
// A transfer slower than 1 KB/s for this long is abandoned.
constexpr long kLowSpeedSeconds = 60;
constexpr size_t kMaxErrorBody = 64 << 10;
constexpr std::string_view kDockerHub = "docker.io";
constexpr std::string_view kDockerHubEndpoint = "https://registry-1.docker.io";

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// libcurl's global state, set up once before any handle exists.
void GlobalInit() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// Where requests for one registry (or mirror) go.
struct Endpoint {
  std::string registry;  // "docker.io", "127.0.0.1:5000": settings and credentials key
  std::string base;      // "https://registry-1.docker.io"
  RegistryHostSettings settings;
  bool mirror = false;
  bool http_fallback = false;  // loopback without settings: https, then http
};

bool IsLoopbackHost(std::string_view host_port) {
  std::string_view host = host_port;
  if (host.starts_with("[")) {
    host = host.substr(1, host.find(']') == std::string_view::npos ? host.size()
                                                                     : host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host.starts_with("127.") || host == "::1";
}

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string form_body;  // POST body (application/x-www-form-urlencoded)
  bool follow_redirects = false;
  const RegistryHostSettings* tls = nullptr;
  // Receives the body of a 2xx response; returning false aborts the transfer.
  std::function<bool(std::string_view)> sink;
  // Without a sink, the body is kept up to this many bytes; more is an abort.
  size_t body_limit = kMaxErrorBody;
  const std::atomic<bool>* cancelled = nullptr;  // aborts the transfer when set
};

struct HttpResponse {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last response only
  std::string body;                            // non-2xx bodies, or 2xx without a sink
  bool body_overflow = false;
  bool sink_aborted = false;
};

struct Transfer {
  CURL* handle;
  const HttpRequest* request;
  HttpResponse* response;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t->response->headers.clear();  // a new response of a redirect chain
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string name = Lower(Trim(line.substr(0, colon)));
    t->response->headers[name] = std::string(Trim(line.substr(colon + 1)));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view chunk(data, size * n);
  long status = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
  bool success = status >= 200 && status < 300;
  if (success && t->request->sink) {
    if (!t->request->sink(chunk)) {
      t->response->sink_aborted = true;
      return 0;
    }
    return chunk.size();
  }
  size_t limit = success ? t->request->body_limit : kMaxErrorBody;
  if (t->response->body.size() + chunk.size() > limit) {
    t->response->body_overflow = true;
    return 0;
  }
  t->response->body.append(chunk);
  return chunk.size();
}

int OnTransferInfo(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancelled = static_cast<const std::atomic<bool>*>(user);
  return cancelled->load() ? 1 : 0;
}

HttpResponse Perform(const HttpRequest& req) {
  GlobalInit();
  HttpResponse resp;
  CurlHandle h(curl_easy_init());
  if (!h) {
    resp.code = CURLE_FAILED_INIT;
    resp.curl_error = "curl_easy_init failed";
    return resp;
  }
  CURL* c = h.get();
  char errbuf[CURL_ERROR_SIZE] = {0};
  Transfer t{c, &req, &resp};
  Slist headers;
  for (const std::string& hdr : req.headers) {
    curl_slist* next = curl_slist_append(headers.get(), hdr.c_str());
    (void)headers.release();
    headers.reset(next);
  }
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sbx/1");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, kLowSpeedSeconds);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // identity; blobs are hashed as sent
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (req.cancelled != nullptr) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnTransferInfo);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(req.cancelled));
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  if (req.follow_redirects) {
    // Authorization set through CURLOPT_HTTPHEADER is not sent to another
    // host on a redirect (CURLOPT_UNRESTRICTED_AUTH stays off).
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  }
  if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.form_body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.form_body.size()));
  }
  if (req.tls != nullptr) {
    if (req.tls->skip_tls_verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (!req.tls->ca_file.empty()) {
      // The registry's CA in addition to the system's (the hashed directory).
      curl_easy_setopt(c, CURLOPT_CAINFO, req.tls->ca_file.c_str());
      curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
  }
  resp.code = curl_easy_perform(c);
  if (resp.code != CURLE_OK) {
    resp.curl_error = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(resp.code);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

// "Bearer realm="https://auth",service="registry",scope="repository:a:pull""
struct Challenge {
  std::string scheme;  // lower-case: "bearer", "basic"
  std::map<std::string, std::string> params;
};

Challenge ParseChallenge(std::string_view header) {
  Challenge ch;
  header = Trim(header);
  size_t space = header.find(' ');
  ch.scheme = Lower(header.substr(0, space));
  if (space == std::string_view::npos) return ch;
  std::string_view rest = header.substr(space + 1);
  while (!rest.empty()) {
    rest = Trim(rest);
    size_t eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string key = Lower(Trim(rest.substr(0, eq)));
    rest = rest.substr(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value.push_back(rest[i]);
      }
      rest = rest.substr(std::min(i + 1, rest.size()));
    } else {
      size_t comma = rest.find(',');
      value = std::string(Trim(rest.substr(0, comma)));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma);
    }
    ch.params[key] = value;
    size_t comma = rest.find(',');
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return ch;
}


// The registry's own words from an error body ({"errors":[{"code","message"}]}).
std::string RegistryErrorText(const HttpResponse& r) {
  Json j = Json::parse(r.body, nullptr, false);
  std::vector<std::string> parts;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const Json& e : j["errors"]) {
      if (!e.is_object()) continue;
      std::string code = e.value("code", "");
      std::string message = e.value("message", "");
      parts.push_back(Lower(code) + (message.empty() ? "" : ": " + message));
    }
  }
  if (!parts.empty()) return Join(parts, "; ");
  return "HTTP " + std::to_string(r.status);
}

bool Transient(const HttpResponse& r) {
  if (r.code != CURLE_OK) {
    return r.code != CURLE_WRITE_ERROR && r.code != CURLE_SSL_CACERT_BADFILE &&
           r.code != CURLE_PEER_FAILED_VERIFICATION && r.code != CURLE_UNSUPPORTED_PROTOCOL;
  }
  return r.status == 429 || r.status >= 500;
}

}  // namespace

// --- settings --------------------------------------------------------------

Result<toml::table> ParseToml(std::string_view text, const std::string& source_name) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(source_name + ":" + std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
  }
}

std::string TomlWhere(const std::string& source_name, const toml::node& n, const std::string& key) {
  return source_name + ":" + std::to_string(n.source().begin.line) + ": " + key;
}

Result<RegistrySettings> RegistrySettings::Parse(std::string_view text,
                                                 const std::string& source_name, bool other_keys) {
  SBX_ASSIGN_OR_RETURN(toml::table root, ParseToml(text, source_name));
  return RegistrySettingsFromToml(root, source_name, other_keys);
}

Result<RegistrySettings> RegistrySettingsFromToml(const toml::table& root,
                                                  const std::string& source_name,
                                                  bool other_keys) {
  auto at = [&](const toml::node& n, const std::string& key) {
    return TomlWhere(source_name, n, key);
  };
  RegistrySettings out;
  for (const auto& [top_key, top] : root) {
    std::string top_name(top_key.str());
    if (top_name != "registry") {
      if (other_keys) continue;
      return InvalidArgument(at(top, top_name) + ": unknown key (want [registry.\"host\"])");
    }
    const toml::table* hosts = top.as_table();
    if (hosts == nullptr) return InvalidArgument(at(top, "registry") + ": want a table");
    for (const auto& [host_key, host_node] : *hosts) {
      std::string host(host_key.str());
      std::string where = "registry." + Quote(host);
      const toml::table* t = host_node.as_table();
      if (t == nullptr) return InvalidArgument(at(host_node, where) + ": want a table");
      if (host.empty() || host.find('/') != std::string::npos) {
        return InvalidArgument(at(host_node, where) + ": want a registry host[:port]");
      }
      RegistryHostSettings s;
      for (const auto& [k, v] : *t) {
        std::string key(k.str());
        std::string field = where + "." + key;
        if (key == "plain_http" || key == "skip_tls_verify") {
          auto b = v.value<bool>();
          if (!v.is_boolean() || !b) return InvalidArgument(at(v, field) + ": want true or false");
          (key == "plain_http" ? s.plain_http : s.skip_tls_verify) = *b;
        } else if (key == "ca_file") {
          if (!v.is_string()) return InvalidArgument(at(v, field) + ": want a file path");
          s.ca_file = *v.value<std::string>();
          if (s.ca_file.empty() || s.ca_file.front() != '/') {
            return InvalidArgument(at(v, field) + ": want an absolute path");
          }
          if (!PathExists(s.ca_file)) {
            return InvalidArgument(at(v, field) + ": " + s.ca_file + " does not exist");
          }
        } else if (key == "mirrors") {
          const toml::array* arr = v.as_array();
          if (arr == nullptr) return InvalidArgument(at(v, field) + ": want an array of URLs");
          for (size_t i = 0; i < arr->size(); ++i) {
            const toml::node& m = *arr->get(i);
            std::string mfield = field + "[" + std::to_string(i) + "]";
            if (!m.is_string()) return InvalidArgument(at(m, mfield) + ": want a URL");
            std::string url = *m.value<std::string>();
            std::string_view rest = url;
            if (rest.starts_with("https://")) rest.remove_prefix(8);
            else if (rest.starts_with("http://")) rest.remove_prefix(7);
            else if (rest.find("://") != std::string_view::npos) {
              return InvalidArgument(at(m, mfield) + ": want an http or https URL, got " +
                                     Quote(url));
            }
            while (rest.ends_with("/")) rest.remove_suffix(1);
            if (rest.empty() || rest.find('/') != std::string_view::npos) {
              return InvalidArgument(at(m, mfield) + ": want scheme://host[:port], got " +
                                     Quote(url));
            }
            s.mirrors.push_back(url);
          }
        } else {
          return InvalidArgument(at(v, field) +
                                 ": unknown key (want plain_http, skip_tls_verify, ca_file or "
                                 "mirrors)");
        }
      }
      if (s.plain_http && (s.skip_tls_verify || !s.ca_file.empty())) {
        return InvalidArgument(at(host_node, where) +
                               ": plain_http does not go with TLS settings");
      }
      out.hosts[host] = std::move(s);
    }
  }
  return out;
}

Result<RegistrySettings> RegistrySettings::Load(const std::string& path) {
  if (!PathExists(path)) return RegistrySettings{};
  SBX_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path);
}

RegistryHostSettings RegistrySettings::For(const std::string& registry) const {
  auto it = hosts.find(registry);
  return it == hosts.end() ? RegistryHostSettings{} : it->second;
}

// --- client ----------------------------------------------------------------

struct RegistryClient::Impl {
  RegistrySettings settings;  // guarded by mu
  CredentialLookup credentials;

  struct CachedAuth {
    std::string header;  // "Authorization: ..."
    Clock::time_point expires;
  };
  std::mutex mu;
  std::map<std::string, Challenge> challenges;  // by endpoint base
  std::map<std::string, CachedAuth> auth;       // by endpoint base + " " + scope
  std::map<std::string, std::string> bases;     // registry -> base that answered (fallback)
  std::atomic<bool> cancelled{false};

  std::vector<Endpoint> Endpoints(const std::string& registry, bool with_mirrors);
  std::string BaseFor(const Endpoint& e);
  // Performs req against e for `scope`, answering one 401 with credentials.
  Result<HttpResponse> Send(const Endpoint& e, const std::string& scope, HttpRequest req,
                            const RegistryCredential* login = nullptr);
  Result<std::string> Authorize(const Endpoint& e, const std::string& scope,
                                const Challenge& ch, const RegistryCredential* login);
  Result<std::optional<RegistryCredential>> CredentialFor(const Endpoint& e,
                                                          const RegistryCredential* login);
  // Runs `attempt` on each endpoint in turn (mirrors first), retrying
  // transient failures; returns the first success or the registry's error.
  template <typename T>
  Result<T> OnEndpoints(const std::string& registry, const std::string& what,
                        const std::function<Result<T>(const Endpoint&)>& attempt);
};

std::vector<Endpoint> RegistryClient::Impl::Endpoints(const std::string& registry,
                                                      bool with_mirrors) {
  std::vector<Endpoint> out;
  RegistrySettings settings;
  {
    std::lock_guard<std::mutex> l(mu);
    settings = this->settings;
  }
  RegistryHostSettings own = settings.For(registry);
  if (with_mirrors) {
    for (const std::string& m : own.mirrors) {
      Endpoint e;
      std::string_view rest = m;
      std::string scheme = "https://";
      if (rest.starts_with("https://")) rest.remove_prefix(8);
      else if (rest.starts_with("http://")) rest.remove_prefix(7), scheme = "http://";
      while (rest.ends_with("/")) rest.remove_suffix(1);
      e.registry = std::string(rest);
      e.settings = settings.For(e.registry);
      if (e.settings.plain_http) scheme = "http://";
      e.base = scheme + e.registry;
      e.mirror = true;
      out.push_back(std::move(e));
    }
  }
  Endpoint e;
  e.registry = registry;
  e.settings = own;
  if (registry == kDockerHub) {
    e.base = std::string(kDockerHubEndpoint);
  } else {
    e.base = (own.plain_http ? "http://" : "https://") + registry;
    e.http_fallback = !own.plain_http && settings.hosts.count(registry) == 0 &&
                      IsLoopbackHost(registry);
  }
  out.push_back(std::move(e));
  return out;
}

std::string RegistryClient::Impl::BaseFor(const Endpoint& e) {
  std::lock_guard<std::mutex> l(mu);
  auto it = bases.find(e.registry);
  return it != bases.end() && !e.mirror ? it->second : e.base;
}

Result<std::optional<RegistryCredential>> RegistryClient::Impl::CredentialFor(
    const Endpoint& e, const RegistryCredential* login) {
  if (login != nullptr) return std::optional<RegistryCredential>(*login);
  if (!credentials) return std::optional<RegistryCredential>();
  auto c = credentials(e.registry);
  if (!c.ok()) return c.status().Annotate("credentials for " + e.registry);
  return c;
}

Result<std::string> RegistryClient::Impl::Authorize(const Endpoint& e, const std::string& scope,
                                                    const Challenge& ch,
                                                    const RegistryCredential* login) {
  SBX_ASSIGN_OR_RETURN(std::optional<RegistryCredential> cred, CredentialFor(e, login));
  if (ch.scheme == "basic") {
    if (!cred || cred->username.empty()) {
      return FailedPrecondition(e.registry + " requires a login (`sbx login " + e.registry + "`)");
    }
    return "Authorization: Basic " + Base64Encode(cred->username + ":" + cred->password);
  }
  if (ch.scheme != "bearer") {
    return FailedPrecondition(e.registry + ": unsupported authentication scheme " +
                              Quote(ch.scheme));
  }
  auto realm_it = ch.params.find("realm");
  if (realm_it == ch.params.end() ||
      !(realm_it->second.starts_with("https://") || realm_it->second.starts_with("http://"))) {
    return FailedPrecondition(e.registry + ": bearer challenge without an http(s) realm");
  }
  const std::string& realm = realm_it->second;
  std::string service = ch.params.count("service") ? ch.params.at("service") : "";
  HttpRequest req;
  req.tls = &e.settings;
  req.follow_redirects = true;
  req.body_limit = 1 << 20;
  req.cancelled = &cancelled;
  if (cred && !cred->identity_token.empty()) {
    // OAuth2 refresh-token grant, as Docker does with an identity token.
    req.method = "POST";
    req.url = realm;
    req.form_body = "grant_type=refresh_token&client_id=sbx&service=" + UrlEncode(service) +
                    "&refresh_token=" + UrlEncode(cred->identity_token);
    if (!scope.empty()) req.form_body += "&scope=" + UrlEncode(scope);
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  } else {
    std::string query;
    if (!service.empty()) query += "service=" + UrlEncode(service);
    if (!scope.empty()) query += std::string(query.empty() ? "" : "&") + "scope=" + UrlEncode(scope);
    req.url = realm + (query.empty() ? "" : (realm.find('?') == std::string::npos ? "?" : "&") + query);
    if (cred && !cred->username.empty()) {
      req.headers.push_back("Authorization: Basic " +
                            Base64Encode(cred->username + ":" + cred->password));
    }
  }
  HttpResponse r = Perform(req);
  if (r.code != CURLE_OK) {
    return Unavailable("token from " + realm + ": " + r.curl_error);
  }
  if (r.status == 401 || r.status == 403) {
    return FailedPrecondition(e.registry + ": token request " +
                              (cred ? "with the stored credentials was refused"
                                    : "refused; the repository may need a login (`sbx login " +
                                          e.registry + "`)") +
                              " (HTTP " + std::to_string(r.status) + ")");
  }
  if (r.status < 200 || r.status >= 300) {
    return Unavailable("token from " + realm + ": HTTP " + std::to_string(r.status));
  }
  Json j = Json::parse(r.body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) token = j["token"];
    if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) {
      token = j["access_token"];
    }
  }
  if (token.empty()) return Unavailable("token from " + realm + ": no token in the answer");
  int64_t expires_in = 60;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    expires_in = std::max<int64_t>(j["expires_in"].get<int64_t>(), 10);
  }
  std::string header = "Authorization: Bearer " + token;
  if (login == nullptr) {
    std::string key = BaseFor(e) + " " + scope;
    std::lock_guard<std::mutex> l(mu);
    // Renewed a little before the registry would refuse it.
    auth[key] = {header, Clock::now() + std::chrono::seconds(expires_in - 5)};
  }
  return header;
}

Result<HttpResponse> RegistryClient::Impl::Send(const Endpoint& e, const std::string& scope,
                                                HttpRequest req, const RegistryCredential* login) {
  std::string path = req.url;  // relative to the base
  std::string base = BaseFor(e);
  std::string auth_header;
  if (login == nullptr) {
    std::lock_guard<std::mutex> l(mu);
    if (auto it = auth.find(base + " " + scope);
        it != auth.end() && it->second.expires > Clock::now()) {
      auth_header = it->second.header;
    }
  }
  const std::vector<std::string> plain_headers = req.headers;
  req.tls = &e.settings;
  req.cancelled = &cancelled;
  for (int round = 0; round < 2; ++round) {
    req.url = base + path;
    req.headers = plain_headers;
    if (!auth_header.empty()) req.headers.push_back(auth_header);
    HttpResponse r = Perform(req);
    if (r.code != CURLE_OK && e.http_fallback && base.starts_with("https://") &&
        !r.sink_aborted && !r.body_overflow && r.code != CURLE_PEER_FAILED_VERIFICATION &&
        r.code != CURLE_ABORTED_BY_CALLBACK) {
      // A loopback registry speaking plain HTTP, as Docker allows. One that
      // speaks TLS with a certificate we cannot verify gets no such pass.
      std::string http = "http://" + e.registry;
      req.url = http + path;
      HttpResponse plain = Perform(req);
      if (plain.code == CURLE_OK) {
        std::lock_guard<std::mutex> l(mu);
        bases[e.registry] = http;
        base = http;
        r = std::move(plain);
      }
    }
    if (r.status != 401 || round == 1) return r;
    auto www = r.headers.find("www-authenticate");
    if (www == r.headers.end()) return r;
    Challenge ch = ParseChallenge(www->second);
    SBX_ASSIGN_OR_RETURN(auth_header, Authorize(e, scope, ch, login));
  }
  return Internal("unreachable");
}

template <typename T>
Result<T> RegistryClient::Impl::OnEndpoints(const std::string& registry, const std::string& what,
                                            const std::function<Result<T>(const Endpoint&)>& attempt) {
  std::vector<Endpoint> endpoints = Endpoints(registry, /*with_mirrors=*/true);
  Status last;
  for (const Endpoint& e : endpoints) {
    for (int i = 0; i < kMaxAttempts; ++i) {
      if (cancelled.load()) return Unavailable(what + ": cancelled (sbxd is stopping)");
      Result<T> r = attempt(e);
      if (r.ok()) return r;
      last = r.status();
      if (r.status().code() != Code::kUnavailable) break;
      if (i + 1 < kMaxAttempts) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200 << i));
      }
    }
    if (e.mirror) {
      SBX_LOG(kInfo) << "registry: mirror " << e.base << " failed for " << what << ": "
                     << last.message() << "; trying the next source";
    }
  }
  return last;
}

RegistryClient::RegistryClient(RegistrySettings settings, CredentialLookup credentials)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = std::move(settings);
  impl_->credentials = std::move(credentials);
}

RegistryClient::~RegistryClient() = default;

void RegistryClient::SetSettings(RegistrySettings settings) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->settings = std::move(settings);
  // A registry's answering base (https or the http fallback) and its auth
  // challenge may change with its settings.
  impl_->bases.clear();
  impl_->challenges.clear();
}

namespace {

// The error for a non-2xx answer to a registry request.
Status HttpError(const Endpoint& e, const std::string& what, const HttpResponse& r) {
  std::string prefix = what + " from " + e.registry;
  if (r.code != CURLE_OK) return Unavailable(prefix + ": " + r.curl_error);
  std::string text = RegistryErrorText(r);
  if (r.status == 404) return NotFound(prefix + ": not found (" + text + ")");
  if (r.status == 401 || r.status == 403) {
    return FailedPrecondition(prefix + ": access denied (" + text +
                              "); the repository may not exist or may need `sbx login " +
                              e.registry + "`");
  }
  if (Transient(r)) return Unavailable(prefix + ": " + text);
  return FailedPrecondition(prefix + ": " + text);
}

std::string PullScope(const ImageReference& image) {
  return "repository:" + image.path + ":pull";
}

}  // namespace

Result<FetchedManifest> RegistryClient::GetManifest(const ImageReference& image,
                                                    const std::string& reference) {
  std::string what = "manifest " + image.Repository() +
                     (reference.starts_with("sha256:") ? "@" : ":") + reference;
  bool by_digest = reference.starts_with(kSha256Prefix);
  std::function<Result<FetchedManifest>(const Endpoint&)> attempt =
      [&](const Endpoint& e) -> Result<FetchedManifest> {
    HttpRequest req;
    req.url = "/v2/" + image.path + "/manifests/" + reference;
    req.headers.push_back("Accept: " + ManifestAcceptHeader());
    req.body_limit = static_cast<size_t>(kMaxManifestBytes);
    SBX_ASSIGN_OR_RETURN(HttpResponse r, impl_->Send(e, PullScope(image), std::move(req)));
    if (r.body_overflow && r.status >= 200 && r.status < 300) {
      return TooLarge(what + " is larger than " + std::to_string(kMaxManifestBytes) + " bytes");
    }
    if (r.code != CURLE_OK || r.status < 200 || r.status >= 300) return HttpError(e, what, r);
    FetchedManifest m;
    m.body = std::move(r.body);
    m.digest = Sha256Digest(m.body);
    if (by_digest && m.digest != reference) {
      return InvalidArgument("digest mismatch for " + what + ": received content hashes to " +
                             m.digest);
    }
    if (auto d = r.headers.find("docker-content-digest");
        !by_digest && d != r.headers.end() && d->second.starts_with(kSha256Prefix) &&
        d->second != m.digest) {
      return InvalidArgument("digest mismatch for " + what + ": registry says " + d->second +
                             ", content hashes to " + m.digest);
    }
    if (auto ct = r.headers.find("content-type"); ct != r.headers.end()) {
      m.media_type = std::string(Trim(std::string_view(ct->second).substr(
          0, ct->second.find(';'))));
    }
    if (!IsManifestType(m.media_type) && !IsIndexType(m.media_type)) {
      Json j = Json::parse(m.body, nullptr, false);
      if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) {
        m.media_type = j["mediaType"];
      } else if (j.is_object() && j.contains("manifests")) {
        m.media_type = std::string(kOciIndexType);
      } else if (j.is_object() && j.contains("config")) {
        m.media_type = std::string(kOciManifestType);
      }
    }
    if (!IsManifestType(m.media_type) && !IsIndexType(m.media_type)) {
      return InvalidArgument(what + ": unsupported media type " + Quote(m.media_type));
    }
    return m;
  };
  return impl_->OnEndpoints(image.domain, what, attempt);
}

Status RegistryClient::GetBlob(const ImageReference& image, const std::string& digest,
                               int64_t size, const std::string& path,
                               const BlobProgress& progress) {
  std::string what = "blob " + digest;
  std::function<Result<bool>(const Endpoint&)> attempt = [&](const Endpoint& e) -> Result<bool> {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoStatus("create " + path, errno);
    Sha256 hash;
    int64_t received = 0;
    int write_errno = 0;
    bool oversized = false;
    HttpRequest req;
    req.url = "/v2/" + image.path + "/blobs/" + digest;
    req.follow_redirects = true;
    req.sink = [&](std::string_view chunk) {
      received += static_cast<int64_t>(chunk.size());
      if (size >= 0 && received > size) {
        oversized = true;
        return false;
      }
      hash.Update(chunk);
      for (size_t done = 0; done < chunk.size();) {
        ssize_t w = ::write(fd.get(), chunk.data() + done, chunk.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          write_errno = errno;
          return false;
        }
        done += static_cast<size_t>(w);
      }
      if (progress) progress(received);
      return true;
    };
    auto result = [&]() -> Result<bool> {
      SBX_ASSIGN_OR_RETURN(HttpResponse r, impl_->Send(e, PullScope(image), std::move(req)));
      if (write_errno != 0) return ErrnoStatus("write " + path, write_errno);
      if (oversized) {
        return InvalidArgument(what + " is larger than its descriptor's " + std::to_string(size) +
                               " bytes");
      }
      if (r.code != CURLE_OK || r.status < 200 || r.status >= 300) return HttpError(e, what, r);
      if (size >= 0 && received < size) {
        return InvalidArgument(what + " is truncated: received " + std::to_string(received) +
                               " of " + std::to_string(size) + " bytes");
      }
      std::string got = hash.Digest();
      if (got != digest) {
        return InvalidArgument("digest mismatch for " + what + ": received content hashes to " +
                               got);
      }
      if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + path, errno);
      return true;
    }();
    if (!result.ok()) ::unlink(path.c_str());
    return result;
  };
  Result<bool> r = impl_->OnEndpoints(image.domain, what, attempt);
  return r.ok() ? Status::Ok() : r.status();
}

void RegistryClient::Cancel() { impl_->cancelled = true; }

Status RegistryClient::CheckLogin(const std::string& registry,
                                  const RegistryCredential& credential) {
  std::vector<Endpoint> endpoints = impl_->Endpoints(registry, /*with_mirrors=*/false);
  const Endpoint& e = endpoints.back();
  HttpRequest req;
  req.url = "/v2/";
  Result<HttpResponse> r = impl_->Send(e, "", std::move(req), &credential);
  if (!r.ok()) {
    if (r.status().code() == Code::kFailedPrecondition) {
      return FailedPrecondition("login to " + registry + " failed: unauthorized");
    }
    return r.status().Annotate("login to " + registry);
  }
  if (r->code != CURLE_OK) return Unavailable("login to " + registry + ": " + r->curl_error);
  if (r->status == 401 || r->status == 403) {
    return FailedPrecondition("login to " + registry + " failed: unauthorized");
  }
  if (r->status < 200 || r->status >= 300) {
    return Unavailable("login to " + registry + ": HTTP " + std::to_string(r->status));
  }
  return Status::Ok();
}

}  // namespace sbx::oci
