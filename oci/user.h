// Resolving an image or pod user string against a rootfs, as containerd does.
//
// Accepted forms: "" (root), "name", "uid", "name:group", "uid:gid", and the
// mixed "name:gid" / "uid:group". Names are looked up in the rootfs's
// /etc/passwd and /etc/group; both files may be missing when only numeric
// ids are used. A numeric uid found in /etc/passwd takes its primary gid from
// there, otherwise gid 0. Supplementary groups are the /etc/group entries
// listing the user's name as a member; the primary gid is always included
// first (containerd's ensureAdditionalGids).
//
// The files are opened relative to the rootfs as if it were "/": symlinks
// (absolute or relative) resolve inside it and can never reach the host.
#ifndef SBX_OCI_USER_H_
#define SBX_OCI_USER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sbx::oci {

struct UserSpec {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string home;  // from /etc/passwd; "/" when unknown

  bool operator==(const UserSpec&) const = default;
};

// NotFound when a named user or group does not exist, InvalidArgument for a
// malformed string; both name the user string.
Result<UserSpec> ResolveUser(const std::string& rootfs, std::string_view user);

}  // namespace sbx::oci

#endif  // SBX_OCI_USER_H_
