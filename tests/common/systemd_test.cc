#include "common/systemd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/common/journal_testing.h"

namespace sbx::systemd {
namespace {

using std::chrono::microseconds;

// Sets (or, with nullopt, unsets) environment variables and restores their
// previous values when it goes out of scope.
class ScopedEnv {
 public:
  ScopedEnv() = default;
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        unsetenv(it->first.c_str());
      }
    }
  }
  void Set(const std::string& name, std::optional<std::string> value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (value) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Frees fds 3 and 4 for a test that plays systemd (gtest or ctest may have
// them open) and puts back what was there afterwards.
class ReservedFds {
 public:
  ReservedFds() {
    for (int fd : {3, 4}) {
      int saved = fcntl(fd, F_DUPFD_CLOEXEC, 100);
      saved_.emplace_back(fd, saved);
      if (saved >= 0) close(fd);
    }
  }
  ~ReservedFds() {
    for (auto [fd, saved] : saved_) {
      if (saved >= 0) {
        dup2(saved, fd);
        close(saved);
      } else {
        close(fd);
      }
    }
  }

 private:
  std::vector<std::pair<int, int>> saved_;
};

// Moves `fd` to `target` without FD_CLOEXEC, as systemd passes it.
void MoveFdTo(int fd, int target) {
  ASSERT_GE(fd, 0) << std::strerror(errno);
  if (fd != target) {
    ASSERT_EQ(dup2(fd, target), target) << std::strerror(errno);
    close(fd);
  }
  ASSERT_EQ(fcntl(target, F_SETFD, 0), 0);
}

bool FdIsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }

std::pair<sockaddr_un, socklen_t> Address(const std::string& name) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, name.data(), name.size());
  bool abstract = name[0] == '@';
  if (abstract) addr.sun_path[0] = '\0';
  return {addr, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                       (abstract ? 0 : 1))};
}

// A socket of `type` bound to `name` (path or '@' abstract name), at fd 50
// or above so that it never lands on a reserved fd by chance.
int BoundSocket(int type, const std::string& name) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  auto [addr, len] = Address(name);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    ADD_FAILURE() << "bind " << name << ": " << std::strerror(errno);
  }
  int high = fcntl(fd, F_DUPFD_CLOEXEC, 50);
  close(fd);
  return high;
}

using ::sbx::systemd_testing::ParseJournal;
using ::sbx::systemd_testing::Receive;

class SystemdTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-sd-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID",
                             "LISTEN_FDS", "LISTEN_FDNAMES", "JOURNAL_STREAM"}) {
      env_.Set(name, std::nullopt);
    }
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  std::string dir_;
  ScopedEnv env_;
};

// ---- sd_notify ----

TEST_F(SystemdTest, NotifySendsStateToPathSocket) {
  UniqueFd receiver(BoundSocket(SOCK_DGRAM, dir_ + "/notify"));
  env_.Set("NOTIFY_SOCKET", dir_ + "/notify");
  EXPECT_TRUE(NotifyEnabled());
  Status st = Notify("READY=1\nSTATUS=serving on /run/sbxd.sock");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Receive(receiver.get()), "READY=1\nSTATUS=serving on /run/sbxd.sock");
}

TEST_F(SystemdTest, NotifySendsStateToAbstractSocket) {
  std::string name = "@sbx-sd-test-" + std::to_string(getpid()) + dir_.substr(dir_.size() - 6);
  UniqueFd receiver(BoundSocket(SOCK_DGRAM, name));
  env_.Set("NOTIFY_SOCKET", name);
  Status st = Notify("WATCHDOG=1");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Receive(receiver.get()), "WATCHDOG=1");
}

TEST_F(SystemdTest, NotifyWithoutSocketIsOkAndSendsNothing) {
  EXPECT_FALSE(NotifyEnabled());
  EXPECT_TRUE(Notify("READY=1").ok());
  env_.Set("NOTIFY_SOCKET", "");
  EXPECT_FALSE(NotifyEnabled());
  EXPECT_TRUE(Notify("READY=1").ok());
}

