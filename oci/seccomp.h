// Seccomp profiles and capability sets for the OCI spec's linux.seccomp and
// process.capabilities.
//
// Profiles are checked and compiled with libseccomp for the host
// architecture (seccomp_init, seccomp_rule_add_array, seccomp_export_bpf)
// so that a bad profile is refused before runsc sees it. The filter is never
// loaded into the calling process. gVisor enforces the profile inside the
// sandbox on the container's process and its children (runsc
// --oci-seccomp), but not on processes started by `runsc exec`; those load
// the compiled program themselves (CompileSeccompBpf, sbx-pause
// --seccomp-exec).
//
// What is accepted is what gVisor's OCI seccomp support implements:
// actions SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_TRAP and
// SCMP_ACT_TRACE (SCMP_ACT_KILL_PROCESS, SCMP_ACT_LOG and SCMP_ACT_NOTIFY are
// refused with a message saying so), the seven SCMP_CMP_* operators, argument
// indexes 0-5 and errno values that fit in 16 bits. Measured: runsc
// 20240729 ignores errnoRet and defaultErrnoRet and returns EPERM for every
// SCMP_ACT_ERRNO (newer gVisor honours them); profiles that ask for another
// errno are accepted and get EPERM from that runsc in the container's own
// processes, and the asked-for errno in exec'd ones (which load the
// CompileSeccompBpf program through gVisor's seccomp(2)).
//
// Syscall names: a name libseccomp does not know on any architecture is an
// error (`unknown syscall "mkdirx"`), which catches typos. A name that exists
// on other architectures only (e.g. "socketcall" on x86_64) is kept and
// matches nothing here, as with runc and gVisor. A short list of syscalls
// newer than the linked libseccomp (kSyscallsNewerThanLibseccomp in the .cc)
// is kept unchecked for the same reason, so that current Docker and
// containerd profiles load.
//
// Thread safety: pure functions.
#ifndef SBX_OCI_SECCOMP_H_
#define SBX_OCI_SECCOMP_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "oci/bundle.h"

namespace sbx::oci {

// A Docker/containerd profile (defaultAction, defaultErrnoRet, architectures
// or archMap, flags, syscalls[{names|name, action, errnoRet, args, comment,
// includes, excludes}]) or an OCI linux.seccomp object -> the validated OCI
// linux.seccomp object.
//
// Docker semantics: archMap contributes the host architecture's entry and
// its subArchitectures; a syscall entry is dropped when its `includes`
// (arches, caps, minKernel) do not all hold or any of its `excludes` holds.
// Arches are Go names ("amd64", "arm64"); caps are tested against
// `capabilities` (the container's bounding set; containerd's default set for
// the two-argument form); minKernel ("5.8") against the host kernel.
// SCMP_ACT_KILL_THREAD is written as its synonym SCMP_ACT_KILL.
//
// Errors are InvalidArgument for text that is not JSON and Invalid for a
// profile that fails a check, and read "<source>: <field path>: <problem>",
// e.g. `profile.json: syscalls[3].names[1]: unknown syscall "mkdirx"`.
Result<Json> LoadSeccompProfile(std::string_view text, const std::string& source);
Result<Json> LoadSeccompProfile(std::string_view text, const std::string& source,
                                const std::vector<std::string>& capabilities);

// Checks an OCI linux.seccomp object (no Docker-only fields) and compiles it
// with libseccomp. Errors as for LoadSeccompProfile.
Status ValidateSeccomp(const Json& oci_seccomp, const std::string& source);

// ValidateSeccomp, then the classic BPF program libseccomp generates for the
// host architecture: an array of struct sock_filter as seccomp_export_bpf
// writes it, ready for seccomp(SECCOMP_SET_MODE_FILTER). Actions and
// errnoRet/defaultErrnoRet are encoded as given.
Result<std::string> CompileSeccompBpf(const Json& oci_seccomp, const std::string& source);

// sbx's RuntimeDefault: allow everything except, with EPERM, the syscalls a
// container has no business making even inside gVisor. They are kernel
// module loading, kexec, reboot, swap, mount and the new mount API,
// pivot_root, bpf, perf_event_open, the kernel keyring, acct, quotactl,
// io_uring (disabled in runsc by default; a large attack surface) and
// open_by_handle_at. ptrace, unshare and clone stay allowed: gVisor
// implements them inside the sandbox, and debuggers and nested sandboxes
// (browsers) need them. Mount needs CAP_SYS_ADMIN anyway; a workload that adds
// it and must mount runs Unconfined or with a Localhost profile.
Json RuntimeDefaultSeccompProfile();

// Every Linux capability ("CAP_CHOWN" ... "CAP_CHECKPOINT_RESTORE"), in
// number order.
std::vector<std::string> AllCapabilities();

// Kubernetes capabilities add/drop applied to `base`, as containerd does:
// "ALL" in add adds every capability, "ALL" in drop removes every one, then
// the named adds, then the named drops (so drop ALL + add X leaves X). Names
// are Kubernetes' ("NET_ADMIN"), case-insensitive; "CAP_NET_ADMIN" is also
// accepted. The result keeps base's order, then additions in order, without
// duplicates. An unknown name is Invalid naming "<field_path>.add[i]" or
// ".drop[i]", where field_path is the capabilities object's path.
Result<std::vector<std::string>> ApplyCapabilityChanges(const std::vector<std::string>& base,
                                                        const std::vector<std::string>& add,
                                                        const std::vector<std::string>& drop,
                                                        const std::string& field_path);

}  // namespace sbx::oci

#endif  // SBX_OCI_SECCOMP_H_
