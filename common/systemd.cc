#include "common/systemd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/fs.h"

namespace sbx::systemd {
namespace {

// The whole of `text` as an unsigned decimal number.
bool ParseUnsigned(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::optional<std::string_view> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string_view(v);
}

// A datagram address for a path, or an abstract name after '@'.
Result<std::pair<sockaddr_un, socklen_t>> UnixAddress(std::string_view name) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  bool abstract = !name.empty() && name[0] == '@';
  if (name.empty() || (!abstract && name[0] != '/')) {
    return InvalidArgument("socket address must be an absolute path or start with '@': \"" +
                           std::string(name) + "\"");
  }
  if (name.size() > sizeof(addr.sun_path) - (abstract ? 0 : 1)) {
    return InvalidArgument("socket address longer than " +
                           std::to_string(sizeof(addr.sun_path) - 1) +
                           " bytes: " + std::string(name));
  }
  std::memcpy(addr.sun_path, name.data(), name.size());
  // Abstract names are not NUL-terminated: the length is part of the name.
  if (abstract) addr.sun_path[0] = '\0';
  socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));
  return std::make_pair(addr, len);
}

// No listener is the environment's state, not a bug: Unavailable.
Status SendErrno(std::string_view context, int err) {
  if (err == ENOENT || err == ECONNREFUSED || err == EAGAIN) {
    return Unavailable(std::string(context) + ": " + std::strerror(err));
  }
  return ErrnoStatus(context, err);
}

Status SendDatagram(const std::string& address, std::string_view payload, std::string_view what) {
  SBX_ASSIGN_OR_RETURN(auto addr, UnixAddress(address));
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(std::string(what) + ": socket", errno);
  ssize_t n = sendto(fd.get(), payload.data(), payload.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr.first), addr.second);
  if (n < 0) return SendErrno(std::string(what) + ": send to " + address, errno);
  return Status::Ok();
}

// For an entry too large for one datagram: journald accepts a sealed memfd
// holding it, passed with SCM_RIGHTS and an empty payload.
Status SendJournalMemfd(int sock, const std::pair<sockaddr_un, socklen_t>& addr,
                        std::string_view entry, const std::string& socket_path) {
  UniqueFd mem(memfd_create("sbx-journal-entry", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem.valid()) return ErrnoStatus("journal: memfd_create", errno);
  size_t off = 0;
  while (off < entry.size()) {
    ssize_t n = write(mem.get(), entry.data() + off, entry.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("journal: write memfd", errno);
    off += static_cast<size_t>(n);
  }
  if (fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) !=
      0) {
    return ErrnoStatus("journal: seal memfd", errno);
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_un*>(&addr.first);
  msg.msg_namelen = addr.second;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  int memfd = mem.get();
  std::memcpy(CMSG_DATA(cmsg), &memfd, sizeof(int));
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    return SendErrno("journal: send memfd to " + socket_path, errno);
  }
  return Status::Ok();
}

bool IsListeningUnixStream(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || addr.ss_family != AF_UNIX) {
    return false;
  }
  int value = 0;
  len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0 || value != SOCK_STREAM) {
    return false;
  }
  len = sizeof(value);
  return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) == 0 && value != 0;
}

void AppendLittleEndian64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

bool NotifyEnabled() {
  auto socket = Env("NOTIFY_SOCKET");
  return socket && !socket->empty();
}

Status Notify(std::string_view state) {
  auto socket = Env("NOTIFY_SOCKET");
  if (!socket || socket->empty()) return Status::Ok();
  return SendDatagram(std::string(*socket), state, "sd_notify");
}

std::optional<std::chrono::microseconds> WatchdogInterval() {
  auto usec_text = Env("WATCHDOG_USEC");
  uint64_t usec = 0;
  if (!usec_text || !ParseUnsigned(*usec_text, &usec) || usec == 0 ||
      usec > static_cast<uint64_t>(std::chrono::microseconds::max().count())) {
    return std::nullopt;
  }
  // Without WATCHDOG_PID the watchdog is ours; with it, only if it names us
  // (a forking parent may have passed its environment on).
  if (auto pid_text = Env("WATCHDOG_PID")) {
    uint64_t pid = 0;
    if (!ParseUnsigned(*pid_text, &pid) || pid != static_cast<uint64_t>(getpid())) {
      return std::nullopt;
    }
  }
  return std::chrono::microseconds(static_cast<int64_t>(usec));
}