TEST_F(SystemdTest, NotifyReportsAMissingOrMalformedSocket) {
  env_.Set("NOTIFY_SOCKET", dir_ + "/absent");
  Status missing = Notify("READY=1");
  EXPECT_EQ(missing.code(), Code::kUnavailable) << missing.ToString();
  EXPECT_NE(missing.message().find(dir_ + "/absent"), std::string::npos) << missing.ToString();

  env_.Set("NOTIFY_SOCKET", "relative/notify");
  EXPECT_EQ(Notify("READY=1").code(), Code::kInvalidArgument);
  env_.Set("NOTIFY_SOCKET", "/" + std::string(200, 'x'));
  EXPECT_EQ(Notify("READY=1").code(), Code::kInvalidArgument);
}

// ---- watchdog ----

TEST_F(SystemdTest, WatchdogIntervalHonoursUsecAndPid) {
  std::string self = std::to_string(getpid());
  std::string other = std::to_string(getpid() + 1);
  struct Case {
    std::optional<std::string> usec, pid;
    std::optional<microseconds> want;
  } cases[] = {
      {std::nullopt, std::nullopt, std::nullopt},
      {"30000000", std::nullopt, microseconds(30000000)},
      {"30000000", self, microseconds(30000000)},
      {"1", self, microseconds(1)},
      {"30000000", other, std::nullopt},
      {"30000000", "", std::nullopt},
      {"30000000", "pid", std::nullopt},
      {"0", std::nullopt, std::nullopt},
      {"", std::nullopt, std::nullopt},
      {"-5", std::nullopt, std::nullopt},
      {"30s", std::nullopt, std::nullopt},
      {" 30", std::nullopt, std::nullopt},
      {"99999999999999999999999", std::nullopt, std::nullopt},
  };
  for (const auto& c : cases) {
    env_.Set("WATCHDOG_USEC", c.usec);
    env_.Set("WATCHDOG_PID", c.pid);
    EXPECT_EQ(WatchdogInterval(), c.want) << "WATCHDOG_USEC=" << c.usec.value_or("(unset)")
                                          << " WATCHDOG_PID=" << c.pid.value_or("(unset)");
  }
}

// ---- socket activation ----

TEST_F(SystemdTest, ListenFdsWithoutActivationIsEmpty) {
  auto fds = ListenFds(false);
  ASSERT_TRUE(fds.ok()) << fds.status().ToString();
  EXPECT_TRUE(fds->empty());
}

TEST_F(SystemdTest, ListenFdsForAnotherProcessAreIgnoredAndUnset) {
  ReservedFds reserved;
  MoveFdTo(BoundSocket(SOCK_STREAM, dir_ + "/api.sock"), 3);
  env_.Set("LISTEN_PID", std::to_string(getpid() + 1));
  env_.Set("LISTEN_FDS", "1");
  env_.Set("LISTEN_FDNAMES", "api");
  auto fds = ListenFds(true);
  ASSERT_TRUE(fds.ok()) << fds.status().ToString();
  EXPECT_TRUE(fds->empty());
  EXPECT_EQ(fcntl(3, F_GETFD) & FD_CLOEXEC, 0) << "an fd that is not ours was touched";
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDNAMES"), nullptr);
}

