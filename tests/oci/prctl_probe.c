/* Prints what prctl(2) reports about the calling process. Linked statically
 * and copied into the busybox rootfs of runsc_security_test: busybox has no
 * applet that shows no_new_privs, and gVisor's /proc/<pid>/status has no
 * NoNewPrivs line. */
#include <stdio.h>
#include <sys/prctl.h>

int main(void) {
  int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  if (nnp < 0) {
    perror("prctl(PR_GET_NO_NEW_PRIVS)");
    return 1;
  }
  printf("no_new_privs=%d\n", nnp);
  return 0;
}
