#include "daemon/dns_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.h"
#include "common/strings.h"

namespace sbx::daemon {

namespace {

constexpr uint16_t kTypeA = 1, kTypeAaaa = 28;
constexpr auto kRelayTimeout = std::chrono::seconds(2);
constexpr uint32_t kTtl = 5;

uint16_t Get16(const std::string& p, size_t at) {
  return static_cast<uint16_t>((static_cast<unsigned char>(p[at]) << 8) | static_cast<unsigned char>(p[at + 1]));
}

void Put16(std::string* p, uint16_t v) {
  p->push_back(static_cast<char>(v >> 8));
  p->push_back(static_cast<char>(v & 0xff));
}

void Put32(std::string* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p, static_cast<uint16_t>(v & 0xffff));
}

// An IPv4 upstream as an IPv4-mapped IPv6 address, for the dual-stack socket.
bool UpstreamAddress(const std::string& ip, int port, sockaddr_in6* out) {
  *out = {};
  out->sin6_family = AF_INET6;
  out->sin6_port = htons(static_cast<uint16_t>(port));
  in_addr v4;
  if (::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    out->sin6_addr.s6_addr[10] = 0xff;
    out->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&out->sin6_addr.s6_addr[12], &v4, 4);
    return true;
  }
  return ::inet_pton(AF_INET6, ip.c_str(), &out->sin6_addr) == 1;
}

}  // namespace

std::string ServiceFqdn(const std::string& name, const std::string& ns) {
  return name + "." + ns + ".svc." + kClusterDomain;
}

Result<DnsQuestion> ParseDnsQuery(const std::string& p) {
  if (p.size() < 12) return InvalidArgument("short DNS message");
  DnsQuestion q;
  q.id = Get16(p, 0);
  if ((static_cast<unsigned char>(p[2]) & 0x80) != 0) return InvalidArgument("not a query");
  if (Get16(p, 4) != 1) return InvalidArgument("not one question");
  size_t at = 12;
  std::string name;
  for (;;) {
    if (at >= p.size()) return InvalidArgument("truncated name");
    size_t len = static_cast<unsigned char>(p[at]);
    if (len == 0) {
      ++at;
      break;
    }
    if (len > 63 || at + 1 + len > p.size()) return InvalidArgument("bad label");
    if (!name.empty()) name += '.';
    name.append(p, at + 1, len);
    at += 1 + len;
  }
  if (at + 4 > p.size()) return InvalidArgument("truncated question");
  q.name = ToLower(name);
  q.type = Get16(p, at);
  q.klass = Get16(p, at + 2);
  q.end = at + 4;
  return q;
}

std::string BuildDnsAnswer(const std::string& query, const DnsQuestion& q, const std::vector<std::string>& ips,
                           bool exists) {
  std::vector<std::string> rdata;
  for (const std::string& ip : ips) {
    unsigned char b[16];
    if (q.type == kTypeA && ::inet_pton(AF_INET, ip.c_str(), b) == 1) rdata.emplace_back(reinterpret_cast<char*>(b), 4);
    if (q.type == kTypeAaaa && ::inet_pton(AF_INET6, ip.c_str(), b) == 1) {
      rdata.emplace_back(reinterpret_cast<char*>(b), 16);
    }
  }
  std::string out;
  Put16(&out, q.id);
  // QR, opcode 0, AA, RD copied; RA; rcode NXDOMAIN (3) or 0.
  uint8_t rd = static_cast<uint8_t>(query[2]) & 0x01;
  out.push_back(static_cast<char>(0x84 | rd));
  out.push_back(static_cast<char>(0x80 | (exists ? 0 : 3)));
  Put16(&out, 1);
  Put16(&out, static_cast<uint16_t>(rdata.size()));
  Put16(&out, 0);
  Put16(&out, 0);
  out.append(query, 12, q.end - 12);
  for (const std::string& r : rdata) {
    Put16(&out, 0xc00c);  // the question's name
    Put16(&out, q.type);
    Put16(&out, 1);
    Put32(&out, kTtl);
    Put16(&out, static_cast<uint16_t>(r.size()));
    out += r;
  }
  return out;
}

struct DnsServer::Pending {
  uint16_t client_id;
  sockaddr_storage from;
  socklen_t from_len;
  std::chrono::steady_clock::time_point deadline;
};

