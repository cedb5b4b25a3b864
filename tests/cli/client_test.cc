#include "cli/client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <future>

#include "api/kinds.h"
#include "tests/cli/fake_server.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::Routes;

const api::KindInfo& SandboxKind() { return *api::FindKind("sandbox"); }

TEST(ResourcePathTest, BuildsKubernetesPaths) {
  struct Case {
    const char* kind;
    const char* ns;
    const char* name;
    const char* sub;
    const char* want;
  } cases[] = {
      {"sandbox", "default", "a", "",
       "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/a"},
      {"sandbox", "", "", "", "/apis/agents.x-k8s.io/v1beta1/sandboxes"},
      {"sandbox", "ns1", "a", "exec",
       "/apis/agents.x-k8s.io/v1beta1/namespaces/ns1/sandboxes/a/exec"},
      {"secret", "default", "", "", "/api/v1/namespaces/default/secrets"},
      {"ns", "ignored", "team", "", "/api/v1/namespaces/team"},
      {"swp", "x", "", "",
       "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/x/sandboxwarmpools"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ResourcePath(*api::FindKind(c.kind), c.ns, c.name, c.sub), c.want) << c.kind;
  }
}

TEST(QueryStringTest, EncodesValues) {
  EXPECT_EQ(QueryString({}), "");
  EXPECT_EQ(QueryString({{"labelSelector", "app=a,tier!=b"}, {"watch", "true"}}),
            "?labelSelector=app%3Da%2Ctier%21%3Db&watch=true");
}

TEST(LineSplitterTest, JoinsLinesAcrossFeeds) {
  struct Case {
    std::vector<std::string> feeds;
    std::vector<std::string> want;
    std::string pending;
  } cases[] = {
      {{"a\nb\n"}, {"a", "b"}, ""},
      {{"a", "b", "c\n"}, {"abc"}, ""},
      {{"{\"type\":", "\"ADDED\"}\n{\"ty", "pe\":\"DELETED\"}\n"},
       {"{\"type\":\"ADDED\"}", "{\"type\":\"DELETED\"}"},
       ""},
      {{"x\n\n", "tail"}, {"x", ""}, "tail"},
      {{"crlf\r\n"}, {"crlf\r"}, ""},
  };
  for (const auto& c : cases) {
    LineSplitter s;
    std::vector<std::string> got;
    for (const auto& f : c.feeds) {
      s.Feed(f, [&](std::string_view line) {
        got.emplace_back(line);
        return true;
      });
    }
    EXPECT_EQ(got, c.want);
    EXPECT_EQ(s.pending(), c.pending);
  }
}

TEST(LineSplitterTest, StopsWhenCallbackSaysSoAndKeepsTheRest) {
  LineSplitter s;
  std::vector<std::string> got;
  bool more = s.Feed("a\nb\nc", [&](std::string_view line) {
    got.emplace_back(line);
    return false;
  });
  EXPECT_FALSE(more);
  EXPECT_EQ(got, std::vector<std::string>{"a"});
  EXPECT_EQ(s.pending(), "b\nc");
}

TEST(ClientTest, GetReturnsTheObject) {
  Routes routes;
  routes.Json("GET /apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/a", 200,
              {{"kind", "Sandbox"}, {"metadata", {{"name", "a"}}}});
  FakeServer server(routes.Handler());
  Client client(server.socket_path());
  Result<Json> got = client.Get(SandboxKind(), "default", "a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)["metadata"]["name"], "a");
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].headers["host"], "localhost");
}

TEST(ClientTest, ServerStatusBecomesCodeAndMessage) {
  struct Case {
    int http;
    std::string reason;
    Code want;
  } cases[] = {
      {404, "NotFound", Code::kNotFound},           {409, "Conflict", Code::kConflict},
      {409, "AlreadyExists", Code::kAlreadyExists}, {422, "Invalid", Code::kInvalid},
      {400, "BadRequest", Code::kInvalidArgument},  {413, "RequestEntityTooLarge", Code::kTooLarge},
      {500, "InternalError", Code::kInternal},      {503, "", Code::kUnavailable},
  };
  for (const auto& c : cases) {
    Routes routes;
    routes.Status("GET /apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/a", c.http,
                  c.reason, "the message");
    FakeServer server(routes.Handler());
    Client client(server.socket_path());
    Result<Json> got = client.Get(SandboxKind(), "default", "a");
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), c.want) << c.reason;
    EXPECT_EQ(got.status().message(), "the message");
    EXPECT_FALSE(IsTransportError(got.status()));
  }
}