TEST_F(SystemdTest, ListenFdsReturnsPassedSocketsWithCloexec) {
  ReservedFds reserved;
  MoveFdTo(BoundSocket(SOCK_STREAM, dir_ + "/a.sock"), 3);
  MoveFdTo(BoundSocket(SOCK_STREAM, dir_ + "/b.sock"), 4);
  env_.Set("LISTEN_PID", std::to_string(getpid()));
  env_.Set("LISTEN_FDS", "2");
  env_.Set("LISTEN_FDNAMES", "a:b");

  auto kept = ListenFds(false);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(*kept, (std::vector<int>{3, 4}));
  EXPECT_NE(std::getenv("LISTEN_FDS"), nullptr) << "unset_env=false keeps the variables";

  auto fds = ListenFds(true);
  ASSERT_TRUE(fds.ok()) << fds.status().ToString();
  EXPECT_EQ(*fds, (std::vector<int>{3, 4}));
  EXPECT_NE(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_NE(fcntl(4, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDNAMES"), nullptr);
}

TEST_F(SystemdTest, ListenFdsRejectsMalformedVariablesAndClosedFds) {
  ReservedFds reserved;
  struct Case {
    std::string pid, fds;
    Code want;
    std::string mentions;
  } cases[] = {
      {"me", "1", Code::kInvalidArgument, "LISTEN_PID"},
      {std::to_string(getpid()), "one", Code::kInvalidArgument, "LISTEN_FDS"},
      {std::to_string(getpid()), "-1", Code::kInvalidArgument, "LISTEN_FDS"},
      {std::to_string(getpid()), "1", Code::kFailedPrecondition, "fd 3 is not open"},
  };
  for (const auto& c : cases) {
    env_.Set("LISTEN_PID", c.pid);
    env_.Set("LISTEN_FDS", c.fds);
    auto fds = ListenFds(true);
    ASSERT_FALSE(fds.ok()) << c.pid << " " << c.fds;
    EXPECT_EQ(fds.status().code(), c.want) << fds.status().ToString();
    EXPECT_NE(fds.status().message().find(c.mentions), std::string::npos)
        << fds.status().ToString();
    EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr) << "unset on failure too";
  }
}

TEST_F(SystemdTest, ListenUnixStreamFdTakesAListeningUnixSocket) {
  ReservedFds reserved;
  std::string path = dir_ + "/api.sock";
  int s = BoundSocket(SOCK_STREAM, path);
  ASSERT_EQ(listen(s, 8), 0);
  MoveFdTo(s, 3);
  env_.Set("LISTEN_PID", std::to_string(getpid()));
  env_.Set("LISTEN_FDS", "1");

  auto fds = ListenFds(true);
  ASSERT_TRUE(fds.ok()) << fds.status().ToString();
  auto fd = ListenUnixStreamFd(*fds);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  EXPECT_EQ(*fd, 3);
  EXPECT_NE(fcntl(3, F_GETFD) & FD_CLOEXEC, 0);

  // It is the socket bound at `path`: a client connects through it.
  UniqueFd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto [addr, len] = Address(path);
  EXPECT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&addr), len), 0)
      << std::strerror(errno);
}

