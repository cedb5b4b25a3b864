#include "tests/oci/registry_fixture.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/base64.h"
#include "common/fs.h"
#include "common/random.h"
#include "common/strings.h"
#include "oci/digest.h"
#include "tests/oci/image_test_util.h"

namespace sbx::oci::testing {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

template <auto kFree>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using CurlPtr = std::unique_ptr<CURL, Deleter<curl_easy_cleanup>>;
using CurlListPtr = std::unique_ptr<curl_slist, Deleter<curl_slist_free_all>>;

// OpenSSL failing to make a key or certificate in memory is a broken test
// environment, not something a test can work around.
void CheckSsl(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "registry_fixture: %s failed\n", what);
  ERR_print_errors_fp(stderr);
  std::abort();
}

// ---- Keys and certificates ------------------------------------------------

PkeyPtr NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  CheckSsl(key != nullptr, "EVP_EC_gen");
  return key;
}

struct CertSpec {
  std::string common_name;
  // X509v3 extensions as openssl.cnf writes them, in order.
  std::vector<std::pair<int, std::string>> extensions;
};

// A certificate for `key` signed by issuer_key (issuer null: self-signed),
// valid from an hour ago for a week.
X509Ptr NewCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  CheckSsl(cert != nullptr, "X509_new");
  CheckSsl(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  uint64_t serial = 0;
  CheckSsl(RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial)) == 1,
           "RAND_bytes");
  CheckSsl(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1) == 1,
           "ASN1_INTEGER_set_uint64");
  CheckSsl(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  CheckSsl(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7 * 24 * 3600) != nullptr, "notAfter");
  CheckSsl(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  CheckSsl(X509_NAME_add_entry_by_txt(
               subject, "CN", MBSTRING_ASC,
               reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1, 0) == 1,
           "X509_NAME_add_entry_by_txt");
  CheckSsl(X509_set_issuer_name(cert.get(),
                                issuer != nullptr ? X509_get_subject_name(issuer) : subject) == 1,
           "X509_set_issuer_name");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : spec.extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    CheckSsl(ext != nullptr, "X509V3_EXT_conf_nid");
    int added = X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
    CheckSsl(added == 1, "X509_add_ext");
  }
  CheckSsl(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
           "X509_sign");
  return cert;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  CheckSsl(bio != nullptr && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  return BioContents(bio.get());
}

std::string KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  CheckSsl(bio != nullptr &&
               PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
           "PEM_write_bio_PrivateKey");
  return BioContents(bio.get());
}

std::string CertDer(X509* cert) {
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  CheckSsl(n > 0, "i2d_X509");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

// JOSE base64url: no padding.
std::string Base64Url(std::string_view data) {
  std::string s = Base64Encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

// An ES256 JWS signature: SHA-256 ECDSA with r and s as 32-byte big-endian
// integers (not OpenSSL's DER).
std::string SignEs256(EVP_PKEY* key, std::string_view data) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  CheckSsl(ctx != nullptr, "EVP_MD_CTX_new");
  CheckSsl(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1,
           "EVP_DigestSignInit");
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  size_t len = 0;
  CheckSsl(EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) == 1, "EVP_DigestSign");
  std::string der(len, '\0');
  CheckSsl(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len, in,
                          data.size()) == 1,
           "EVP_DigestSign");
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  CheckSsl(sig != nullptr, "d2i_ECDSA_SIG");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(64, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  CheckSsl(BN_bn2binpad(r, o, 32) == 32 && BN_bn2binpad(s, o + 32, 32) == 32, "BN_bn2binpad");
  return out;
}

// ---- Small text helpers ---------------------------------------------------

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}


// application/x-www-form-urlencoded decoding ('+' is a space).


// Values of `key` in a query string, decoded, in order.
std::vector<std::string> QueryValues(std::string_view query, std::string_view key) {
  std::vector<std::string> values;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    if (UrlDecode(pair.substr(0, eq), true) != key) continue;
    values.push_back(eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1), true));
  }
  return values;
}

