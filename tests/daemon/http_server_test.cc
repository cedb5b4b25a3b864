#include "daemon/http_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::daemon {
namespace {

using namespace std::chrono_literals;

// A tiny blocking HTTP/1.1 client over a Unix socket. Every read gives up
// after five seconds so that a broken server fails the test instead of
// hanging it.
class Client {
 public:
  struct Response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lowercase names
    std::string body;
  };

  explicit Client(const std::string& socket_path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { Close(); }

  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  void Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Reads until `delim`; returns everything up to and including it.
  std::optional<std::string> ReadUntil(std::string_view delim) {
    for (;;) {
      size_t pos = buf_.find(delim);
      if (pos != std::string::npos) {
        std::string out = buf_.substr(0, pos + delim.size());
        buf_.erase(0, pos + delim.size());
        return out;
      }
      if (!Fill()) return std::nullopt;
    }
  }

  std::optional<std::string> ReadExactly(size_t n) {
    while (buf_.size() < n) {
      if (!Fill()) return std::nullopt;
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }

  std::optional<Response> ReadHead() {
    auto head = ReadUntil("\r\n\r\n");
    if (!head) return std::nullopt;
    Response r;
    std::vector<std::string> lines = Split(*head, '\n');
    if (lines.empty() || lines[0].size() < 12) return std::nullopt;
    r.status = std::stoi(lines[0].substr(9, 3));
    for (size_t i = 1; i < lines.size(); ++i) {
      std::string_view line = Trim(lines[i]);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      r.headers[ToLower(line.substr(0, colon))] = std::string(Trim(line.substr(colon + 1)));
    }
    return r;
  }

  // The next chunk of a chunked body; "" at the last chunk, nullopt on error.
  std::optional<std::string> ReadChunk() {
    auto size_line = ReadUntil("\r\n");
    if (!size_line) return std::nullopt;
    size_t size = std::stoul(*size_line, nullptr, 16);
    auto data = ReadExactly(size + 2);
    if (!data) return std::nullopt;
    return data->substr(0, size);
  }

  std::optional<Response> ReadResponse() {
    auto r = ReadHead();
    if (!r) return std::nullopt;
    if (r->status == 100 || r->status == 101) return r;
    if (r->headers.count("content-length")) {
      auto body = ReadExactly(std::stoul(r->headers["content-length"]));
      if (!body) return std::nullopt;
      r->body = *body;
    } else if (r->headers["transfer-encoding"] == "chunked") {
      for (;;) {
        auto chunk = ReadChunk();
        if (!chunk) return std::nullopt;
        if (chunk->empty()) break;
        r->body += *chunk;
      }
    } else {
      while (Fill()) {
      }
      r->body = std::move(buf_);
      buf_.clear();
    }
    return r;
  }

  std::optional<Response> Request(std::string_view raw) {
    Send(raw);
    return ReadResponse();
  }

  // True once the server has closed the connection (EOF or reset), with no
  // further bytes in between.
  bool ReadsEof() {
    if (!buf_.empty()) return false;
    return !Fill() && eof_;
  }

 private:
  bool Fill() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

std::string Get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: sbx\r\n" + std::string(extra_headers) +
         "\r\n";
}

std::string Post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: sbx\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

template <typename T>
bool Ready(std::future<T>& f) {
  return f.wait_for(5s) == std::future_status::ready;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-http-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_path_ = dir_ + "/sbxd.sock";
  }

  void TearDown() override {
    if (thread_.joinable()) {
      Call([this] { server_.reset(); });
      loop_.Stop();
      thread_.join();
    }
    server_.reset();
    (void)RemoveAll(dir_);
  }

  void Start(HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(
        loop_, std::move(options),
        [this](HttpRequest req, std::shared_ptr<HttpResponder> responder) {
          handler_(std::move(req), std::move(responder));
        });
    Status st = server_->Listen(socket_path_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    thread_ = std::thread([this] { loop_.Run(); });
  }

  // Runs fn on the loop thread and waits for it.
  void Call(std::function<void()> fn) {
    std::promise<void> done;
    loop_.Post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  EventLoop loop_;
  std::string dir_;
  std::string socket_path_;
  std::function<void(HttpRequest, std::shared_ptr<HttpResponder>)> handler_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, GetReachesHandlerWithDecodedPathQueryHeadersAndPeer) {
  std::promise<HttpRequest> seen;
  handler_ = [&](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    seen.set_value(req);
    r->Send(200, "text/plain", "hi", {{"X-Extra", "1"}});
  };
  Start();
  Client c(socket_path_);
  auto resp =
      c.Request(Get("/api/v1/name%20spaces?x=1&x=2&label=a%3Db+c&flag", "X-Mixed-Case: v\r\n"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "hi");
  EXPECT_EQ(resp->headers["content-type"], "text/plain");
  EXPECT_EQ(resp->headers["x-extra"], "1");
  HttpRequest req = seen.get_future().get();
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/api/v1/name%20spaces?x=1&x=2&label=a%3Db+c&flag");
  EXPECT_EQ(req.path, "/api/v1/name spaces");
  EXPECT_EQ(req.QueryValue("x"), "1");
  EXPECT_EQ(req.QueryValues("x"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(req.QueryValue("label"), "a=b c");
  EXPECT_EQ(req.QueryValues("flag"), (std::vector<std::string>{""}));
  EXPECT_EQ(req.QueryValue("missing"), "");
  EXPECT_EQ(req.headers["x-mixed-case"], "v");
  EXPECT_EQ(req.peer.uid, getuid());
  EXPECT_EQ(req.peer.pid, getpid());
}

TEST_F(HttpServerTest, PostBodyReachesHandler) {
  handler_ = [](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    r->Send(201, "application/json", req.method + ":" + req.body);
  };
  Start();
  Client c(socket_path_);
  auto resp = c.Request(Post("/x", "{\"a\":1}"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(resp->body, "POST:{\"a\":1}");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  int served = 0;
  handler_ = [&](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    r->Send(200, "text/plain", req.path + " " + std::to_string(++served));
  };
  Start();
  Client c(socket_path_);
  auto first = c.Request(Get("/a"));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "/a 1");
  EXPECT_EQ(first->headers.count("connection"), 0u);
  auto second = c.Request(Get("/b"));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "/b 2");
}

TEST_F(HttpServerTest, ConnectionCloseRequestClosesAfterResponse) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) { r->Send(200, "text/plain", "x"); };
  Start();
  Client c(socket_path_);
  auto resp = c.Request(Get("/a", "Connection: close\r\n"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->headers["connection"], "close");
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  // The first answer is deferred, so the second request waits behind it.
  handler_ = [&](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    if (req.path == "/slow") {
      loop_.AddTimer(50ms, [r] { r->Send(200, "text/plain", "slow"); });
    } else {
      r->Send(200, "text/plain", "fast");
    }
  };
  Start();
  Client c(socket_path_);
  c.Send(Get("/slow") + Get("/fast") + Post("/fast", "body"));
  auto a = c.ReadResponse();
  auto b = c.ReadResponse();
  auto d = c.ReadResponse();
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->body, "slow");
  EXPECT_EQ(b->body, "fast");
  EXPECT_EQ(d->body, "fast");
}

TEST_F(HttpServerTest, ChunkedRequestBodyIsDecoded) {
  handler_ = [](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    r->Send(200, "text/plain", req.body);
  };
  Start();
  Client c(socket_path_);
  auto resp = c.Request(
      "POST /x HTTP/1.1\r\nHost: sbx\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "hello world");
}

TEST_F(HttpServerTest, ExpectContinueIsAnsweredBeforeTheBody) {
  handler_ = [](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    r->Send(200, "text/plain", req.body);
  };
  Start();
  Client c(socket_path_);
  c.Send("PUT /x HTTP/1.1\r\nHost: sbx\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  auto interim = c.ReadHead();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  c.Send("data");
  auto resp = c.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "data");
}

TEST_F(HttpServerTest, ChunkedStreamArrivesIncrementally) {
  std::promise<std::shared_ptr<HttpResponder>> stream;
  handler_ = [&](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->StartStream(200, "application/json");
    EXPECT_TRUE(r->Write("first\n"));
    stream.set_value(r);
  };
  Start();
  Client c(socket_path_);
  c.Send(Get("/watch"));
  auto head = c.ReadHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(c.ReadChunk(), "first\n");
  // Later chunks come from another thread, as a watch fed by a worker would.
  auto r = stream.get_future().get();
  EXPECT_TRUE(r->Write("second\n"));
  EXPECT_EQ(c.ReadChunk(), "second\n");
  EXPECT_TRUE(r->Write(""));  // an empty write is not the terminating chunk
  EXPECT_TRUE(r->Write("third\n"));
  r->End();
  EXPECT_EQ(c.ReadChunk(), "third\n");
  EXPECT_EQ(c.ReadChunk(), "");
  // The connection stays usable after the stream.
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->Send(200, "text/plain", "ok");
  };
  auto next = c.Request(Get("/next"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "ok");
}

TEST_F(HttpServerTest, ClientDisconnectDuringStreamFiresOnClose) {
  std::promise<std::shared_ptr<HttpResponder>> stream;
  std::promise<bool> closed;
  handler_ = [&](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->StartStream(200, "application/json");
    r->OnClose([&closed, r] { closed.set_value(r->closed()); });
    stream.set_value(r);
  };
  Start();
  auto c = std::make_unique<Client>(socket_path_);
  c->Send(Get("/watch"));
  ASSERT_TRUE(c->ReadHead());
  auto r = stream.get_future().get();
  c.reset();
  auto f = closed.get_future();
  ASSERT_TRUE(Ready(f));
  EXPECT_TRUE(f.get());
  EXPECT_TRUE(r->closed());
  EXPECT_FALSE(r->Write("after"));
  // Registering after the close still runs the callback.
  std::promise<void> late;
  r->OnClose([&] { late.set_value(); });
  auto lf = late.get_future();
  EXPECT_TRUE(Ready(lf));
}

TEST_F(HttpServerTest, DestroyingTheServerRunsOnCloseCallbacksAtOnce) {
  std::promise<void> streaming;
  bool closed = false;  // loop thread only
  handler_ = [&](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->StartStream(200, "application/json");
    r->OnClose([&closed] { closed = true; });
    streaming.set_value();
  };
  Start();
  Client c(socket_path_);
  c.Send(Get("/watch"));
  streaming.get_future().wait();
  bool closed_by_then = false;
  Call([&] {
    server_.reset();
    closed_by_then = closed;
  });
  EXPECT_TRUE(closed_by_then);
  EXPECT_TRUE(c.ReadHead());
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(HttpServerTest, OversizedBodyGets413WithStatusJsonAndClose) {
  bool called = false;
  handler_ = [&](HttpRequest, std::shared_ptr<HttpResponder> r) {
    called = true;
    r->Send(200, "text/plain", "");
  };
  HttpServerOptions options;
  options.max_body_bytes = 16;
  Start(options);
  {
    Client c(socket_path_);
    auto resp = c.Request(Post("/x", std::string(100, 'a')));
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 413);
    auto json = nlohmann::json::parse(resp->body);
    EXPECT_EQ(json["kind"], "Status");
    EXPECT_EQ(json["apiVersion"], "v1");
    EXPECT_EQ(json["status"], "Failure");
    EXPECT_EQ(json["reason"], "RequestEntityTooLarge");
    EXPECT_EQ(json["code"], 413);
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    // Without Content-Length the limit applies to the decoded chunks.
    Client c(socket_path_);
    auto resp = c.Request(
        "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10\r\n0123456789abcdef\r\n1\r\nX\r\n0\r\n\r\n");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 413);
  }
  EXPECT_FALSE(called);
}

TEST_F(HttpServerTest, ClientSendingAHugeBodyStillReads413) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) { r->Send(200, "text/plain", ""); };
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  Start(options);
  Client c(socket_path_);
  // The whole body goes out before the client looks at the answer, as
  // simple clients do; the server drains it instead of resetting.
  auto resp = c.Request(Post("/x", std::string(8 << 20, 'b')));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 413);
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(HttpServerTest, MalformedRequestsGet400AndClose) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) { r->Send(200, "text/plain", ""); };
  Start();
  const char* cases[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
      "GET / HTTP/9.9.9\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const char* raw : cases) {
    SCOPED_TRACE(raw);
    Client c(socket_path_);
    auto resp = c.Request(raw);
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 400);
    EXPECT_EQ(nlohmann::json::parse(resp->body)["reason"], "BadRequest");
    EXPECT_TRUE(c.ReadsEof());
  }
}

