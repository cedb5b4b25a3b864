#include "cli/client.h"

#include <fcntl.h>
#include <http_parser.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/k8s_status.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

// Go-style error text ("no such file or directory"), as kubectl prints it.
std::string ErrnoText(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Status TransportError(std::string_view message) {
  std::string m(kTransportErrorPrefix);
  m += message;
  return Unavailable(std::move(m));
}

// Milliseconds left until the deadline for poll(): -1 without one, 0 if past.
int PollTimeout(const std::optional<Deadline>& deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      *deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left.count());
}

Status SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return TransportError("write: " + ErrnoText(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

std::string RequestHead(const HttpRequest& r, bool chunked, bool keep_open) {
  std::string head = r.method + " " + r.target + " HTTP/1.1\r\nHost: localhost\r\n";
  bool has_connection = false;
  for (const auto& [name, value] : r.headers) {
    if (ToLower(name) == "connection") has_connection = true;
    head += name + ": " + value + "\r\n";
  }
  if (!has_connection && !keep_open) head += "Connection: close\r\n";
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
    head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  head += "\r\n";
  return head;
}

Status SendRequest(int fd, const HttpRequest& r, bool keep_open) {
  bool chunked = static_cast<bool>(r.body_reader);
  std::string head = RequestHead(r, chunked, keep_open);
  if (!chunked) {
    head += r.body;
    return SendAll(fd, head);
  }
  SBX_RETURN_IF_ERROR(SendAll(fd, head));
  std::string buf(256 * 1024, '\0');
  for (;;) {
    SBX_ASSIGN_OR_RETURN(size_t n, r.body_reader(buf.data(), buf.size()));
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
    std::string frame = size_line;
    if (n == 0) {
      frame += "\r\n";
      return SendAll(fd, frame);
    }
    frame.append(buf.data(), n);
    frame += "\r\n";
    SBX_RETURN_IF_ERROR(SendAll(fd, frame));
  }
}

// Reads one HTTP response from a connection with http_parser.
class ResponseReader {
 public:
  // on_body receives the body of a 2xx answer; null collects it.
  explicit ResponseReader(const BodyCallback* on_body) : on_body_(on_body) {
    http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
    http_parser_settings_init(&settings_);
    settings_.on_header_field = &OnHeaderField;
    settings_.on_header_value = &OnHeaderValue;
    settings_.on_headers_complete = &OnHeadersComplete;
    settings_.on_body = &OnBody;
    settings_.on_message_complete = &OnMessageComplete;
  }

  // Reads until the response is complete, the callback stops, or the
  // deadline passes. With `upgrade`, also stops after a 101 head and puts
  // the bytes behind it into *leftover.
  Status Read(int fd, const std::optional<Deadline>& deadline, StreamResult* out,
              std::string* leftover) {
    char buf[64 * 1024];
    for (;;) {
      if (deadline) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, PollTimeout(deadline));
        if (r < 0) {
          if (errno == EINTR) continue;
          return TransportError("poll: " + ErrnoText(errno));
        }
        if (r == 0) {
          out->timed_out = true;
          break;
        }
      }
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return TransportError("read: " + ErrnoText(errno));
      }
      size_t parsed = http_parser_execute(&parser_, &settings_, buf, static_cast<size_t>(n));
      if (stopped_) {
        out->stopped = true;
        break;
      }
      if (leftover && complete_ && parser_.status_code == 101) {
        // Whatever follows the head already belongs to the new protocol.
        leftover->assign(buf + parsed, static_cast<size_t>(n) - parsed);
        break;
      }
      if (complete_) break;
      auto err = HTTP_PARSER_ERRNO(&parser_);
      if (err != HPE_OK) {
        return TransportError(std::string("malformed HTTP response: ") +
                              http_errno_description(err));
      }
      if (n == 0) return TransportError("connection closed before the response was complete");
    }
    response_.status_code = static_cast<int>(parser_.status_code);
    out->response = std::move(response_);
    return Status::Ok();
  }

 private:
  static ResponseReader* Self(http_parser* p) { return static_cast<ResponseReader*>(p->data); }

  static int OnHeaderField(http_parser* p, const char* at, size_t len) {
    auto& h = Self(p)->response_.headers;
    if (h.empty() || Self(p)->in_value_) h.emplace_back();
    Self(p)->in_value_ = false;
    h.back().first.append(at, len);
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t len) {
    Self(p)->in_value_ = true;
    Self(p)->response_.headers.back().second.append(at, len);
    return 0;
  }
  static int OnHeadersComplete(http_parser* p) {
    Self(p)->response_.status_code = static_cast<int>(p->status_code);
    return 0;
  }
  static int OnBody(http_parser* p, const char* at, size_t len) {
    ResponseReader* self = Self(p);
    bool success = p->status_code >= 200 && p->status_code < 300;
    if (self->on_body_ && *self->on_body_ && success) {
      if (!(*self->on_body_)(std::string_view(at, len))) {
        self->stopped_ = true;
        return 1;
      }
      return 0;
    }
    self->response_.body.append(at, len);
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    Self(p)->complete_ = true;
    http_parser_pause(p, 1);  // bytes after this response are not ours
    return 0;
  }

  const BodyCallback* on_body_;
  http_parser parser_;
  http_parser_settings settings_;
  HttpResponse response_;
  bool in_value_ = false;
  bool complete_ = false;
  bool stopped_ = false;
};