std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// A file's contents, or why it could not be read (for failure messages).
std::string ReadOr(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  return text.ok() ? *text : "(" + text.status().ToString() + ")";
}

std::string Rfc3339Utc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- Sockets --------------------------------------------------------------

// A TCP socket listening on 127.0.0.1 at a port the kernel picked.
UniqueFd ListenLoopback(int backlog, int* port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (backlog > 0 && ::listen(fd.get(), backlog) != 0) ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return UniqueFd();
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

// A port free a moment ago. Another process may take it before the registry
// binds it; the caller retries on "address already in use".
int FreeLoopbackPort() {
  int port = 0;
  UniqueFd fd = ListenLoopback(0, &port);
  return fd.valid() ? port : 0;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// ---- The registry's child process -----------------------------------------

// Owns a child process: killed (SIGTERM, then SIGKILL) and reaped on
// destruction. The child also dies with the thread that started it.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { Stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (looked up in PATH) with stdout and stderr written to log_path.
  bool Start(const std::vector<std::string>& argv, const std::string& log_path) {
    UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log.valid()) return false;
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      // Only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(log.get(), STDOUT_FILENO);
      ::dup2(log.get(), STDERR_FILENO);
      int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    pid_ = pid;
    return true;
  }

  // True once the child has exited (and been reaped).
  bool Exited() {
    if (pid_ < 0) return true;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  void Stop() {
    if (pid_ < 0) return;
    ::kill(pid_, SIGTERM);
    for (auto deadline = Clock::now() + std::chrono::seconds(3); Clock::now() < deadline;) {
      if (Exited()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// ---- Token scopes ---------------------------------------------------------

struct Scope {
  std::string type;  // "repository", "registry"
  std::string name;
  std::vector<std::string> actions;
};

// "repository:<name>:<a,b>"; the name may itself hold colons (a registry
// host with a port), the type and actions may not.
std::optional<Scope> ParseScope(std::string_view text) {
  size_t first = text.find(':');
  size_t last = text.rfind(':');
  if (first == std::string_view::npos || first == last) return std::nullopt;
  Scope s{std::string(text.substr(0, first)),
          std::string(text.substr(first + 1, last - first - 1)),
          {}};
  std::string_view actions = text.substr(last + 1);
  while (!actions.empty()) {
    size_t comma = actions.find(',');
    std::string a(actions.substr(0, comma));
    if (!a.empty()) s.actions.push_back(a);
    actions = comma == std::string_view::npos ? std::string_view() : actions.substr(comma + 1);
  }
  return s;
}

// The access claim for `scopes`: everything asked for when authenticated;
// otherwise pull on repositories under "public/".
Json GrantAccess(const std::vector<std::string>& scopes, bool authenticated) {
  Json access = Json::array();
  for (const std::string& text : scopes) {
    std::optional<Scope> scope = ParseScope(text);
    if (!scope) continue;
    std::vector<std::string> granted;
    if (authenticated) {
      granted = scope->actions;
    } else if (scope->type == "repository" && scope->name.starts_with("public/")) {
      for (const std::string& a : scope->actions) {
        if (a == "pull") granted.push_back(a);
      }
    }
    if (granted.empty()) continue;
    access.push_back({{"type", scope->type}, {"name", scope->name}, {"actions", granted}});
  }
  return access;
}

// Space-separated scopes within each scope parameter, flattened.
std::vector<std::string> SplitScopes(const std::vector<std::string>& params) {
  std::vector<std::string> scopes;
  for (const std::string& p : params) {
    std::string_view rest = p;
    while (!rest.empty()) {
      size_t sp = rest.find(' ');
      if (sp != 0) scopes.emplace_back(rest.substr(0, sp));
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
  }
  return scopes;
}

std::string StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Error";
  }
}

}  // namespace

// ---- HTTP client ------------------------------------------------------------

std::string HttpResponse::Header(std::string_view name) const {
  std::string want = Lower(name);
  for (const auto& [k, v] : headers) {
    if (k == want) return v;
  }
  return "";
}

namespace {

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<HttpResponse*>(user)->body.append(data, size * n);
  return size * n;
}

size_t AppendHeader(char* data, size_t size, size_t n, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    response->headers.clear();  // a new response (after 100 Continue or a redirect)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    response->headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                   Trim(line.substr(colon + 1)));
  }
  return size * n;
}

}  // namespace

HttpResponse SendHttp(const HttpRequest& request) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_ALL); });
  HttpResponse response;
  CurlPtr curl(curl_easy_init());
  if (curl == nullptr) {
    response.error = "curl_easy_init failed";
    return response;
  }
  CURL* c = curl.get();
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
  bool has_content_type = false;
  CurlListPtr headers;
  // curl_slist_append returns the list's head, the same pointer once the list is not empty.
  auto add_header = [&](const std::string& h) {
    curl_slist* l = curl_slist_append(headers.get(), h.c_str());
    if (l != nullptr) {
      (void)headers.release();
      headers.reset(l);
    }
  };
  for (const std::string& h : request.headers) {
    add_header(h);
    if (Lower(h).starts_with("content-type:")) has_content_type = true;
  }
  add_header("Expect:");  // no 100-continue round trip
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.method != "GET" && request.method != "HEAD") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    // libcurl would otherwise label the body a form.
    if (!has_content_type) add_header("Content-Type:");
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (!request.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, request.ca_file.c_str());
  if (!request.user.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, request.user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, request.password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, AppendHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    response.error = std::string(curl_easy_strerror(rc)) + ": " + error;
    return response;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

// ---- TokenServer ------------------------------------------------------------

struct TokenServer::Impl {
  std::string username;
  std::string password;
  std::string service;
  std::string issuer;
  PkeyPtr key;
  std::string cert_pem;
  std::string cert_der_base64;
  UniqueFd listener;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::thread thread;

  mutable std::mutex mu;
  std::vector<TokenRequest> requests;  // guarded by mu

  void Serve();
  void Handle(int fd);
  std::string Mint(const std::string& subject, const Json& access) const;
};

std::string TokenServer::Impl::Mint(const std::string& subject, const Json& access) const {
  std::time_t now = std::time(nullptr);
  Json header = {{"typ", "JWT"}, {"alg", "ES256"}, {"x5c", {cert_der_base64}}};
  Json claims = {{"iss", issuer}, {"sub", subject}, {"aud", service},       {"exp", now + 300},
                 {"nbf", now},    {"iat", now},     {"jti", RandomHex(16)}, {"access", access}};
  std::string signing_input = Base64Url(header.dump()) + "." + Base64Url(claims.dump());
  return signing_input + "." + Base64Url(SignEs256(key.get(), signing_input));
}

void TokenServer::Impl::Serve() {
  for (;;) {
    int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping.load()) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::fprintf(stderr, "registry_fixture: token server accept: errno %d\n", errno);
      return;
    }
    UniqueFd conn(fd);
    Handle(conn.get());
  }
}