TEST_F(HttpServerTest, OversizedHeadGets431) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) { r->Send(200, "text/plain", ""); };
  HttpServerOptions options;
  options.max_header_bytes = 1024;
  Start(options);
  Client c(socket_path_);
  auto resp = c.Request(Get("/", "X-Big: " + std::string(2000, 'b') + "\r\n"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 431);
}

TEST_F(HttpServerTest, SlowRequestHeadIsCutOff) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) { r->Send(200, "text/plain", ""); };
  HttpServerOptions options;
  options.header_timeout = 100ms;
  Start(options);
  Client c(socket_path_);
  c.Send("GET / HTTP/1.1\r\nHost:");
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(HttpServerTest, UpgradeCarriesRawBytesBothWays) {
  std::promise<std::shared_ptr<HttpResponder>> upgraded;
  std::promise<void> closed;
  handler_ = [&](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    EXPECT_EQ(req.headers["upgrade"], "test-stream");
    std::weak_ptr<HttpResponder> weak = r;
    r->Upgrade(
        "test-stream",
        [weak](std::string_view data) {
          if (auto r = weak.lock()) r->WriteRaw("echo:" + std::string(data) + ";");
        },
        [&closed] { closed.set_value(); });
    upgraded.set_value(r);
  };
  Start();
  auto c = std::make_unique<Client>(socket_path_);
  // Bytes right behind the request head belong to the new protocol.
  c->Send(
      "POST /exec HTTP/1.1\r\nHost: sbx\r\nConnection: Upgrade\r\nUpgrade: test-stream\r\n\r\n"
      "early");
  auto head = c->ReadHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 101);
  EXPECT_EQ(head->headers["upgrade"], "test-stream");
  EXPECT_EQ(c->ReadUntil(";"), "echo:early;");
  c->Send("ping");
  EXPECT_EQ(c->ReadUntil(";"), "echo:ping;");
  auto r = upgraded.get_future().get();
  EXPECT_TRUE(r->WriteRaw("from-server"));  // from a non-loop thread
  EXPECT_EQ(c->ReadExactly(11), "from-server");
  c.reset();
  auto f = closed.get_future();
  EXPECT_TRUE(Ready(f));
}

