/* Traced by tests/tests/uprobes.rs: struct members read through pointers
   ($req->len, $req->next->name, an embedded struct, an array member),
   @cast on a void pointer, $$parms$, a function with eight arguments (the
   seventh and eighth on the stack), a NULL member, and a USDT mark whose
   arguments are memory operands. */
#include <stddef.h>

struct inner {
    int x;
    short y;
};

struct req {
    int len;
    char name[16];
    struct req *next;
    struct inner inner;
    long arr[4];
    const char *tag;
};

#include "sdt.h"

#define NOIPA __attribute__((noipa))

/* Mark "mem" of provider "structs", whose two arguments are memory
   operands (`-4@-20(%rbp)` style at -O0). */
#define STRUCTS_MEM(a, b) SDT_MARK("structs", "mem", "-4@%0 8@%1", "m"(a), "m"(b))

NOIPA int handle(struct req *req, int n) { return req->len + n; }
NOIPA int opaque(void *p) { return p != NULL; }
NOIPA long many(long a, long b, long c, long d, long e, long f, long g, long h)
{
    return a + b + c + d + e + f + g + h;
}

int main(void)
{
    struct req second = {7, "second", NULL, {3, 4}, {10, 20, 30, 40}, "t2"};
    struct req first = {5, "first", &second, {1, 2}, {1, 2, 3, 4}, "t1"};
    int count = -3;
    /* Touch the string literals: the kernel cannot fault pages in at
       probe time, and .rodata pages nobody read are not resident. */
    long total = first.tag[0] + second.tag[0];
    total += handle(&first, 1);
    total += handle(&second, 2);
    total += opaque(&first);
    total += many(1, 2, 3, 4, 5, 6, -7, 8);
    STRUCTS_MEM(count, total);
    return total > 0 ? 0 : 1;
}
