/*
 * fuzz/socks5_client.c: the SOCKS5 client (socks5.c) reading whatever a
 * proxy may send. The first input byte picks the call (by address, IPv4
 * or IPv6, or by name) and whether credentials are offered; the rest is
 * the proxy's side of the stream. The call must end in success or one of
 * the errors a proxy can cause, and on success must have read exactly the
 * SOCKS messages, as an independent reading of the input says.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "memsock.h"

/* How many bytes a successful exchange takes from the input: method,
   login verdict if method 02, reply with its bound address. 0 when the
   input cannot be a success. */
static size_t expected_use(const uint8_t *d, size_t n, int creds) {
    size_t pos = 2;
    if(n < pos || d[0] != 5) return 0;
    if(d[1] == 2 && creds) pos += 2;
    else if(d[1] != 0) return 0;
    if(n < pos + 4) return 0;
    const uint8_t *r = d + pos;
    pos += 4;
    switch(r[3]) {
    case 1: pos += 4; break;
    case 4: pos += 16; break;
    case 3:
        if(n < pos + 1) return 0;
        pos += 1 + d[pos];
        break;
    default: return 0;
    }
    pos += 2;
    return n < pos || r[1] != 0 ? 0 : pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if(size < 1) return 0;
    int mode = data[0];
    int creds = mode & 1;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    int s = memsock_make(in, len);
    const char *user = creds ? "user" : NULL;
    const char *pass = creds ? "pass" : NULL;
    int rc;
    switch((mode >> 1) % 3) {
    case 0: {
        struct dill_ipaddr a;
        if(dill_ipaddr_local(&a, mode & 8 ? "::1" : "127.0.0.1", 80, 0) < 0)
            abort();
        rc = dill_socks5_client_connect(s, user, pass, &a, -1);
        break;
    }
    case 1:
        rc = dill_socks5_client_connectbyname(s, user, pass, "example.org",
            443, -1);
        break;
    default:
        rc = dill_socks5_client_connectbyname(s, user, pass, "10.1.2.3", 1,
            -1);
        break;
    }
    struct memsock *m = (struct memsock *)((char *)dill_hquery(s,
        dill_bsock_type) - offsetof(struct memsock, bvfs));
    if(rc == 0) {
        size_t use = expected_use(in, len, creds);
        if(use == 0 || m->pos != use) abort();
    }
    else if(rc != -1) abort();
    else {
        switch(errno) {
        case EPROTO: case EACCES: case EPIPE: case EIO: case ENETUNREACH:
        case EHOSTUNREACH: case ECONNREFUSED: case ETIMEDOUT:
        case EOPNOTSUPP: case EAFNOSUPPORT:
            break;
        default:
            abort();
        }
    }
    dill_hclose(s);
    return 0;
}