TEST_F(HttpServerTest, ServerCloseOfUpgradedStreamFlushesFirst) {
  handler_ = [&](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->Upgrade(
        "x", [](std::string_view) {}, [] {});
    r->WriteRaw(std::string(100000, 'z'));
    r->Close();
  };
  Start();
  Client c(socket_path_);
  c.Send("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n");
  ASSERT_TRUE(c.ReadHead());
  EXPECT_EQ(c.ReadExactly(100000), std::string(100000, 'z'));
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(HttpServerTest, SpooledUploadIsWrittenToAFileThatGoesAwayWithTheResponder) {
  std::promise<std::string> path;
  handler_ = [&](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    EXPECT_TRUE(req.body.empty());
    auto content = ReadFile(req.body_file);
    ASSERT_TRUE(content.ok());
    r->Send(200, "text/plain", std::to_string(content->size()) + ":" + content->substr(0, 5));
    path.set_value(req.body_file);
  };
  HttpServerOptions options;
  options.max_body_bytes = 10;  // the spool limit applies instead
  options.spool_dir = dir_;
  options.spool_body = [](const HttpRequest& req) { return req.path == "/upload"; };
  Start(options);
  Client c(socket_path_);
  std::string body(300000, 'u');
  body.replace(0, 5, "start");
  auto resp = c.Request(Post("/upload", body));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "300000:start");
  std::string file = path.get_future().get();
  EXPECT_EQ(file.rfind(dir_ + "/", 0), 0u);
  Call([] {});  // the responder has been dropped by now
  EXPECT_FALSE(PathExists(file));
}