void TokenServer::Impl::Handle(int fd) {
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos && in.size() < 64 * 1024) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
  }
  std::string_view head(in);
  head = head.substr(0, head.find("\r\n\r\n"));
  std::string_view request_line = head.substr(0, head.find("\r\n"));
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
  TokenRequest record;
  std::string method(request_line.substr(0, sp1));
  if (sp1 != std::string_view::npos) {
    record.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  }
  std::string authorization;
  size_t content_length = 0;
  for (std::string_view rest = head.substr(std::min(head.size(), request_line.size() + 2));
       !rest.empty();) {
    size_t eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos && Lower(Trim(line.substr(0, colon))) == "authorization") {
      authorization = Trim(line.substr(colon + 1));
      record.authorization = true;
    }
    if (colon != std::string_view::npos &&
        Lower(Trim(line.substr(0, colon))) == "content-length") {
      content_length = std::strtoul(std::string(Trim(line.substr(colon + 1))).c_str(), nullptr, 10);
    }
  }
  // The body of a POST (the OAuth2 form), after the head.
  std::string form = in.substr(std::min(in.size(), in.find("\r\n\r\n") + 4));
  while (form.size() < content_length && form.size() < 64 * 1024) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    form.append(buf, static_cast<size_t>(n));
  }
  size_t qmark = record.target.find('?');
  std::string path = record.target.substr(0, qmark);
  std::string query = qmark == std::string::npos ? "" : record.target.substr(qmark + 1);
  record.scopes = SplitScopes(QueryValues(query, "scope"));

  std::string body;
  std::string extra_headers;
  if (method == "POST" && path == "/token") {
    // OAuth2 refresh-token grant, as clients holding an identity token use.
    record.scopes = SplitScopes(QueryValues(form, "scope"));
    std::vector<std::string> grant = QueryValues(form, "grant_type");
    std::vector<std::string> refresh = QueryValues(form, "refresh_token");
    if (grant.size() == 1 && grant[0] == "refresh_token" && refresh.size() == 1 &&
        refresh[0] == kTestRefreshToken) {
      record.user = username;
      record.authorization = true;
      std::string token = Mint(record.user, GrantAccess(record.scopes, true));
      record.status = 200;
      body = Json{{"access_token", token}, {"expires_in", 300}}.dump();
    } else {
      record.status = 401;
      body = R"({"error":"invalid_grant"})";
    }
  } else if (method != "GET") {
    record.status = 405;
  } else if (path != "/token") {
    record.status = 404;
  } else {
    bool authenticated = false;
    bool rejected = false;
    if (record.authorization) {
      rejected = true;
      if (Lower(authorization).starts_with("basic ")) {
        Result<std::string> decoded = Base64Decode(Trim(authorization.substr(6)));
        if (decoded.ok() && *decoded == username + ":" + password) {
          rejected = false;
          authenticated = true;
          record.user = username;
        }
      }
    }
    if (rejected) {
      record.status = 401;
      extra_headers = "WWW-Authenticate: Basic realm=\"sbx-test-token\"\r\n";
      body = R"({"details":"incorrect username or password"})";
    } else {
      std::string token = Mint(record.user, GrantAccess(record.scopes, authenticated));
      record.status = 200;
      body = Json{{"token", token},
                  {"access_token", token},
                  {"expires_in", 300},
                  {"issued_at", Rfc3339Utc(std::time(nullptr))}}
                 .dump();
    }
  }
  if (body.empty()) body = Json{{"details", StatusText(record.status)}}.dump();
  std::string response =
      "HTTP/1.1 " + std::to_string(record.status) + " " + StatusText(record.status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
  {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(record);
  }
  (void)SendAll(fd, response);
  ::shutdown(fd, SHUT_WR);
}