DnsServer::DnsServer(std::vector<std::string> upstreams, int upstream_port)
    : upstreams_(std::move(upstreams)), upstream_port_(upstream_port) {}

DnsServer::~DnsServer() { Stop(); }

Status DnsServer::Start(const std::string& address, int port) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss); ::inet_pton(AF_INET, address.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
             ::inet_pton(AF_INET6, address.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
  } else {
    return InvalidArgument("dns server: \"" + address + "\" is not an IP address");
  }
  fd_ = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return ErrnoStatus("dns server: socket", errno);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
  if (family == AF_INET6) ::setsockopt(fd_, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    Status s = ErrnoStatus("dns server: bind " + address + ":" + std::to_string(port), errno);
    Stop();
    return s;
  }
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                  : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  upstream_fd_ = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int zero = 0;
  if (upstream_fd_ >= 0) ::setsockopt(upstream_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (upstream_fd_ < 0 || ::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    Status s = ErrnoStatus("dns server: socket", errno);
    Stop();
    return s;
  }
  thread_ = std::thread([this] { Serve(); });
  return Status::Ok();
}

void DnsServer::Stop() {
  if (thread_.joinable()) {
    char c = 1;
    (void)!::write(stop_pipe_[1], &c, 1);
    thread_.join();
  }
  for (int* fd : {&fd_, &upstream_fd_, &stop_pipe_[0], &stop_pipe_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void DnsServer::SetNames(std::map<std::string, std::vector<std::string>> names) {
  std::lock_guard<std::mutex> l(mu_);
  names_ = std::move(names);
}

void DnsServer::Serve() {
  std::map<uint16_t, Pending> pending;
  const std::string suffix = std::string(".") + kClusterDomain;
  char buf[4096];
  for (;;) {
    pollfd fds[3] = {{fd_, POLLIN, 0}, {upstream_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int n = ::poll(fds, 3, 500);
    if (n < 0 && errno != EINTR) return;
    if (fds[2].revents) return;
    auto now = std::chrono::steady_clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      it = it->second.deadline < now ? pending.erase(it) : std::next(it);
    }
    if (fds[0].revents & POLLIN) {
      Pending p{};
      p.from_len = sizeof p.from;
      ssize_t got = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&p.from), &p.from_len);
      if (got > 0) {
        std::string packet(buf, static_cast<size_t>(got));
        auto q = ParseDnsQuery(packet);
        if (q.ok() && (q->name == kClusterDomain || q->name.ends_with(suffix))) {
          std::vector<std::string> ips;
          bool exists;
          {
            std::lock_guard<std::mutex> l(mu_);
            auto it = names_.find(q->name);
            exists = it != names_.end();
            if (exists) ips = it->second;
          }
          std::string answer = BuildDnsAnswer(packet, *q, ips, exists);
          ::sendto(fd_, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&p.from), p.from_len);
        } else if (q.ok() && !upstreams_.empty() && packet.size() >= 2) {
          // Relay under an id of ours; the answer goes back under theirs.
          uint16_t id = next_id_++;
          if (next_id_ == 0) next_id_ = 1;
          p.client_id = q->id;
          p.deadline = now + kRelayTimeout;
          pending[id] = p;
          packet[0] = static_cast<char>(id >> 8);
          packet[1] = static_cast<char>(id & 0xff);
          for (const std::string& up : upstreams_) {
            sockaddr_in6 a;
            if (!UpstreamAddress(up, upstream_port_, &a)) continue;
            ::sendto(upstream_fd_, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
            break;  // the first usable one; the client retries on silence
          }
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      ssize_t got = ::recv(upstream_fd_, buf, sizeof buf, 0);
      if (got >= 12) {
        std::string packet(buf, static_cast<size_t>(got));
        auto it = pending.find(Get16(packet, 0));
        if (it != pending.end()) {
          packet[0] = static_cast<char>(it->second.client_id >> 8);
          packet[1] = static_cast<char>(it->second.client_id & 0xff);
          ::sendto(fd_, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&it->second.from),
                   it->second.from_len);
          pending.erase(it);
        }
      }
    }
  }
}

}  // namespace sbx::daemon
