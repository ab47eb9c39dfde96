/* Traced by tests/tests/uprobes.rs: a few functions with known arguments,
   then a USDT mark written by hand the way <sys/sdt.h> writes it. */
#include <stdio.h>

struct req {
    long len;
    int kind;
};

#include "sdt.h"

#define NOIPA __attribute__((noipa))

/* Mark "tick" of provider "demo": two registers and a constant. */
#define DEMO_TICK(a, b) SDT_MARK("demo", "tick", "-4@%0 8@%1 -4@%2", "r"(a), "r"(b), "n"(-3))

NOIPA int add(int a, int b) { return a + b; }
NOIPA long scale(long x, unsigned char f, const char *s) { return x * f + (s[0] != 0); }
NOIPA long handle(struct req *r) { return r->len * 2; }
NOIPA void noop(void) {}

int main(void) {
    struct req r = {21, 1};
    long total = 0;
    for (int i = 1; i <= 3; i++) {
        total += add(3, 4) + scale(-5, 2, "hi") + handle(&r);
        noop();
        DEMO_TICK(i, (long)i * 10);
    }
    printf("%ld\n", total);
    return 0;
}
