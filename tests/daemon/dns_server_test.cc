// The sandboxes' DNS server on loopback: cluster names answered from its
// table (A and AAAA, NXDOMAIN for unknown ones), other names relayed to an
// upstream (a UDP responder in the test) under the client's id.
#include "daemon/dns_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

namespace sbx::daemon {
namespace {

std::string Query(uint16_t id, const std::string& name, uint16_t type) {
  std::string q;
  q.push_back(static_cast<char>(id >> 8));
  q.push_back(static_cast<char>(id & 0xff));
  q += std::string("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<char>(dot - start));
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q.push_back('\0');
  q.push_back('\0');
  q.push_back(static_cast<char>(type));
  q += std::string("\x00\x01", 2);
  return q;
}

// Sends `packet` to 127.0.0.1:port and returns the reply ("" on timeout).
std::string Ask(int port, const std::string& packet) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  pollfd p{fd, POLLIN, 0};
  std::string out;
  if (::poll(&p, 1, 3000) == 1) {
    char buf[2048];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) out.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

int Rcode(const std::string& reply) { return static_cast<unsigned char>(reply[3]) & 0x0f; }
int Answers(const std::string& reply) {
  return (static_cast<unsigned char>(reply[6]) << 8) | static_cast<unsigned char>(reply[7]);
}

TEST(DnsMessage, ParsesAQuestionAndBuildsAnAnswer) {
  std::string q = Query(0x1234, "Named.Default.svc.cluster.local", 1);
  auto parsed = ParseDnsQuery(q);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->id, 0x1234);
  EXPECT_EQ(parsed->name, "named.default.svc.cluster.local");
  EXPECT_EQ(parsed->type, 1);
  std::string a = BuildDnsAnswer(q, *parsed, {"10.213.0.5", "fd00::5"}, true);
  EXPECT_EQ(Rcode(a), 0);
  EXPECT_EQ(Answers(a), 1);  // the A record only
  EXPECT_EQ(a.substr(a.size() - 4), std::string("\x0a\xd5\x00\x05", 4));
  EXPECT_EQ(Rcode(BuildDnsAnswer(q, *parsed, {}, false)), 3);
  EXPECT_FALSE(ParseDnsQuery("short").ok());
  EXPECT_FALSE(ParseDnsQuery(q.substr(0, 20)).ok());
}

TEST(DnsServer, AnswersClusterNamesAndRelaysTheRest) {
  // The upstream: answers every query with its id and a marker byte.
  int up = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in ua{};
  ua.sin_family = AF_INET;
  ua.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ua.sin_port = htons(0);
  ASSERT_EQ(::bind(up, reinterpret_cast<sockaddr*>(&ua), sizeof ua), 0);
  socklen_t len = sizeof ua;
  ::getsockname(up, reinterpret_cast<sockaddr*>(&ua), &len);
  std::atomic<bool> stop{false};
  std::atomic<int> relayed_id{-1};
  std::thread upstream([&] {
    while (!stop) {
      pollfd p{up, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      char buf[512];
      sockaddr_storage from;
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(up, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 12) continue;
      relayed_id = (static_cast<unsigned char>(buf[0]) << 8) | static_cast<unsigned char>(buf[1]);
      std::string reply(buf, static_cast<size_t>(n));
      reply[2] = static_cast<char>(0x81);
      reply += "UPSTREAM";
      ::sendto(up, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  });
  DnsServer server({"127.0.0.1"}, ntohs(ua.sin_port));
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  server.SetNames({{"named.default.svc.cluster.local", {"10.213.0.5"}}});

  std::string a = Ask(server.port(), Query(7, "named.default.svc.cluster.local", 1));
  ASSERT_GE(a.size(), 12u);
  EXPECT_EQ(a[0], 0);
  EXPECT_EQ(a[1], 7);
  EXPECT_EQ(Rcode(a), 0);
  EXPECT_EQ(Answers(a), 1);
  std::string nx = Ask(server.port(), Query(8, "other.default.svc.cluster.local", 1));
  ASSERT_GE(nx.size(), 12u);
  EXPECT_EQ(Rcode(nx), 3);
  server.SetNames({});
  EXPECT_EQ(Rcode(Ask(server.port(), Query(9, "named.default.svc.cluster.local", 1))), 3);
  // Any other name goes upstream under an id of the server's, and the
  // answer comes back under the client's.
  std::string relayed = Ask(server.port(), Query(0x4242, "example.com", 1));
  ASSERT_GE(relayed.size(), 12u);
  EXPECT_EQ(relayed.substr(relayed.size() - 8), "UPSTREAM");
  EXPECT_EQ(static_cast<unsigned char>(relayed[0]), 0x42);
  EXPECT_EQ(static_cast<unsigned char>(relayed[1]), 0x42);
  EXPECT_NE(relayed_id.load(), -1);
  server.Stop();
  stop = true;
  upstream.join();
  ::close(up);
}

}  // namespace
}  // namespace sbx::daemon
