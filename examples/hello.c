/*
 * examples/hello.c: the first program to read. A coroutine sends three
 * greetings over a channel while main receives and prints them, then main
 * waits for the coroutine and closes everything. Run it with `make demo`.
 */
#include <stdio.h>
#include <libdill.h>

coroutine void greeter(int ch, int count) {
    for(int i = 1; i <= count; i++) {
        /* Blocks until main is ready to receive: channels hold no data. */
        if(chsend(ch, &i, sizeof(i), -1) != 0) return;
        /* Let time pass without blocking the thread. */
        if(msleep(now() + 10) != 0) return;
    }
}

int main(void) {
    int ch[2];
    if(chmake(ch) != 0) { perror("chmake"); return 1; }
    /* The coroutine starts at once and runs until its first chsend. */
    int cr = go(greeter(ch[0], 3));
    if(cr < 0) { perror("go"); return 1; }
    for(int i = 0; i < 3; i++) {
        int n;
        if(chrecv(ch[1], &n, sizeof(n), now() + 1000) != 0) {
            perror("chrecv");
            return 1;
        }
        printf("hello number %d from a coroutine\n", n);
    }
    /* Wait until greeter returns, then release its bundle and the channel. */
    if(bundle_wait(cr, now() + 1000) != 0) { perror("bundle_wait"); return 1; }
    hclose(cr);
    hclose(ch[0]);
    hclose(ch[1]);
    printf("done: the coroutine finished and every handle is closed\n");
    return 0;
}