TEST_F(HttpServerTest, SpooledUploadOverItsLimitGets413) {
  handler_ = [&](HttpRequest, std::shared_ptr<HttpResponder> r) { r->Send(200, "text/plain", ""); };
  HttpServerOptions options;
  options.spool_dir = dir_;
  options.max_spool_bytes = 1000;
  options.spool_body = [](const HttpRequest&) { return true; };
  Start(options);
  Client c(socket_path_);
  auto resp = c.Request("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                        std::string(0x800, 'a') + "\r\n0\r\n\r\n");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 413);
  Call([] {});
  auto left = ListDir(dir_);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, std::vector<std::string>{"sbxd.sock"});  // no spool file left behind
}

TEST_F(HttpServerTest, SocketGetsTheConfiguredMode) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) { r->Send(200, "text/plain", ""); };
  HttpServerOptions options;
  options.socket_mode = 0600;
  options.socket_gid = getgid();
  Start(options);
  struct stat st;
  ASSERT_EQ(stat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_gid, getgid());
}

TEST_F(HttpServerTest, ListenReplacesAStaleSocketButNotALiveOne) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->Send(200, "text/plain", "live");
  };
  {
    // A socket file nobody listens on, as a crashed sbxd leaves behind.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  Start();
  Client c(socket_path_);
  auto resp = c.Request(Get("/"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "live");

  Status second;
  Call([&] {
    HttpServer other(loop_, {}, [](HttpRequest, std::shared_ptr<HttpResponder>) {});
    second = other.Listen(socket_path_);
  });
  EXPECT_EQ(second.code(), Code::kUnavailable);
  Status on_directory;
  Call([&] { on_directory = HttpServer(loop_, {}, {}).Listen(dir_); });
  EXPECT_EQ(on_directory.code(), Code::kFailedPrecondition);
}

TEST_F(HttpServerTest, ListenFdServesAnInheritedSocket) {
  // As systemd passes a bound socket for socket activation.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = dir_ + "/activated.sock";
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->Send(200, "text/plain", "fd");
  };
  Start();
  Status st;
  Call([&] { st = server_->ListenFd(fd); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  Client c(path);
  auto resp = c.Request(Get("/"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "fd");
}

TEST_F(HttpServerTest, ResponsesFromWorkerThreadsArrive) {
  WorkerPool pool(2);
  handler_ = [&](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    pool.Submit([req, r] { r->Send(200, "text/plain", "worker:" + req.path); });
  };
  Start();
  Client c(socket_path_);
  for (int i = 0; i < 20; ++i) {
    auto resp = c.Request(Get("/" + std::to_string(i)));
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, "worker:/" + std::to_string(i));
  }
}

TEST_F(HttpServerTest, DroppedResponderAnswers500) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder>) {};
  Start();
  Client c(socket_path_);
  auto resp = c.Request(Get("/"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 500);
  EXPECT_EQ(nlohmann::json::parse(resp->body)["reason"], "InternalError");
}

TEST_F(HttpServerTest, SecondSendIsIgnored) {
  handler_ = [](HttpRequest, std::shared_ptr<HttpResponder> r) {
    r->Send(200, "text/plain", "one");
    r->Send(500, "text/plain", "two");
  };
  Start();
  Client c(socket_path_);
  auto a = c.Request(Get("/"));
  auto b = c.Request(Get("/"));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->body, "one");
  EXPECT_EQ(b->body, "one");
}

TEST_F(HttpServerTest, ShutdownClosesIdleConnectionsAndStopsAccepting) {
  std::promise<std::shared_ptr<HttpResponder>> busy;
  handler_ = [&](HttpRequest req, std::shared_ptr<HttpResponder> r) {
    if (req.path == "/busy") {
      busy.set_value(r);
    } else {
      r->Send(200, "text/plain", "ok");
    }
  };
  Start();
  Client idle(socket_path_);
  ASSERT_TRUE(idle.Request(Get("/")));
  Client working(socket_path_);
  working.Send(Get("/busy"));
  auto r = busy.get_future().get();
  Call([this] { server_->Shutdown(); });
  EXPECT_TRUE(idle.ReadsEof());
  r->Send(200, "text/plain", "done");
  auto resp = working.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "done");
  EXPECT_EQ(resp->headers["connection"], "close");
  EXPECT_TRUE(working.ReadsEof());
  Client late(socket_path_);
  EXPECT_FALSE(late.connected());
}

}  // namespace
}  // namespace sbx::daemon
