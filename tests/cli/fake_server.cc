#include "tests/cli/fake_server.h"

#include <http_parser.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace sbx::cli::testing {
namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct RequestParser {
  FakeRequest request;
  std::string field;
  std::string value;
  bool in_value = false;
  bool complete = false;

  void FlushHeader() {
    if (!field.empty()) request.headers[Lower(field)] = value;
    field.clear();
    value.clear();
  }
};

RequestParser* P(http_parser* p) { return static_cast<RequestParser*>(p->data); }

// Reads one request; false if the peer closed first.
bool ReadRequest(int fd, FakeRequest* out) {
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  RequestParser state;
  parser.data = &state;
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_url = [](http_parser* p, const char* at, size_t n) {
    P(p)->request.target.append(at, n);
    return 0;
  };
  s.on_header_field = [](http_parser* p, const char* at, size_t n) {
    if (P(p)->in_value) P(p)->FlushHeader();
    P(p)->in_value = false;
    P(p)->field.append(at, n);
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* at, size_t n) {
    P(p)->in_value = true;
    P(p)->value.append(at, n);
    return 0;
  };
  s.on_headers_complete = [](http_parser* p) {
    P(p)->FlushHeader();
    P(p)->request.method = http_method_str(static_cast<http_method>(p->method));
    return 0;
  };
  s.on_body = [](http_parser* p, const char* at, size_t n) {
    P(p)->request.body.append(at, n);
    return 0;
  };
  s.on_message_complete = [](http_parser* p) {
    P(p)->complete = true;
    http_parser_pause(p, 1);
    return 0;
  };
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    size_t parsed = http_parser_execute(&parser, &s, buf, static_cast<size_t>(n));
    if (state.complete) {
      if (parser.upgrade) state.request.leftover.assign(buf + parsed, n - parsed);
      *out = std::move(state.request);
      return true;
    }
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK) return false;
  }
}

std::string ReasonPhrase(int code) {
  switch (code) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 422:
      return "Unprocessable Entity";
    default:
      return "Status";
  }
}

}  // namespace

nlohmann::json StatusBody(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

FakeServer::FakeServer(Handler handler) : handler_(std::move(handler)) {
  char tmpl[] = "/tmp/sbxcli.XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  dir_ = tmpl;
  socket_path_ = dir_ + "/s.sock";
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 16) != 0 || ::pipe(stop_pipe_) != 0) {
    throw std::runtime_error("fake server setup");
  }
  thread_ = std::thread([this] { Serve(); });
}

FakeServer::~FakeServer() {
  char c = 1;
  (void)!::write(stop_pipe_[1], &c, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
  ::unlink(socket_path_.c_str());
  ::rmdir(dir_.c_str());
}

std::vector<FakeRequest> FakeServer::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

void FakeServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    FakeRequest request;
    if (ReadRequest(fd, &request)) {
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(request);
      }
      handler_(request, fd);
    }
    ::close(fd);
  }
}

void FakeServer::Send(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void FakeServer::SendJson(int fd, int code, const nlohmann::json& body) {
  std::string b = body.dump();
  Send(fd, "HTTP/1.1 " + std::to_string(code) + " " + ReasonPhrase(code) +
               "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(b.size()) +
               "\r\n\r\n" + b);
}

void FakeServer::SendStatus(int fd, int code, const std::string& reason,
                            const std::string& message) {
  SendJson(fd, code, StatusBody(code, reason, message));
}

void FakeServer::SendChunkedHead(int fd, std::string_view content_type) {
  Send(fd, "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(content_type) +
               "\r\nTransfer-Encoding: chunked\r\n\r\n");
}

void FakeServer::SendChunk(int fd, std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  Send(fd, std::string(size) + std::string(data) + "\r\n");
}

void Routes::Json(const std::string& key, int code, nlohmann::json body) {
  std::lock_guard<std::mutex> l(*mu_);
  (*routes_)[key] = Route{{{code, std::move(body)}}, 0};
}

void Routes::Status(const std::string& key, int code, const std::string& reason,
                    const std::string& message) {
  Json(key, code, StatusBody(code, reason, message));
}

void Routes::Sequence(const std::string& key, std::vector<std::pair<int, nlohmann::json>> answers) {
  std::lock_guard<std::mutex> l(*mu_);
  (*routes_)[key] = Route{std::move(answers), 0};
}

FakeServer::Handler Routes::Handler() {
  auto mu = mu_;
  auto routes = routes_;
  return [mu, routes](const FakeRequest& r, int fd) {
    std::pair<int, nlohmann::json> answer;
    {
      std::lock_guard<std::mutex> l(*mu);
      auto it = routes->find(r.method + " " + r.target);
      if (it == routes->end()) {
        answer = {404, StatusBody(404, "NotFound", "no route for " + r.method + " " + r.target)};
      } else {
        Route& route = it->second;
        answer = route.answers[std::min(route.next, route.answers.size() - 1)];
        ++route.next;
      }
    }
    FakeServer::SendJson(fd, answer.first, answer.second);
  };
}

}  // namespace sbx::cli::testing
