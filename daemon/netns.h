// Network namespaces kept alive by a bind mount of their nsfs file at a
// path, as `ip netns add` keeps them under /run/netns, so that they exist
// without a process inside and survive a restart of sbxd.
//
// Thread safety: the functions are independent and may run concurrently for
// different paths. They need CAP_SYS_ADMIN.
#ifndef SBX_DAEMON_NETNS_H_
#define SBX_DAEMON_NETNS_H_

#include <string>

#include "common/status.h"

namespace sbx::daemon {

// Creates a new, empty network namespace (only a down loopback) pinned at
// `path`; the parent directory is created. AlreadyExists if `path` exists.
Status CreateNetns(const std::string& path);

// Unpins and removes `path`; the namespace goes once nothing else holds it.
// Ok if `path` does not exist.
Status RemoveNetns(const std::string& path);

// Whether `path` is a pinned network namespace.
bool IsNetns(const std::string& path);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_NETNS_H_