TEST(ClientTest, NonStatusErrorBodyIsDescribed) {
  FakeServer server([](const FakeRequest&, int fd) {
    FakeServer::Send(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\noops");
  });
  Client client(server.socket_path());
  Result<Json> got = client.GetJson("/version");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kInternal);
  EXPECT_EQ(got.status().message(),
            "an error on the server (\"oops\") has prevented the request from succeeding");
}

TEST(ClientTest, MissingSocketIsATransportError) {
  Client client("/nonexistent/dir/sbxd.sock");
  Result<Json> got = client.GetJson("/version");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(IsTransportError(got.status()));
  EXPECT_EQ(got.status().message(),
            "Unable to connect to the server: dial unix /nonexistent/dir/sbxd.sock: connect: no "
            "such file or directory");
}

TEST(ClientTest, ConnectionClosedMidResponseIsATransportError) {
  FakeServer server([](const FakeRequest&, int fd) {
    FakeServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":");
  });
  Client client(server.socket_path());
  Result<Json> got = client.GetJson("/version");
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(IsTransportError(got.status()));
}

TEST(ClientTest, CreateAndUpdateSendJsonBodies) {
  Routes routes;
  std::string base = "/apis/agents.x-k8s.io/v1beta1/namespaces/ns/sandboxes";
  routes.Json("POST " + base, 201, {{"created", true}});
  routes.Json("PUT " + base + "/a", 200, {{"updated", true}});
  routes.Json("DELETE " + base + "/a", 200, {{"deleted", true}});
  FakeServer server(routes.Handler());
  Client client(server.socket_path());
  Json obj = {{"metadata", {{"name", "a"}}}};
  ASSERT_TRUE(client.Create(SandboxKind(), "ns", obj).ok());
  ASSERT_TRUE(client.Update(SandboxKind(), "ns", "a", obj).ok());
  ASSERT_TRUE(client.Delete(SandboxKind(), "ns", "a").ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(Json::parse(reqs[0].body), obj);
  EXPECT_EQ(reqs[0].headers["content-type"], "application/json");
  EXPECT_EQ(reqs[1].method, "PUT");
  EXPECT_EQ(Json::parse(reqs[1].body), obj);
  EXPECT_EQ(reqs[2].method, "DELETE");
}

TEST(ClientTest, StreamDeliversEachChunkBeforeTheNextArrives) {
  std::promise<void> first_seen;
  auto first_seen_f = first_seen.get_future();
  FakeServer server([&](const FakeRequest&, int fd) {
    FakeServer::SendChunkedHead(fd, "text/plain");
    FakeServer::SendChunk(fd, "first\n");
    // The second chunk is only sent once the client has seen the first.
    first_seen_f.wait();
    FakeServer::SendChunk(fd, "second\n");
    FakeServer::SendChunk(fd, "");
  });
  Client client(server.socket_path());
  std::vector<std::string> pieces;
  HttpRequest r;
  r.target = "/log";
  Result<StreamResult> got = client.Stream(r, [&](std::string_view data) {
    pieces.emplace_back(data);
    if (pieces.size() == 1) first_seen.set_value();
    return true;
  });
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->response.status_code, 200);
  EXPECT_EQ(pieces, (std::vector<std::string>{"first\n", "second\n"}));
}

TEST(ClientTest, StreamOfAnErrorAnswerCollectsTheBody) {
  Routes routes;
  routes.Status("GET /log", 404, "NotFound", "no such sandbox");
  FakeServer server(routes.Handler());
  Client client(server.socket_path());
  bool called = false;
  HttpRequest r;
  r.target = "/log";
  Result<StreamResult> got = client.Stream(r, [&](std::string_view) {
    called = true;
    return true;
  });
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(called);
  EXPECT_EQ(StatusFromResponse(got->response).message(), "no such sandbox");
}

