/* sbx-pause: the root process of every sbx pod sandbox, and the seccomp
 * loader of commands exec'd into a container.
 *
 * Without arguments it holds the gVisor sandbox (its namespaces, cgroup and
 * resource limits) while the pod's containers come and go as
 * sub-containers, and exits cleanly on SIGTERM or SIGINT. It reaps any child
 * it inherits.
 *
 * `sbx-pause --seccomp-exec FILE -- ARGV...` loads the classic BPF program
 * in FILE (an array of struct sock_filter, as libseccomp exports it) as the
 * calling process's seccomp filter, with no_new_privs set, then execs ARGV
 * (searched in PATH). runsc applies a container's seccomp profile to the
 * container's own processes but not to those started by `runsc exec`, so
 * sbxd starts those through this mode to confine them by the same profile.
 * ARGV never runs unconfined: if the filter cannot be read or loaded it
 * prints why on stderr and exits 127. A command that is not found also
 * exits 127, one found but not executable 126, as with a shell.
 *
 * Linked statically against libc only: the pause rootfs holds nothing else,
 * and the same file is bind-mounted into containers of any image. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kSetupFailed = 127, kNotFound = 127, kNotExecutable = 126 };

static void on_terminate(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, 0, WNOHANG) > 0) {
  }
}

_Noreturn static void run_pause(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_terminate;
  sigaction(SIGTERM, &sa, 0);
  sigaction(SIGINT, &sa, 0);
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, 0);
  for (;;) pause();
}

/* Reads the whole program into `filter`; returns its instruction count, or
 * -1 after printing why. */
static int read_program(const char* path, struct sock_filter* filter) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "sbx-pause: seccomp filter %s: %s\n", path, strerror(errno));
    return -1;
  }
  /* One byte of room past the limit tells a too-long program apart. */
  char* buf = (char*)filter;
  const size_t cap = BPF_MAXINSNS * sizeof(struct sock_filter) + 1;
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fprintf(stderr, "sbx-pause: seccomp filter %s: %s\n", path, strerror(errno));
      close(fd);
      return -1;
    }
    if (n == 0 || (len += (size_t)n) == cap) break;
  }
  close(fd);
  if (len == 0 || len % sizeof(struct sock_filter) != 0 || len >= cap) {
    fprintf(stderr,
            "sbx-pause: seccomp filter %s: %zu bytes is not a BPF program of 1 to %d "
            "instructions\n",
            path, len, BPF_MAXINSNS);
    return -1;
  }
  return (int)(len / sizeof(struct sock_filter));
}

static int run_seccomp_exec(const char* path, char** argv) {
  /* One extra instruction's room for read_program's overflow check. */
  static struct sock_filter filter[BPF_MAXINSNS + 1];
  int count = read_program(path, filter);
  if (count < 0) return kSetupFailed;
  struct sock_fprog prog = {(unsigned short)count, filter};
  /* Unprivileged processes may load a filter only with no_new_privs set
   * (gVisor holds every process to it anyway). */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fprintf(stderr, "sbx-pause: prctl(PR_SET_NO_NEW_PRIVS): %s\n", strerror(errno));
    return kSetupFailed;
  }
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    fprintf(stderr, "sbx-pause: loading seccomp filter %s: %s\n", path, strerror(errno));
    return kSetupFailed;
  }
  execvp(argv[0], argv);
  int err = errno;
  fprintf(stderr, "sbx-pause: exec %s: %s\n", argv[0], strerror(err));
  return err == ENOENT || err == ENOTDIR ? kNotFound : kNotExecutable;
}

static int usage(void) {
  fprintf(stderr,
          "usage: sbx-pause                                  hold the pod sandbox\n"
          "       sbx-pause --seccomp-exec FILE -- ARGV...   exec ARGV under the seccomp\n"
          "                                                  filter (BPF program) in FILE\n");
  return kSetupFailed;
}

int main(int argc, char** argv) {
  if (argc == 1) run_pause();
  if (argc >= 5 && strcmp(argv[1], "--seccomp-exec") == 0 && strcmp(argv[3], "--") == 0) {
    return run_seccomp_exec(argv[2], argv + 4);
  }
  return usage();
}
