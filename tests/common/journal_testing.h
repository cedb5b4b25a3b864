// Test helpers for the systemd datagram protocols: what a datagram socket
// received, and the journal's native protocol parsed independently of the
// code under test.
#ifndef SBX_TESTS_COMMON_JOURNAL_TESTING_H_
#define SBX_TESTS_COMMON_JOURNAL_TESTING_H_

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fs.h"

namespace sbx::systemd_testing {

// What a datagram socket received: the payload, or for a datagram carrying
// an fd (a journal memfd), the fd's contents.
inline std::optional<std::string> Receive(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return std::nullopt;
  std::string buf(8 << 20, '\0');
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg != nullptr && cmsg->cmsg_type == SCM_RIGHTS) {
    int passed;
    std::memcpy(&passed, CMSG_DATA(cmsg), sizeof(int));
    UniqueFd mem(passed);
    struct stat st;
    if (fstat(mem.get(), &st) != 0) return std::nullopt;
    std::string data(static_cast<size_t>(st.st_size), '\0');
    if (pread(mem.get(), data.data(), data.size(), 0) != st.st_size) return std::nullopt;
    return data;
  }
  return buf;
}

// Parses the journal's native protocol independently of the code under test.
inline std::optional<std::vector<std::pair<std::string, std::string>>> ParseJournal(
    std::string_view d) {
  std::vector<std::pair<std::string, std::string>> fields;
  while (!d.empty()) {
    size_t end = d.find_first_of("=\n");
    if (end == std::string_view::npos) return std::nullopt;
    std::string name(d.substr(0, end));
    if (d[end] == '=') {
      size_t nl = d.find('\n', end);
      if (nl == std::string_view::npos) return std::nullopt;
      fields.emplace_back(name, std::string(d.substr(end + 1, nl - end - 1)));
      d.remove_prefix(nl + 1);
      continue;
    }
    d.remove_prefix(end + 1);
    if (d.size() < 8) return std::nullopt;
    uint64_t size = 0;
    for (int i = 0; i < 8; ++i) size |= uint64_t{static_cast<unsigned char>(d[i])} << (8 * i);
    d.remove_prefix(8);
    if (d.size() < size + 1 || d[size] != '\n') return std::nullopt;
    fields.emplace_back(name, std::string(d.substr(0, size)));
    d.remove_prefix(size + 1);
  }
  return fields;
}

}  // namespace sbx::systemd_testing

#endif  // SBX_TESTS_COMMON_JOURNAL_TESTING_H_
