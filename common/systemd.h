// Glue for running under systemd (Type=notify, socket activation, journald)
// without libsystemd.
//
// Each of these is a small, stable protocol that systemd documents as meant
// to be reimplemented: sd_notify(3) (a datagram to $NOTIFY_SOCKET),
// sd_watchdog_enabled(3) ($WATCHDOG_USEC/$WATCHDOG_PID), sd_listen_fds(3)
// (fds from 3 on, $LISTEN_PID/$LISTEN_FDS) and the journal's native protocol
// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/). Everything reads the
// environment at call time and takes socket paths as arguments, so tests point
// it at sockets of their own.
//
// Thread safety: the functions are thread-safe as long as no other thread
// changes the environment meanwhile (setenv/unsetenv, which includes
// ListenFds with unset_env).
#ifndef SBX_COMMON_SYSTEMD_H_
#define SBX_COMMON_SYSTEMD_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sbx::systemd {

// ---- sd_notify ----

// True when $NOTIFY_SOCKET is set (systemd waits for READY=1).
bool NotifyEnabled();

// Sends `state`, newline-separated assignments such as "READY=1\nSTATUS=serving",
// as one datagram to $NOTIFY_SOCKET: a file-system path, or an abstract socket
// name when it starts with '@'. Without $NOTIFY_SOCKET nothing is sent and the
// result is OK. Unavailable when nothing listens there; InvalidArgument when
// the variable is neither an absolute path nor '@'-prefixed.
Status Notify(std::string_view state);

// ---- watchdog ----

// The interval within which the service must send "WATCHDOG=1", from
// $WATCHDOG_USEC; nullopt when it is unset, not a positive number, or when
// $WATCHDOG_PID is set to a process other than this one. Send at about half
// the interval.
std::optional<std::chrono::microseconds> WatchdogInterval();

// ---- socket activation ----

// The fds passed by systemd: 3, 4, ... $LISTEN_FDS, provided $LISTEN_PID is
// this process (otherwise, or when unset, none: they are meant for another
// process). Sets FD_CLOEXEC on each. The caller owns the fds. With unset_env,
// removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the environment
// (whatever the outcome) so that children do not see them. InvalidArgument
// for malformed variables, FailedPrecondition for a listed fd that is not open.
Result<std::vector<int>> ListenFds(bool unset_env);

// The one socket passed for the API, from the fds ListenFds returned: checks
// that there is exactly one and that it is a listening AF_UNIX SOCK_STREAM
// socket, and returns it. FailedPrecondition otherwise, naming the count
// ("socket activation: expected 1 socket, got 2") or the fd ("socket
// activation: fd 3 is not a listening Unix stream socket"). Closes nothing:
// the fds stay the caller's.
Result<int> ListenUnixStreamFd(const std::vector<int>& fds);

// ---- journal ----

// True when stderr is connected to the journal: $JOURNAL_STREAM ("dev:ino")
// names the device and inode of fd 2. Then log lines can go to the journal
// natively rather than as plain text.
bool StderrIsJournal();

inline constexpr const char kJournalSocket[] = "/run/systemd/journal/socket";

using JournalFields = std::vector<std::pair<std::string, std::string>>;

// True for a field name journald accepts from a client: 1 to 64 characters of
// [A-Z0-9_], not starting with a digit or '_' (those are trusted fields that
// journald adds itself).
bool IsValidJournalFieldName(std::string_view name);

// The native-protocol datagram for `fields`: "KEY=value\n" each, or for a
// value that contains '\n' the binary form "KEY\n", the value's length as a
// 64-bit little-endian integer, the value, "\n". InvalidArgument naming the
// field for an invalid name; fields must not be empty.
Result<std::string> SerializeJournalEntry(const JournalFields& fields);

// Sends one entry to the journal socket. An entry too large for a datagram is
// passed as a sealed memfd, as sd_journal_send does. Fails (Unavailable) when
// nothing listens there.
Status JournalSend(const JournalFields& fields, const std::string& socket_path = kJournalSocket);

}  // namespace sbx::systemd

#endif  // SBX_COMMON_SYSTEMD_H_
