/*
 * fuzz/ws_frames.c: the WebSocket frame reader (ws.c) on whatever the
 * peer sends. The first input byte picks the side (client or server), the
 * socket type, how messages are received (one buffer, a scattered list
 * with a skipped element, dropped whole, a buffer of 7 bytes) and whether
 * the socket ends with ws_detach; the rest is the stream. Every receive
 * must return a size that fits, or fail with an errno the protocol can
 * give; after the peer's close frame ws_status must agree with it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "libdill.h"
#include "memsock.h"

static void check_errno(int err) {
    if(err != EPROTO && err != EMSGSIZE && err != EPIPE && err != ECONNRESET)
        abort();
}

static ssize_t receive(int ws, int how, uint8_t *buf, size_t len) {
    int flags = -1;
    ssize_t n;
    struct iolist iol[3] = {{buf, 5, &iol[1], 0}, {NULL, 9, &iol[2], 0},
        {buf + 5, len - 5, NULL, 0}};
    switch(how) {
    case 0:
        n = ws_recv(ws, &flags, buf, len, -1);
        if(n > (ssize_t)len) abort();
        break;
    case 1:
        n = ws_recvl(ws, &flags, &iol[0], &iol[2], -1);
        if(n > (ssize_t)len + 9) abort();
        if(iol[1].iol_base || iol[1].iol_len != 9 || iol[2].iol_next ||
              iol[0].iol_len != 5)
            abort();
        break;
    case 2:
        n = mrecvl(ws, NULL, NULL, -1);
        break;
    default:
        n = mrecv(ws, buf, 7, -1);
        if(n > 7) abort();
        break;
    }
    if(n >= 0 && how < 2 && flags != WS_TEXT && flags != WS_BINARY) abort();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if(size < 1) return 0;
    int mode = data[0];
    int s = memsock_make(data + 1, size - 1);
    int type = (mode & 2) ? WS_TEXT : WS_BINARY;
    int ws = (mode & 1) ?
        ws_attach_client(s, WS_NOHTTP | type, NULL, NULL, -1) :
        ws_attach_server(s, WS_NOHTTP | type, NULL, 0, NULL, 0, -1);
    if(ws < 0) abort();
    uint8_t buf[300];
    for(int i = 0; i < 100; i++) {
        if(receive(ws, (mode >> 2) & 3, buf, sizeof(buf)) >= 0) continue;
        int err = errno;
        check_errno(err);
        if(err == EPIPE) {
            int status = -1;
            uint8_t reason[123];
            ssize_t r = ws_status(ws, &status, reason, sizeof(reason));
            if(r >= 0 && (r > 123 || (status != 0 &&
                  (status < 1000 || status > 4999))))
                abort();
        }
        break;
    }
    if(mode & 0x10) {
        int u = ws_detach(ws, 1000, "fuzz", 4, -1);
        if(u >= 0) hclose(u);
        else hclose(ws);
    } else {
        hclose(ws);
    }
    return 0;
}