Result<Json> ParseJsonBody(const std::string& body) {
  try {
    return Json::parse(body);
  } catch (const Json::exception& e) {
    return Internal(std::string("the server returned invalid JSON: ") + e.what());
  }
}

}  // namespace

bool IsTransportError(const Status& status) {
  std::string_view m = status.message();
  return status.code() == Code::kUnavailable &&
         (m.starts_with(kTransportErrorPrefix) || m.starts_with(kConnectionLostPrefix));
}

std::string_view ReasonForCode(Code code) { return KubernetesReasonFor(code); }

Status StatusFromResponse(const HttpResponse& response) {
  std::string reason;
  std::string message;
  try {
    Json j = Json::parse(response.body);
    if (j.is_object() && j.value("kind", "") == "Status") {
      reason = j.value("reason", "");
      message = j.value("message", "");
    }
  } catch (const Json::exception&) {
    // Not a Status object: described from the HTTP code below.
  }
  if (message.empty()) {
    if (response.status_code == 404) {
      message = "the server could not find the requested resource";
    } else {
      std::string body(Trim(response.body));
      message = "an error on the server (\"" + (body.empty() ? "unknown" : body) +
                "\") has prevented the request from succeeding";
    }
  }
  Code code = CodeForKubernetesReason(reason, response.status_code);
  if (code == Code::kOk) code = Code::kInternal;
  return Status(code, std::move(message));
}

std::string HttpResponse::Header(std::string_view name) const {
  std::string want = ToLower(name);
  for (const auto& [n, v] : headers) {
    if (ToLower(n) == want) return v;
  }
  return "";
}

bool LineSplitter::Feed(std::string_view data,
                        const std::function<bool(std::string_view line)>& on_line) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      pending_.append(data);
      return true;
    }
    bool go_on;
    if (pending_.empty()) {
      go_on = on_line(data.substr(0, nl));
    } else {
      pending_.append(data.substr(0, nl));
      std::string line = std::move(pending_);
      pending_.clear();
      go_on = on_line(line);
    }
    data.remove_prefix(nl + 1);
    if (!go_on) {
      pending_.assign(data);
      return false;
    }
  }
  return true;
}