TEST_F(SystemdTest, ListenUnixStreamFdRefusesOtherKindsOfFd) {
  struct Case {
    const char* what;
    std::function<int()> make;
  } cases[] = {
      {"regular file",
       [&] { return open((dir_ + "/file").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); }},
      {"bound, not listening", [&] { return BoundSocket(SOCK_STREAM, dir_ + "/idle.sock"); }},
      {"datagram", [&] { return BoundSocket(SOCK_DGRAM, dir_ + "/dgram.sock"); }},
      {"seqpacket, listening",
       [&] {
         int fd = BoundSocket(SOCK_SEQPACKET, dir_ + "/seq.sock");
         EXPECT_EQ(listen(fd, 8), 0);
         return fd;
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    ReservedFds reserved;
    (void)RemoveAll(dir_);
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    MoveFdTo(c.make(), 3);
    auto fd = ListenUnixStreamFd({3});
    ASSERT_FALSE(fd.ok());
    EXPECT_EQ(fd.status().code(), Code::kFailedPrecondition);
    EXPECT_EQ(fd.status().message(),
              "socket activation: fd 3 is not a listening Unix stream socket");
    EXPECT_TRUE(FdIsOpen(3)) << "the fd stays the caller's";
  }
}

TEST_F(SystemdTest, ListenUnixStreamFdRefusesMoreThanOneSocket) {
  ReservedFds reserved;
  int a = BoundSocket(SOCK_STREAM, dir_ + "/a.sock");
  int b = BoundSocket(SOCK_STREAM, dir_ + "/b.sock");
  ASSERT_EQ(listen(a, 8), 0);
  ASSERT_EQ(listen(b, 8), 0);
  MoveFdTo(a, 3);
  MoveFdTo(b, 4);
  auto fd = ListenUnixStreamFd({3, 4});
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(fd.status().message(), "socket activation: expected 1 socket, got 2");
  EXPECT_EQ(ListenUnixStreamFd({}).status().message(),
            "socket activation: expected 1 socket, got 0");
}

// ---- journal ----

TEST_F(SystemdTest, StderrIsJournalComparesDeviceAndInode) {
  struct stat st;
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  std::string dev = std::to_string(st.st_dev);
  std::string ino = std::to_string(st.st_ino);
  EXPECT_FALSE(StderrIsJournal());
  env_.Set("JOURNAL_STREAM", dev + ":" + ino);
  EXPECT_TRUE(StderrIsJournal());
  for (const std::string& other :
       {dev + ":" + std::to_string(st.st_ino + 1), std::to_string(st.st_dev + 1) + ":" + ino,
        dev + ino, dev + ":", ":" + ino, dev + ":" + ino + "x", std::string()}) {
    env_.Set("JOURNAL_STREAM", other);
    EXPECT_FALSE(StderrIsJournal()) << other;
  }
}

TEST_F(SystemdTest, JournalSendUsesPlainAndBinaryFields) {
  std::string path = dir_ + "/journal";
  UniqueFd receiver(BoundSocket(SOCK_DGRAM, path));
  JournalFields fields = {{"MESSAGE", "runsc exited"},
                          {"SBX_STDERR", "line one\nline two"},
                          {"PRIORITY", "4"},
                          {"SBX_EMPTY", ""}};
  Status st = JournalSend(fields, path);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = Receive(receiver.get());
  ASSERT_TRUE(got);
  std::string want = "MESSAGE=runsc exited\nSBX_STDERR\n";
  want += std::string("\x11\0\0\0\0\0\0\0", 8);
  want += "line one\nline two\nPRIORITY=4\nSBX_EMPTY=\n";
  EXPECT_EQ(*got, want);
  EXPECT_EQ(ParseJournal(*got), fields);
}

TEST_F(SystemdTest, JournalSendPassesLargeEntriesWhole) {
  std::string path = dir_ + "/journal";
  UniqueFd receiver(BoundSocket(SOCK_DGRAM, path));
  std::string big(1 << 20, 'x');
  big[1000] = '\n';
  JournalFields fields = {{"MESSAGE", "big"}, {"SBX_DUMP", big}};
  Status st = JournalSend(fields, path);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = Receive(receiver.get());
  ASSERT_TRUE(got);
  EXPECT_EQ(ParseJournal(*got), fields);
}

TEST_F(SystemdTest, JournalFieldNamesAreChecked) {
  for (const std::string& ok : {std::string("MESSAGE"), std::string("A"), std::string("SBX_POD_IP"),
                                std::string("X1"), std::string(64, 'A')}) {
    EXPECT_TRUE(IsValidJournalFieldName(ok)) << ok;
  }
  for (const std::string& bad :
       {std::string(), std::string("_PID"), std::string("message"), std::string("1ABC"),
        std::string("A-B"), std::string("A B"), std::string("A=B"), std::string(65, 'A')}) {
    EXPECT_FALSE(IsValidJournalFieldName(bad)) << bad;
    auto entry = SerializeJournalEntry({{"MESSAGE", "m"}, {bad, "v"}});
    ASSERT_FALSE(entry.ok()) << bad;
    EXPECT_EQ(entry.status().code(), Code::kInvalidArgument);
    EXPECT_NE(entry.status().message().find("\"" + bad + "\""), std::string::npos)
        << entry.status().ToString();
  }
  EXPECT_EQ(JournalSend({{"lower", "v"}}, dir_ + "/journal").code(), Code::kInvalidArgument);
  EXPECT_EQ(SerializeJournalEntry({}).status().code(), Code::kInvalidArgument);
}

TEST_F(SystemdTest, JournalSendWithoutJournalIsUnavailable) {
  Status st = JournalSend({{"MESSAGE", "m"}}, dir_ + "/absent");
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
}

}  // namespace
}  // namespace sbx::systemd