TokenServer::TokenServer(std::string username, std::string password, std::string service,
                         std::string issuer)
    : impl_(std::make_unique<Impl>()) {
  impl_->username = std::move(username);
  impl_->password = std::move(password);
  impl_->service = std::move(service);
  impl_->issuer = std::move(issuer);
  impl_->key = NewP256Key();
  X509Ptr cert = NewCert({"sbx-test-token-signer",
                          {{NID_basic_constraints, "critical,CA:TRUE"},
                           {NID_key_usage, "critical,digitalSignature,keyCertSign"},
                           {NID_subject_key_identifier, "hash"}}},
                         impl_->key.get(), nullptr, nullptr);
  impl_->cert_pem = CertPem(cert.get());
  impl_->cert_der_base64 = Base64Encode(CertDer(cert.get()));
  impl_->listener = ListenLoopback(64, &impl_->port);
  if (!impl_->listener.valid()) {
    ADD_FAILURE() << "token server: cannot listen on 127.0.0.1: errno " << errno;
    return;
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->Serve(); });
}

TokenServer::~TokenServer() {
  impl_->stopping.store(true);
  // shutdown() wakes a thread blocked in accept() on Linux.
  if (impl_->listener.valid()) ::shutdown(impl_->listener.get(), SHUT_RDWR);
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string TokenServer::realm() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + "/token";
}

