/* sbx-pause: the root process of every sbx pod sandbox.
 *
 * It holds the gVisor sandbox (its namespaces, cgroup and resource limits)
 * while the pod's containers come and go as sub-containers, and exits
 * cleanly on SIGTERM or SIGINT. It reaps any child it inherits. Linked
 * statically: its rootfs holds nothing else. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_terminate(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, 0, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_terminate;
  sigaction(SIGTERM, &sa, 0);
  sigaction(SIGINT, &sa, 0);
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &sa, 0);
  for (;;) pause();
}
