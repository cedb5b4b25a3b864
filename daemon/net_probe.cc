#include "daemon/net_probe.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/strings.h"
#include "daemon/dial.h"

namespace sbx::daemon {

namespace {

using Clock = std::chrono::steady_clock;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Blocking I/O bounded by the deadline (socket timeouts).
void BlockUntil(int fd, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
  if (left < 1000) left = 1000;
  timeval tv{static_cast<time_t>(left / 1000000), static_cast<suseconds_t>(left % 1000000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

class Stream {
 public:
  virtual ~Stream() = default;
  virtual bool Write(const std::string& data) = 0;
  virtual long Read(char* buf, size_t n) = 0;  // <0 error, 0 EOF
};

class PlainStream : public Stream {
 public:
  explicit PlainStream(int fd) : fd_(fd) {}
  bool Write(const std::string& data) override {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  long Read(char* buf, size_t n) override { return ::recv(fd_, buf, n, 0); }

 private:
  int fd_;
};

class TlsStream : public Stream {
 public:
  ~TlsStream() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }
  Status Start(int fd, const std::string& server_name) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return Internal("TLS: no context");
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);  // as the kubelet: no certificate checks
    ssl_ = SSL_new(ctx_);
    if (ssl_ == nullptr) return Internal("TLS: no session");
    SSL_set_fd(ssl_, fd);
    if (!server_name.empty() && server_name.find_first_not_of("0123456789.:") != std::string::npos) {
      SSL_set_tlsext_host_name(ssl_, server_name.c_str());
    }
    if (SSL_connect(ssl_) != 1) {
      char buf[256];
      ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
      return Unavailable(std::string("TLS handshake: ") + buf);
    }
    return Status::Ok();
  }
  bool Write(const std::string& data) override {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
  }
  long Read(char* buf, size_t n) override { return SSL_read(ssl_, buf, static_cast<int>(n)); }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

ProbeOutcome Failure(const Status& s) {
  return {ProbeResult::kFailure, std::string(s.message())};
}

}  // namespace

ProbeOutcome RunNetworkProbe(const ProbeSpec& spec, const std::string& sandbox_ip,
                             std::chrono::milliseconds timeout) {
  const std::string host = spec.host.empty() ? sandbox_ip : spec.host;
  if (host.empty()) return {ProbeResult::kUnknown, "the sandbox has no address"};
  const auto deadline = Clock::now() + timeout;
  auto dialed = DialTcp(host, spec.port, timeout);
  if (!dialed.ok()) return Failure(dialed.status());
  Fd fd;
  fd.fd = *dialed;
  if (spec.handler == ProbeSpec::Handler::kTcpSocket) return {ProbeResult::kSuccess, ""};

  BlockUntil(fd.fd, deadline);
  std::unique_ptr<Stream> stream;
  if (spec.scheme == "HTTPS") {
    auto tls = std::make_unique<TlsStream>();
    if (Status s = tls->Start(fd.fd, host); !s.ok()) return Failure(s);
    stream = std::move(tls);
  } else {
    stream = std::make_unique<PlainStream>(fd.fd);
  }
  std::string host_header = HostPort(host, spec.port);
  std::string extra;
  bool user_agent = false, accept = false;
  for (const auto& [name, value] : spec.headers) {
    std::string lower = ToLower(name);
    if (lower == "host") {
      host_header = value;
      continue;
    }
    user_agent = user_agent || lower == "user-agent";
    accept = accept || lower == "accept";
    extra += name + ": " + value + "\r\n";
  }
  std::string path = spec.path.empty() ? "/" : spec.path;
  if (path.front() != '/') path = "/" + path;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host_header + "\r\n";
  if (!user_agent) req += "User-Agent: kube-probe/sbx\r\n";
  if (!accept) req += "Accept: */*\r\n";
  req += extra + "Connection: close\r\n\r\n";
  const std::string url = (spec.scheme == "HTTPS" ? "https://" : "http://") + HostPort(host, spec.port) + path;
  if (!stream->Write(req)) {
    return {ProbeResult::kFailure, "Get \"" + url + "\": " + std::strerror(errno)};
  }
  std::string head;
  char buf[4096];
  while (head.find("\r\n") == std::string::npos && head.size() < 10240) {
    long n = stream->Read(buf, sizeof buf);
    if (n <= 0) {
      bool timed_out = Clock::now() >= deadline || errno == EAGAIN || errno == EWOULDBLOCK;
      return {ProbeResult::kFailure,
              "Get \"" + url + "\": " + (timed_out ? "context deadline exceeded" : "connection closed")};
    }
    head.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  std::string line = head.substr(0, head.find("\r\n"));
  auto sp = line.find(' ');
  int code = sp == std::string::npos ? 0 : std::atoi(line.c_str() + sp + 1);
  if (line.rfind("HTTP/", 0) != 0 || code < 100) {
    return {ProbeResult::kFailure, "Get \"" + url + "\": malformed HTTP response \"" + line.substr(0, 80) + "\""};
  }
  if (code >= 200 && code < 400) return {ProbeResult::kSuccess, ""};
  return {ProbeResult::kFailure, "HTTP probe failed with statuscode: " + std::to_string(code)};
}

}  // namespace sbx::daemon