std::string TokenServer::cert_pem() const { return impl_->cert_pem; }

std::vector<TokenRequest> TokenServer::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

void TokenServer::ClearRequests() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->requests.clear();
}

std::string TokenServer::MintToken(const std::vector<std::string>& scopes) const {
  return impl_->Mint(impl_->username, GrantAccess(scopes, /*authenticated=*/true));
}

// ---- TestRegistry -----------------------------------------------------------

struct TestRegistry::Impl {
  RegistryOptions options;
  TempDir dir;
  std::unique_ptr<TokenServer> token_server;
  int port = 0;
  std::string storage_dir;
  std::string cert_dir;
  std::string ca_file;
  std::string log_file;
  ChildProcess process;  // destroyed before dir: the registry dies before its files go

  std::string Log() const { return ReadOr(log_file); }
  std::string Host() const { return "127.0.0.1:" + std::to_string(port); }
  std::string Url(std::string_view path) const {
    return (options.tls ? "https://" : "http://") + Host() + std::string(path);
  }
  // Everything the constructor does; a function of its own for gtest's ASSERTs.
  void Start();
};

TestRegistry::TestRegistry(RegistryOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->Start();
}

void TestRegistry::Impl::Start() {
  Impl& r = *this;
  r.storage_dir = r.dir.Sub("storage");
  r.cert_dir = r.dir.Sub("certs");
  r.log_file = r.dir.Sub("registry.log");
  ASSERT_TRUE(MakeDirs(r.storage_dir).ok());
  ASSERT_TRUE(MakeDirs(r.cert_dir).ok());
  // skopeo reads these instead of the host's registries.conf and auth.json.
  ASSERT_NO_FATAL_FAILURE(WriteBytes(r.dir.Sub("registries.conf"), ""));

  std::string http_extra;
  if (r.options.tls) {
    PkeyPtr ca_key = NewP256Key();
    X509Ptr ca = NewCert({"sbx test CA",
                          {{NID_basic_constraints, "critical,CA:TRUE"},
                           {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"},
                           {NID_subject_key_identifier, "hash"}}},
                         ca_key.get(), nullptr, nullptr);
    PkeyPtr server_key = NewP256Key();
    X509Ptr server = NewCert({"127.0.0.1",
                              {{NID_basic_constraints, "critical,CA:FALSE"},
                               {NID_key_usage, "critical,digitalSignature"},
                               {NID_ext_key_usage, "serverAuth"},
                               {NID_subject_alt_name, "IP:127.0.0.1"}}},
                             server_key.get(), ca.get(), ca_key.get());
    r.ca_file = r.cert_dir + "/ca.crt";
    ASSERT_NO_FATAL_FAILURE(WriteBytes(r.ca_file, CertPem(ca.get())));
    // Outside cert_dir: skopeo would take a *.cert/*.key pair there as a client certificate.
    ASSERT_NO_FATAL_FAILURE(WriteBytes(r.dir.Sub("tls/server.crt"), CertPem(server.get())));
    ASSERT_NO_FATAL_FAILURE(WriteBytes(r.dir.Sub("tls/server.key"), KeyPem(server_key.get())));
    http_extra += "  tls:\n    certificate: " + r.dir.Sub("tls/server.crt") +
                  "\n    key: " + r.dir.Sub("tls/server.key") + "\n";
  }

  std::string auth;
  switch (r.options.auth) {
    case RegistryOptions::Auth::kNone:
      break;
    case RegistryOptions::Auth::kHtpasswd: {
      std::string htpasswd = r.dir.Sub("htpasswd");
      std::string cmd = "htpasswd -Bbn " + ShellQuote(r.options.username) + " " +
                        ShellQuote(r.options.password) + " > " + htpasswd + " 2>&1";
      ASSERT_EQ(Run(cmd), 0) << cmd << ": " << ReadOr(htpasswd);
      auth = "auth:\n  htpasswd:\n    realm: " + std::string(kTestRegistryService) +
             "\n    path: " + htpasswd + "\n";
      break;
    }
    case RegistryOptions::Auth::kToken: {
      r.token_server = std::make_unique<TokenServer>(r.options.username, r.options.password,
                                                     std::string(kTestRegistryService),
                                                     std::string(kTestTokenIssuer));
      std::string bundle = r.dir.Sub("token/rootcertbundle.pem");
      ASSERT_NO_FATAL_FAILURE(WriteBytes(bundle, r.token_server->cert_pem()));
      auth = "auth:\n  token:\n    realm: \"" + r.token_server->realm() +
             "\"\n    service: " + std::string(kTestRegistryService) +
             "\n    issuer: " + std::string(kTestTokenIssuer) + "\n    rootcertbundle: " + bundle +
             "\n";
      break;
    }
  }

  std::string config_file = r.dir.Sub("config.yml");
  std::string storage = "storage:\n  filesystem:\n    rootdirectory: " + r.storage_dir +
                        "\n  delete:\n    enabled: true\n"
                        "  maintenance:\n    uploadpurging:\n      enabled: false\n";
  std::string last_problem;
  // A free port can be taken before the registry binds it: try a few.
  for (int attempt = 0; attempt < 3; ++attempt) {
    r.port = FreeLoopbackPort();
    ASSERT_NE(r.port, 0) << "no free port on 127.0.0.1";
    std::string http = "http:\n  addr: " + Host() + "\n  secret: " + RandomHex(16) + "\n";
    std::string config = "version: 0.1\nlog:\n  level: info\n  formatter: text\n" + storage + http +
                         http_extra + auth;
    ASSERT_NO_FATAL_FAILURE(WriteBytes(config_file, config));
    ASSERT_TRUE(r.process.Start({"docker-registry", "serve", config_file}, r.log_file))
        << "cannot start docker-registry: errno " << errno;
    HttpRequest ping;
    ping.url = Url("/v2/");
    ping.ca_file = ca_file;
    for (auto deadline = Clock::now() + std::chrono::seconds(10);;) {
      HttpResponse pong = SendHttp(ping);
      if (pong.status != 0) return;  // 200, or 401 behind auth: serving
      last_problem = pong.error;
      if (r.process.Exited()) {
        last_problem = "docker-registry exited";
        break;
      }
      if (Clock::now() > deadline) {
        last_problem = "no answer from /v2/ within 10 s (last: " + last_problem + ")";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    r.process.Stop();
    if (r.Log().find("address already in use") == std::string::npos) break;
  }
  FAIL() << "docker-registry at " << Host() << ": " << last_problem << "\nconfig:\n"
         << ReadOr(config_file) << "\nlog:\n"
         << r.Log();
}

TestRegistry::~TestRegistry() { impl_->process.Stop(); }

std::string TestRegistry::host() const { return impl_->Host(); }
std::string TestRegistry::url(std::string_view path) const { return impl_->Url(path); }

std::string TestRegistry::ca_file() const { return impl_->ca_file; }
std::string TestRegistry::cert_dir() const { return impl_->cert_dir; }
std::string TestRegistry::storage_dir() const { return impl_->storage_dir; }
std::string TestRegistry::log() const { return impl_->Log(); }
const RegistryOptions& TestRegistry::options() const { return impl_->options; }
const TokenServer* TestRegistry::token_server() const { return impl_->token_server.get(); }
TokenServer* TestRegistry::token_server() { return impl_->token_server.get(); }

std::string TestRegistry::BlobDataPath(const std::string& digest) const {
  std::string hex =
      digest.starts_with(kSha256Prefix) ? digest.substr(kSha256Prefix.size()) : digest;
  return impl_->storage_dir + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex +
         "/data";
}

void TestRegistry::Push(const std::string& layout, const std::string& dest, bool all) {
  const Impl& r = *impl_;
  std::string output = r.dir.Sub("skopeo.log");
  std::string cmd = "REGISTRY_AUTH_FILE=" + r.dir.Sub("auth.json") +
                    " CONTAINERS_REGISTRIES_CONF=" + r.dir.Sub("registries.conf") +
                    " skopeo --insecure-policy copy";
  // The registry gets the layout's bytes as they are: skopeo would otherwise
  // compress uncompressed layers and rewrite the manifest.
  cmd += " --preserve-digests";
  if (all) cmd += " --all";
  cmd += r.options.tls ? " --dest-cert-dir=" + r.cert_dir : " --dest-tls-verify=false";
  if (r.options.auth != RegistryOptions::Auth::kNone) {
    cmd += " --dest-creds=" + ShellQuote(r.options.username + ":" + r.options.password);
  }
  cmd += " " + ShellQuote("oci:" + layout) + " " + ShellQuote("docker://" + host() + "/" + dest) +
         " > " + output + " 2>&1";
  int rc = Run(cmd);
  ASSERT_EQ(rc, 0) << cmd << "\n" << ReadOr(output) << "\nregistry log:\n" << log();
}

HttpRequest TestRegistry::Request(std::string method, std::string_view path) const {
  HttpRequest request;
  request.method = std::move(method);
  request.url = url(path);
  request.ca_file = impl_->ca_file;
  return request;
}

void TestRegistry::Authorize(HttpRequest& request, const std::string& repository) const {
  const Impl& r = *impl_;
  switch (r.options.auth) {
    case RegistryOptions::Auth::kNone:
      break;
    case RegistryOptions::Auth::kHtpasswd:
      request.user = r.options.username;
      request.password = r.options.password;
      break;
    case RegistryOptions::Auth::kToken:
      request.headers.push_back(
          "Authorization: Bearer " +
          r.token_server->MintToken({"repository:" + repository + ":pull,push"}));
      break;
  }
}

int TestRegistry::PutManifest(const std::string& repo, const std::string& reference,
                              const std::string& body, const std::string& media_type) {
  HttpRequest put = Request("PUT", "/v2/" + repo + "/manifests/" + reference);
  put.body = body;
  put.headers.push_back("Content-Type: " + media_type);
  Authorize(put, repo);
  HttpResponse response = SendHttp(put);
  if (response.status == 0) ADD_FAILURE() << "PUT " << put.url << ": " << response.error;
  return static_cast<int>(response.status);
}

std::string TestRegistry::PutBlob(const std::string& repo, const std::string& data) {
  std::string digest = Sha256Digest(data);
  HttpRequest start = Request("POST", "/v2/" + repo + "/blobs/uploads/");
  Authorize(start, repo);
  HttpResponse started = SendHttp(start);
  std::string location = started.Header("location");
  if (started.status != 202 || location.empty()) {
    ADD_FAILURE() << "POST " << start.url << ": " << started.status << " " << started.error
                  << started.body;
    return "";
  }
  HttpRequest put = Request("PUT", "");
  put.url = location.starts_with("/") ? url(location) : location;
  put.url +=
      (location.find('?') == std::string::npos ? "?" : "&") + ("digest=" + UrlEncode(digest));
  put.body = data;
  put.headers.push_back("Content-Type: application/octet-stream");
  Authorize(put, repo);
  HttpResponse done = SendHttp(put);
  if (done.status != 201) {
    ADD_FAILURE() << "PUT " << put.url << ": " << done.status << " " << done.error << done.body;
    return "";
  }
  return digest;
}

}  // namespace sbx::oci::testing