std::string ResourcePath(const api::KindInfo& kind, std::string_view ns, std::string_view name,
                         std::string_view subresource) {
  std::string path =
      kind.group.empty() ? "/api/" + kind.version : "/apis/" + kind.group + "/" + kind.version;
  if (kind.namespaced && !ns.empty()) path += "/namespaces/" + UrlEncode(ns);
  path += "/" + kind.plural;
  if (!name.empty()) path += "/" + UrlEncode(name);
  if (!subresource.empty()) path += "/" + std::string(subresource);
  return path;
}

std::string QueryString(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [k, v] : params) {
    q += q.empty() ? "?" : "&";
    q += k + "=" + UrlEncode(v);
  }
  return q;
}

Client::Client(std::string socket_path, ClientOptions options)
    : socket_path_(std::move(socket_path)), options_(options) {}

Result<UniqueFd> Client::Connect(std::optional<Deadline> deadline) {
  std::string dial = "dial unix " + socket_path_ + ": ";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path)) {
    return TransportError(dial + "socket path too long");
  }
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return TransportError(dial + "socket: " + ErrnoText(errno));

  Deadline connect_deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  if (deadline && *deadline < connect_deadline) connect_deadline = *deadline;
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) break;
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EINPROGRESS) {
      // The listen backlog is full (Unix sockets do not queue nonblocking
      // connects): wait for the server to accept others, up to the timeout.
      int left = PollTimeout(connect_deadline);
      if (left == 0) return TransportError(dial + "connect: timed out");
      pollfd p{fd.get(), POLLOUT, 0};
      ::poll(&p, 1, left < 10 ? left : 10);
      continue;
    }
    return TransportError(dial + "connect: " + ErrnoText(err));
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0) {
    return TransportError(dial + "fcntl: " + ErrnoText(errno));
  }
  return fd;
}

Result<StreamResult> Client::Stream(const HttpRequest& request, const BodyCallback& on_body) {
  SBX_ASSIGN_OR_RETURN(UniqueFd fd, Connect(request.deadline));
  Status sent = SendRequest(fd.get(), request, /*keep_open=*/false);
  // The server may answer (an error) before it has read the whole body and
  // close its side; its answer still explains more than our write error.
  ResponseReader reader(&on_body);
  StreamResult result;
  Status read = reader.Read(fd.get(), request.deadline, &result, nullptr);
  if (!read.ok()) return sent.ok() ? read : sent;
  return result;
}

Result<HttpResponse> Client::Do(const HttpRequest& request) {
  SBX_ASSIGN_OR_RETURN(StreamResult r, Stream(request, nullptr));
  if (r.timed_out) return TransportError("timed out waiting for the response");
  return std::move(r.response);
}

Result<UpgradedStream> Client::Upgrade(HttpRequest request, std::string_view protocol) {
  request.headers.emplace_back("Connection", "Upgrade");
  request.headers.emplace_back("Upgrade", std::string(protocol));
  SBX_ASSIGN_OR_RETURN(UniqueFd fd, Connect(request.deadline));
  SBX_RETURN_IF_ERROR(SendRequest(fd.get(), request, /*keep_open=*/true));
  ResponseReader reader(nullptr);
  StreamResult result;
  UpgradedStream up;
  SBX_RETURN_IF_ERROR(reader.Read(fd.get(), request.deadline, &result, &up.leftover));
  if (result.timed_out) return TransportError("timed out waiting for the response");
  if (result.response.status_code != 101) {
    if (result.response.status_code >= 200 && result.response.status_code < 300) {
      return TransportError("the server did not switch protocols (HTTP " +
                            std::to_string(result.response.status_code) + ")");
    }
    return StatusFromResponse(result.response);
  }
  up.fd = std::move(fd);
  return up;
}