Result<std::vector<int>> ListenFds(bool unset_env) {
  auto listen = [&]() -> Result<std::vector<int>> {
    auto pid_text = Env("LISTEN_PID");
    if (!pid_text) return std::vector<int>{};
    uint64_t pid = 0;
    if (!ParseUnsigned(*pid_text, &pid)) {
      return InvalidArgument("socket activation: LISTEN_PID is not a process id: \"" +
                             std::string(*pid_text) + "\"");
    }
    if (pid != static_cast<uint64_t>(getpid())) return std::vector<int>{};
    auto fds_text = Env("LISTEN_FDS");
    if (!fds_text) return std::vector<int>{};
    uint64_t count = 0;
    constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
    if (!ParseUnsigned(*fds_text, &count) || count > 65536) {
      return InvalidArgument("socket activation: LISTEN_FDS is not a count of fds: \"" +
                             std::string(*fds_text) + "\"");
    }
    std::vector<int> fds;
    for (int fd = kFirstFd; fd < kFirstFd + static_cast<int>(count); ++fd) {
      int flags = fcntl(fd, F_GETFD);
      if (flags < 0) {
        return FailedPrecondition("socket activation: LISTEN_FDS=" + std::to_string(count) +
                                  " but fd " + std::to_string(fd) + " is not open");
      }
      if (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
        return ErrnoStatus("socket activation: set FD_CLOEXEC on fd " + std::to_string(fd), errno);
      }
      fds.push_back(fd);
    }
    return fds;
  };
  Result<std::vector<int>> result = listen();
  if (unset_env) {
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
  }
  return result;
}

Result<int> ListenUnixStreamFd(const std::vector<int>& fds) {
  if (fds.size() != 1) {
    return FailedPrecondition("socket activation: expected 1 socket, got " +
                              std::to_string(fds.size()));
  }
  if (!IsListeningUnixStream(fds[0])) {
    return FailedPrecondition("socket activation: fd " + std::to_string(fds[0]) +
                              " is not a listening Unix stream socket");
  }
  return fds[0];
}

bool StderrIsJournal() {
  auto text = Env("JOURNAL_STREAM");
  if (!text) return false;
  size_t colon = text->find(':');
  uint64_t dev = 0;
  uint64_t ino = 0;
  if (colon == std::string_view::npos || !ParseUnsigned(text->substr(0, colon), &dev) ||
      !ParseUnsigned(text->substr(colon + 1), &ino)) {
    return false;
  }
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_dev) == dev && static_cast<uint64_t>(st.st_ino) == ino;
}

bool IsValidJournalFieldName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (name[0] == '_' || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

Result<std::string> SerializeJournalEntry(const JournalFields& fields) {
  if (fields.empty()) return InvalidArgument("journal entry has no fields");
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!IsValidJournalFieldName(name)) {
      return InvalidArgument("journal field name \"" + name +
                             "\": must be 1 to 64 of [A-Z0-9_], not starting with a digit or '_'");
    }
    out += name;
    if (value.find('\n') == std::string::npos) {
      out += '=';
      out += value;
    } else {
      out += '\n';
      AppendLittleEndian64(value.size(), &out);
      out += value;
    }
    out += '\n';
  }
  return out;
}

Status JournalSend(const JournalFields& fields, const std::string& socket_path) {
  SBX_ASSIGN_OR_RETURN(std::string entry, SerializeJournalEntry(fields));
  SBX_ASSIGN_OR_RETURN(auto addr, UnixAddress(socket_path));
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("journal: socket", errno);
  if (sendto(fd.get(), entry.data(), entry.size(), MSG_NOSIGNAL,
             reinterpret_cast<const sockaddr*>(&addr.first), addr.second) >= 0) {
    return Status::Ok();
  }
  int err = errno;
  if (err != EMSGSIZE && err != ENOBUFS) {
    return SendErrno("journal: send to " + socket_path, err);
  }
  return SendJournalMemfd(fd.get(), addr, entry, socket_path);
}

}  // namespace sbx::systemd
