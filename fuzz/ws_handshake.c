/*
 * fuzz/ws_handshake.c: the WebSocket opening handshake (ws.c over http.c)
 * on whatever the peer sends. An even first byte makes us the server,
 * reading the input as the client's request with small or large output
 * buffers; an odd one the client, reading it as the server's answer (its
 * accept key cannot match our random key, so that side ends in an error,
 * but every line is parsed). A successful server attach then reads a few
 * frames from what follows the request.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libdill.h"
#include "memsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if(size < 1) return 0;
    int mode = data[0];
    int s = memsock_make(data + 1, size - 1);
    if(mode & 1) {
        int ws = ws_attach_client(s, 0, "/", "fuzz.example", -1);
        if(ws >= 0) abort();
        return 0;
    }
    size_t reslen = (mode & 2) ? 8 : 256;
    size_t hostlen = (mode & 4) ? 1 : 256;
    char resource[256], host[256];
    memset(host, 'x', sizeof(host));
    int ws = ws_attach_server(s, 0, resource, reslen, host, hostlen, -1);
    if(ws < 0) {
        if(errno != EPROTO && errno != EMSGSIZE && errno != EPIPE &&
              errno != ECONNRESET)
            abort();
        return 0;
    }
    if(strlen(resource) >= reslen) abort();
    if(host[0] != 'x' && strlen(host) >= hostlen) abort();
    uint8_t buf[64];
    for(int i = 0; i < 8; i++)
        if(ws_recv(ws, NULL, buf, sizeof(buf), -1) < 0) break;
    hclose(ws);
    return 0;
}
