/* Waits for a line on stdin, so the test can attach with -x first, then
   calls getpid() three times through libc. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    long sum = 0;
    for (int i = 0; i < 3; i++)
        sum += getpid();
    printf("%ld\n", sum);
    return 0;
}
