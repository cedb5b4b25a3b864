// sbx port-forward NAME [LOCAL:]REMOTE...
//
// Listens on local ports and carries each accepted connection to the
// sandbox's port over its own upgraded API connection (daemon/port_forward.h
// has the frames), until interrupted. A thread per connection pumps both
// directions with blocking I/O, so a slow side holds the other back.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "common/frames.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

struct Forward {
  int local = 0;  // 0: any free port
  int remote = 0;
};

Result<Forward> ParseForward(const std::string& spec) {
  auto port = [&](const std::string& text, bool zero_ok) -> Result<int> {
    if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("\"" + spec + "\": \"" + text + "\" is not a port number");
    }
    int p = std::atoi(text.c_str());
    if (p > 65535 || (p == 0 && !zero_ok)) {
      return InvalidArgument("\"" + spec + "\": port " + text + " is out of range (1-65535)");
    }
    return p;
  };
  Forward f;
  auto colon = spec.find(':');
  if (colon == std::string::npos) {
    SBX_ASSIGN_OR_RETURN(f.remote, port(spec, false));
    f.local = f.remote;
    return f;
  }
  std::string local = spec.substr(0, colon);
  SBX_ASSIGN_OR_RETURN(f.remote, port(spec.substr(colon + 1), false));
  if (local.empty()) {
    f.local = 0;
  } else {
    SBX_ASSIGN_OR_RETURN(f.local, port(local, true));
  }
  return f;
}

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int) {
  char c = 1;
  (void)!::write(g_signal_pipe[1], &c, 1);
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::mutex g_print_mu;

void Say(std::ostream& os, const std::string& line) {
  std::lock_guard<std::mutex> l(g_print_mu);
  os << line << std::endl;
}

// One forwarded connection: `local` is the accepted socket (owned).
void Pump(std::string socket_path, HttpRequest request, int local, std::ostream* err) {
  Client client(socket_path);
  auto stream = client.Upgrade(std::move(request), frames::kUpgradeProtocol);
  if (!stream.ok()) {
    Say(*err, "error: " + stream.status().message());
    ::close(local);
    return;
  }
  int sock = stream->fd.get();
  frames::Decoder decoder;
  decoder.Feed(stream->leftover);
  bool local_open = true;    // still reading from the local client
  bool remote_open = true;   // the sandbox has not finished sending
  char buf[64 * 1024];
  for (;;) {
    bool bad = false;
    while (auto f = decoder.Next(&bad)) {
      if (f->channel == frames::kStdout) {
        if (f->payload.empty()) {
          remote_open = false;
          ::shutdown(local, SHUT_WR);
        } else if (!SendAll(local, f->payload)) {
          local_open = false;  // the local client went away
          ::close(local);
          return;
        }
      } else if (f->channel == frames::kStatus) {
        Json j = Json::parse(f->payload, nullptr, false);
        std::string why = j.is_object() ? j.value("error", f->payload) : f->payload;
        Say(*err, "error: forwarding to the sandbox: " + why);
        ::close(local);
        return;
      }
    }
    if (bad) {
      Say(*err, "error: the server sent an oversized frame");
      break;
    }
    pollfd fds[2] = {{sock, POLLIN, 0}, {local, POLLIN, 0}};
    int r = ::poll(fds, local_open ? 2 : 1, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) {
      ssize_t n = ::recv(sock, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the server closed: both directions are done
      decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
    if (local_open && fds[1].revents) {
      ssize_t n = ::recv(local, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        if (!SendAll(sock, frames::Encode(frames::kStdin, std::string_view(buf, static_cast<size_t>(n))))) break;
      } else {
        local_open = false;
        if (!SendAll(sock, frames::Encode(frames::kStdin, ""))) break;
      }
    }
  }
  (void)remote_open;
  ::close(local);
}

int RunPortForwardVerb(Invocation& inv) {
  const std::vector<std::string>& args = inv.flags.args;
  if (args.size() < 2) return inv.Fail("expected 'port-forward NAME [LOCAL:]REMOTE...'.");
  std::optional<std::string> target = inv.SandboxTarget(args.front(), "port-forward");
  if (!target) return 1;
  std::vector<Forward> forwards;
  for (size_t i = 1; i < args.size(); ++i) {
    auto f = ParseForward(args[i]);
    if (!f.ok()) return inv.Fail(f.status().message());
    forwards.push_back(*f);
  }
  const std::string address = inv.flags.String("address").empty() ? "127.0.0.1" : inv.flags.String("address");
  sockaddr_storage ss{};
  socklen_t ss_len = 0;
  int family = AF_INET;
  if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss); ::inet_pton(AF_INET, address.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    ss_len = sizeof(sockaddr_in);
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
             ::inet_pton(AF_INET6, address.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    family = AF_INET6;
    ss_len = sizeof(sockaddr_in6);
  } else {
    return inv.Fail("--address: \"" + address + "\" is not an IP address");
  }
  // The sandbox must exist (and the server answer) before anything listens.
  auto sb = inv.client.Get(*api::FindKind("sandboxes"), inv.ns, *target);
  if (!sb.ok()) return inv.FailRequest(sb.status());

  std::vector<pollfd> listeners;
  std::vector<Forward> bound;
  for (const Forward& f : forwards) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage a = ss;
    if (family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&a)->sin_port = htons(static_cast<uint16_t>(f.local));
    } else {
      reinterpret_cast<sockaddr_in6*>(&a)->sin6_port = htons(static_cast<uint16_t>(f.local));
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), ss_len) != 0 || ::listen(fd, 128) != 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      return inv.Fail("unable to listen on port " + std::to_string(f.local) + ": " + why);
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    Forward b = f;
    b.local = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&a)->sin_port
                                      : reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
    listeners.push_back({fd, POLLIN, 0});
    bound.push_back(b);
    std::string shown = family == AF_INET6 ? "[" + address + "]" : address;
    Say(inv.out(), "Forwarding from " + shown + ":" + std::to_string(b.local) + " -> " + std::to_string(b.remote));
  }

  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) return inv.Fail(std::string("pipe: ") + std::strerror(errno));
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  listeners.push_back({g_signal_pipe[0], POLLIN, 0});

  for (;;) {
    int r = ::poll(listeners.data(), listeners.size(), -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return inv.Fail(std::string("poll: ") + std::strerror(errno));
    }
    if (listeners.back().revents) break;  // interrupted
    for (size_t i = 0; i + 1 < listeners.size(); ++i) {
      if (!listeners[i].revents) continue;
      int c = ::accept4(listeners[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Say(inv.out(), "Handling connection for " + std::to_string(bound[i].local));
      HttpRequest request;
      request.method = "POST";
      request.target = ResourcePath(*api::FindKind("sandboxes"), inv.ns, *target, "portforward") +
                       QueryString({{"port", std::to_string(bound[i].remote)}});
      std::thread(Pump, inv.socket, std::move(request), c, &inv.err()).detach();
    }
  }
  return 0;
}

}  // namespace

Verb PortForwardVerb() {
  return Verb{
      "port-forward",
      "Forward local ports to a sandbox",
      R"(Listen on local ports and forward each connection to a port of a running
sandbox, through the daemon's API socket, until interrupted. The sandbox
needs its own network (annotation sbx.dev/network: sandbox). Many
connections may be open at once; each gets its own stream.

[LOCAL:]REMOTE: the same port on both sides ("8080"), a different local port
("9000:80"), or any free local port (":80"; the chosen port is printed).
sandboxclaim/NAME forwards to the sandbox bound to that claim.

Examples:
  # Reach port 3001 of a sandbox on localhost:3001
  sbx port-forward my-sandbox 3001

  # Two ports, one on a free local port
  sbx port-forward my-sandbox 8080:80 :8888

Usage:
  sbx port-forward NAME [LOCAL:]REMOTE [...] [options]
)",
      {{"address", 0, FlagType::kString, "127.0.0.1", "The local address to listen on."}},
      RunPortForwardVerb};
}

}  // namespace sbx::cli
