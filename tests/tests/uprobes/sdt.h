/* One `.note.stapsdt` entry (owner "stapsdt", type 3) for a USDT mark,
   written by hand the way <sys/sdt.h> writes it (systemtap-sdt-dev is not
   installed here): SDT_MARK("provider", "name", "argument specs", operands),
   where the specs name the operands as %0, %1... (`-4@%0 8@%1`). */
#define SDT_MARK(provider, name, specs, ...)                                \
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
        ".asciz \"" provider "\"\n"                                         \
        ".asciz \"" name "\"\n"                                             \
        ".asciz \"" specs "\"\n"                                            \
        "994: .balign 4\n"                                                  \
        ".popsection\n"                                                     \
        ".ifndef _.stapsdt.base\n"                                          \
        ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n" \
        ".weak _.stapsdt.base\n"                                            \
        ".hidden _.stapsdt.base\n"                                          \
        "_.stapsdt.base: .space 1\n"                                        \
        ".size _.stapsdt.base, 1\n"                                         \
        ".popsection\n"                                                     \
        ".endif\n" ::__VA_ARGS__)
