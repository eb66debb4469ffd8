// Stand-in for registry.k8s.io/e2e-test-images/nonewprivs: installed setuid root in the test
// image, prints its effective uid (0 when privilege escalation was allowed, the caller's uid
// under no_new_privs). Built statically by tests/critest/images.sh.
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("Effective uid: %d\n", (int)geteuid());
  return 0;
}