Result<Json> Client::JsonCall(HttpRequest request) {
  request.headers.emplace_back("Accept", "application/json");
  if (!request.body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  SBX_ASSIGN_OR_RETURN(HttpResponse response, Do(request));
  if (response.status_code < 200 || response.status_code >= 300) {
    return StatusFromResponse(response);
  }
  return ParseJsonBody(response.body);
}

Result<Json> Client::GetJson(const std::string& target) {
  HttpRequest r;
  r.target = target;
  return JsonCall(std::move(r));
}

Result<Json> Client::PostJson(const std::string& target, const Json& body) {
  HttpRequest r;
  r.method = "POST";
  r.target = target;
  if (!body.is_null()) r.body = body.dump();
  return JsonCall(std::move(r));
}

Result<Json> Client::Get(const api::KindInfo& kind, std::string_view ns, std::string_view name) {
  return GetJson(ResourcePath(kind, ns, name));
}

Result<Json> Client::List(const api::KindInfo& kind, std::string_view ns,
                          const ListOptions& options) {
  std::vector<std::pair<std::string, std::string>> q;
  if (!options.label_selector.empty()) q.emplace_back("labelSelector", options.label_selector);
  if (!options.field_selector.empty()) q.emplace_back("fieldSelector", options.field_selector);
  return GetJson(ResourcePath(kind, ns) + QueryString(q));
}

Result<Json> Client::Create(const api::KindInfo& kind, std::string_view ns, const Json& object) {
  HttpRequest r;
  r.method = "POST";
  r.target = ResourcePath(kind, ns);
  r.body = object.dump();
  return JsonCall(std::move(r));
}

Result<Json> Client::Update(const api::KindInfo& kind, std::string_view ns, std::string_view name,
                            const Json& object) {
  HttpRequest r;
  r.method = "PUT";
  r.target = ResourcePath(kind, ns, name);
  r.body = object.dump();
  return JsonCall(std::move(r));
}

Result<Json> Client::Delete(const api::KindInfo& kind, std::string_view ns, std::string_view name,
                            const DeleteOptions& options) {
  HttpRequest r;
  r.method = "DELETE";
  r.target = ResourcePath(kind, ns, name);
  if (!options.propagation_policy.empty()) {
    r.body = Json{{"kind", "DeleteOptions"},
                  {"apiVersion", "v1"},
                  {"propagationPolicy", options.propagation_policy}}
                 .dump();
  }
  return JsonCall(std::move(r));
}

Result<WatchEnd> Client::Watch(const api::KindInfo& kind, std::string_view ns,
                               const WatchOptions& options,
                               const std::function<bool(const WatchEvent&)>& on_event) {
  std::vector<std::pair<std::string, std::string>> q = {{"watch", "true"}};
  if (!options.resource_version.empty())
    q.emplace_back("resourceVersion", options.resource_version);
  if (!options.label_selector.empty()) q.emplace_back("labelSelector", options.label_selector);
  if (!options.field_selector.empty()) q.emplace_back("fieldSelector", options.field_selector);
  HttpRequest r;
  r.target = ResourcePath(kind, ns) + QueryString(q);
  r.deadline = options.deadline;

  LineSplitter lines;
  Status bad_event;
  bool consumer_stopped = false;
  auto on_line = [&](std::string_view line) {
    line = Trim(line);
    if (line.empty()) return true;
    WatchEvent event;
    try {
      Json j = Json::parse(line);
      event.type = j.value("type", "");
      if (j.contains("object")) event.object = std::move(j["object"]);
    } catch (const Json::exception& e) {
      bad_event = Internal(std::string("the server sent an invalid watch event: ") + e.what());
      return false;
    }
    if (!on_event(event)) {
      consumer_stopped = true;
      return false;
    }
    return true;
  };
  SBX_ASSIGN_OR_RETURN(StreamResult result,
                       Stream(r, [&](std::string_view data) { return lines.Feed(data, on_line); }));
  if (!bad_event.ok()) return bad_event;
  int code = result.response.status_code;
  if (!result.timed_out && !result.stopped && (code < 200 || code >= 300)) {
    return StatusFromResponse(result.response);
  }
  if (consumer_stopped) return WatchEnd::kStopped;
  if (result.timed_out) return WatchEnd::kTimedOut;
  return WatchEnd::kClosed;
}

}  // namespace sbx::cli
