#include "cli/prompt.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iterator>

#include "common/strings.h"

namespace sbx::cli {
namespace {

constexpr int kRestoreSignals[] = {SIGINT, SIGTERM, SIGHUP};

// What the signal handler puts back: set only while a ScopedEchoOff is
// active (the CLI is single-threaded, so one at a time).
volatile sig_atomic_t g_restore_fd = -1;
termios g_restore_settings;

void RestoreTerminalAndReraise(int sig) {
  if (g_restore_fd >= 0) ::tcsetattr(g_restore_fd, TCSANOW, &g_restore_settings);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Turns a terminal's echo off (the newline is still echoed, so the cursor
// moves on after the answer) until destroyed.
class ScopedEchoOff {
 public:
  explicit ScopedEchoOff(int fd) : fd_(fd) {}
  ScopedEchoOff(const ScopedEchoOff&) = delete;
  ScopedEchoOff& operator=(const ScopedEchoOff&) = delete;

  Status Enable() {
    if (::tcgetattr(fd_, &saved_) != 0) return ErrnoStatus("read terminal settings", errno);
    g_restore_settings = saved_;
    g_restore_fd = fd_;
    struct sigaction sa {};
    sa.sa_handler = &RestoreTerminalAndReraise;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kRestoreSignals); ++i) {
      ::sigaction(kRestoreSignals[i], &sa, &previous_[i]);
    }
    enabled_ = true;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    if (::tcsetattr(fd_, TCSAFLUSH, &quiet) != 0) return ErrnoStatus("turn echo off", errno);
    return Status::Ok();
  }

  ~ScopedEchoOff() {
    if (!enabled_) return;
    ::tcsetattr(fd_, TCSAFLUSH, &saved_);
    g_restore_fd = -1;
    for (size_t i = 0; i < std::size(kRestoreSignals); ++i) {
      ::sigaction(kRestoreSignals[i], &previous_[i], nullptr);
    }
  }

 private:
  int fd_;
  bool enabled_ = false;
  termios saved_{};
  struct sigaction previous_[std::size(kRestoreSignals)] = {};
};

}  // namespace

bool IsTerminal(int fd) { return fd >= 0 && ::isatty(fd) == 1; }

Result<std::optional<std::string>> ReadLine(int fd) {
  std::string line;
  bool any = false;
  for (;;) {
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read standard input", errno);
    }
    if (n == 0) break;
    any = true;
    if (c == '\n') break;
    line.push_back(c);
  }
  if (!any) return std::optional<std::string>();
  if (line.ends_with('\r')) line.pop_back();
  return std::optional<std::string>(std::move(line));
}

Result<std::string> ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read standard input", errno);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<std::optional<std::string>> ReadSecretLine(int fd) {
  ScopedEchoOff echo_off(fd);
  SBX_RETURN_IF_ERROR(echo_off.Enable());
  return ReadLine(fd);
}

bool IsYes(std::string_view answer) {
  std::string a = ToLower(Trim(answer));
  return a == "y" || a == "yes";
}

}  // namespace sbx::cli
