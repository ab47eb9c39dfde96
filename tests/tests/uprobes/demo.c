/* Traced by tests/tests/uprobes.rs: a few functions with known arguments,
   then a USDT mark written by hand the way <sys/sdt.h> writes it. */
#include <stdio.h>

struct req {
    long len;
    int kind;
};

#define NOIPA __attribute__((noipa))

/* One `.note.stapsdt` entry (owner "stapsdt", type 3) for provider
   "demo", mark "tick", with three arguments: two registers and a constant. */
#define DEMO_TICK(a, b)                                                     \
    __asm__ __volatile__(                                                   \
        "990: nop\n"                                                        \
        ".pushsection .note.stapsdt,\"\",\"note\"\n"                        \
        ".balign 4\n"                                                       \
        ".4byte 992f-991f, 994f-993f, 3\n"                                  \
        "991: .asciz \"stapsdt\"\n"                                         \
        "992: .balign 4\n"                                                  \
        "993: .8byte 990b\n"                                                \
        ".8byte _.stapsdt.base\n"                                           \
        ".8byte 0\n"                                                        \
        ".asciz \"demo\"\n"                                                 \
        ".asciz \"tick\"\n"                                                 \
        ".asciz \"-4@%0 8@%1 -4@%2\"\n"                                     \
        "994: .balign 4\n"                                                  \
        ".popsection\n"                                                     \
        ".ifndef _.stapsdt.base\n"                                          \
        ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n" \
        ".weak _.stapsdt.base\n"                                            \
        ".hidden _.stapsdt.base\n"                                          \
        "_.stapsdt.base: .space 1\n"                                        \
        ".size _.stapsdt.base, 1\n"                                         \
        ".popsection\n"                                                     \
        ".endif\n" ::"r"(a), "r"(b), "n"(-3))

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
