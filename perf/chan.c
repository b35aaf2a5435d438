/*
 * perf/chan.c: the cost of one message over a channel. A coroutine sends
 * consecutive integers and main receives them; every message is one
 * chsend/chrecv pair and a switch between the two coroutines.
 */
#include <libdill.h>
#include "perf.h"

#define MESSAGES 2000000

static coroutine void sender(int ch, int count) {
    for(int i = 0; i < count; i++)
        PERF_CHECK(chsend(ch, &i, sizeof(i), -1) == 0);
}

int main(void) {
    int ch[2];
    PERF_CHECK(chmake(ch) == 0);
    int64_t start = perf_ns();
    int cr = go(sender(ch[0], MESSAGES));
    PERF_CHECK(cr >= 0);
    for(int i = 0; i < MESSAGES; i++) {
        int val;
        PERF_CHECK(chrecv(ch[1], &val, sizeof(val), -1) == 0);
        PERF_CHECK(val == i);
    }
    PERF_CHECK(bundle_wait(cr, -1) == 0);
    perf_report("chan", perf_ns() - start, MESSAGES);
    PERF_CHECK(hclose(cr) == 0);
    PERF_CHECK(hclose(ch[0]) == 0);
    PERF_CHECK(hclose(ch[1]) == 0);
    return 0;
}
