// hardened_exec PROGRAM [ARGS...]: runs PROGRAM under the restrictions
// systemd/sbxd.service puts on sbxd, as systemd applies them, so a test can
// show that runsc tolerates them:
//   NoNewPrivileges=yes  prctl(PR_SET_NO_NEW_PRIVS)
//   LockPersonality=yes  personality() only with PER_LINUX; anything else
//                        EPERM (stricter than systemd, which also lets the
//                        0xffffffff query through)
//   RestrictRealtime=yes sched_setscheduler() with SCHED_FIFO, SCHED_RR or
//                        SCHED_DEADLINE: EPERM
// The filters are inherited by everything PROGRAM starts, as under systemd.
#include <sched.h>
#include <seccomp.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>

#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hardened_exec PROGRAM [ARGS...]\n");
    return 2;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    std::perror("hardened_exec: no_new_privs");
    return 1;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return 1;
  int rc = 0;
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                         SCMP_A0(SCMP_CMP_NE, PER_LINUX));
  for (int policy : {SCHED_FIFO, SCHED_RR, SCHED_DEADLINE}) {
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(sched_setscheduler), 1,
                           SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(policy)));
  }
  if (rc != 0 || seccomp_load(ctx) != 0) {
    std::fprintf(stderr, "hardened_exec: seccomp: %s\n", std::strerror(-rc));
    return 1;
  }
  seccomp_release(ctx);
  execvp(argv[1], argv + 1);
  std::fprintf(stderr, "hardened_exec: %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}