TEST(ClientTest, WatchSplitsEventsAcrossChunkBoundaries) {
  std::string e1 = R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})";
  std::string e2 =
      R"({"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"7"}}})";
  std::string e3 = R"({"type":"DELETED","object":{"metadata":{"name":"a"}}})";
  FakeServer server([&](const FakeRequest&, int fd) {
    FakeServer::SendChunkedHead(fd, "application/json");
    std::string all = e1 + "\n" + e2 + "\n" + e3 + "\n";
    // Uneven pieces: a line split in three, two lines in one chunk.
    FakeServer::SendChunk(fd, all.substr(0, 10));
    FakeServer::SendChunk(fd, all.substr(10, 20));
    FakeServer::SendChunk(fd, all.substr(30, e1.size() + e2.size() - 20));
    FakeServer::SendChunk(fd, all.substr(e1.size() + e2.size() + 10));
    FakeServer::SendChunk(fd, "");
  });
  Client client(server.socket_path());
  std::vector<std::string> types;
  WatchOptions opts;
  opts.resource_version = "5";
  opts.field_selector = "metadata.name=a";
  Result<WatchEnd> end = client.Watch(SandboxKind(), "default", opts, [&](const WatchEvent& e) {
    types.push_back(e.type);
    EXPECT_EQ(e.object["metadata"]["name"], "a");
    return true;
  });
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, WatchEnd::kClosed);
  EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"}));
  EXPECT_EQ(server.requests()[0].target,
            "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes"
            "?watch=true&resourceVersion=5&fieldSelector=metadata.name%3Da");
}

TEST(ClientTest, WatchStopsWhenTheConsumerIsDone) {
  FakeServer server([&](const FakeRequest&, int fd) {
    FakeServer::SendChunkedHead(fd, "application/json");
    FakeServer::SendChunk(fd, "{\"type\":\"ADDED\",\"object\":{}}\n");
    // Never ends: the client has to hang up.
    char c;
    (void)!::read(fd, &c, 1);
  });
  Client client(server.socket_path());
  Result<WatchEnd> end =
      client.Watch(SandboxKind(), "default", {}, [](const WatchEvent&) { return false; });
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, WatchEnd::kStopped);
}

TEST(ClientTest, WatchTimesOutAtTheDeadline) {
  FakeServer server([&](const FakeRequest&, int fd) {
    FakeServer::SendChunkedHead(fd, "application/json");
    char c;
    (void)!::read(fd, &c, 1);
  });
  Client client(server.socket_path());
  WatchOptions opts;
  opts.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  Result<WatchEnd> end =
      client.Watch(SandboxKind(), "default", opts, [](const WatchEvent&) { return true; });
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, WatchEnd::kTimedOut);
}

TEST(ClientTest, BodyReaderUploadsChunked) {
  Routes routes;
  routes.Json("POST /upload", 200, {{"ok", true}});
  FakeServer server(routes.Handler());
  Client client(server.socket_path());
  std::string payload(300 * 1024, 'x');
  size_t offset = 0;
  HttpRequest r;
  r.method = "POST";
  r.target = "/upload";
  r.body_reader = [&](char* buf, size_t cap) -> Result<size_t> {
    size_t n = std::min(cap, payload.size() - offset);
    std::memcpy(buf, payload.data() + offset, n);
    offset += n;
    return n;
  };
  Result<HttpResponse> got = client.Do(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status_code, 200);
  auto reqs = server.requests();
  EXPECT_EQ(reqs[0].headers["transfer-encoding"], "chunked");
  EXPECT_EQ(reqs[0].body, payload);
}

TEST(ClientTest, UpgradeKeepsBytesThatFollowTheHead) {
  FakeServer server([](const FakeRequest& r, int fd) {
    EXPECT_EQ(r.headers.at("upgrade"), "sbx-stream.v1");
    FakeServer::Send(fd,
                     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     "Upgrade: sbx-stream.v1\r\n\r\nEARLY");
    FakeServer::Send(fd, "LATE");
  });
  Client client(server.socket_path());
  HttpRequest r;
  r.method = "POST";
  r.target = "/exec";
  Result<UpgradedStream> up = client.Upgrade(r, "sbx-stream.v1");
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  std::string all = up->leftover;
  char buf[64];
  ssize_t n;
  while ((n = ::read(up->fd.get(), buf, sizeof(buf))) > 0) all.append(buf, n);
  EXPECT_EQ(all, "EARLYLATE");
}

TEST(ClientTest, UpgradeRefusedReturnsTheServerError) {
  Routes routes;
  routes.Status("POST /exec", 404, "NotFound", "sandboxes.agents.x-k8s.io \"x\" not found");
  FakeServer server(routes.Handler());
  Client client(server.socket_path());
  HttpRequest r;
  r.method = "POST";
  r.target = "/exec";
  Result<UpgradedStream> up = client.Upgrade(r, "sbx-stream.v1");
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), Code::kNotFound);
  EXPECT_EQ(up.status().message(), "sandboxes.agents.x-k8s.io \"x\" not found");
}

}  // namespace
}  // namespace sbx::cli
