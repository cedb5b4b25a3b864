// Path handling for untrusted trees: layer entries and unpacked image archives.
//
// Nothing here follows a symlink while writing. Directories are opened one
// component at a time with openat(O_NOFOLLOW | O_DIRECTORY) from a descriptor
// of the root, so a symlink planted by one entry (absolute or relative, pointing
// anywhere) can never redirect a later write outside the root.
//
// Thread safety: reentrant; callers own the descriptors they pass.
#ifndef SBX_OCI_LAYER_PATH_H_
#define SBX_OCI_LAYER_PATH_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/fs.h"
#include "common/status.h"

namespace sbx::oci {

// Splits an archive entry path into clean components: a leading "./", "."
// components and repeated slashes are dropped; the root itself gives an empty
// list. Absolute paths and any ".." component are refused (InvalidArgument,
// naming the entry), even when they would stay inside the root.
Result<std::vector<std::string>> SplitEntryPath(std::string_view path);

// "a/b/c" for the first `count` components (all when count is npos).
std::string JoinComponents(const std::vector<std::string>& components,
                           size_t count = std::string::npos);

// Opens the directory made of the first `count` components beneath root_fd,
// never following symlinks. With `create`, missing directories are created
// (mode 0755); without it a missing one is NotFound. A symlink on the way is
// InvalidArgument ("escaping symlink"), a non-directory too; `entry` names the
// archive entry in messages.
Result<UniqueFd> OpenDirBeneath(int root_fd, const std::vector<std::string>& components,
                                size_t count, bool create, std::string_view entry);

// Opens `rel_path` for reading inside root_fd, resolving symlinks as if root_fd
// were "/" (openat2 RESOLVE_IN_ROOT), so that archives which link one file to
// another (docker save does) can be read without leaving the tree. Where
// openat2 is missing, symlinks are refused instead. The result must be a
// regular file.
Result<UniqueFd> OpenFileInRoot(int root_fd, const std::string& rel_path);

// Names in an open directory (no "." or ".."), in readdir order. The
// descriptor's own offset is not disturbed.
Result<std::vector<std::string>> ListDirAt(int dir_fd);

// Removes `name` in dir_fd: a file, a symlink (not its target) or a whole
// directory tree, never following symlinks. A missing name is not an error.
Status RemoveAt(int dir_fd, const std::string& name);

}  // namespace sbx::oci

#endif  // SBX_OCI_LAYER_PATH_H_
