/*
 * fuzz/http.c: the HTTP head parser and writer (http.c) over fuzz/memsock.h.
 * The first bytes of the input choose the output buffer sizes (0 and 1
 * included) and a selector; the rest is the peer's stream, read as a
 * request head (http_recvrequest, then http_recvfield until it fails) or a
 * response head (http_recvstatus, then fields), and finished with
 * http_detach. Every success is checked: outputs NUL-terminated inside
 * their buffers, status codes of three digits. The same bytes are also cut
 * into strings for the send side (request line, status line, fields,
 * done), and the bytes written are checked against what the accepted
 * calls should have written.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libdillimpl.h"
#include "memsock.h"

static struct memsock *memsock_of(int s) {
    struct dill_bsock_vfs *b = dill_hquery(s, dill_bsock_type);
    if(!b) abort();
    return (struct memsock *)((char *)b - offsetof(struct memsock, bvfs));
}

/* A received string must be NUL-terminated inside its buffer. */
static void check_out(const char *buf, size_t len) {
    if(len == 0 || memchr(buf, 0, len) == NULL) abort();
}

static void fuzz_recv(const uint8_t *data, size_t size, size_t len1,
      size_t len2, int response) {
    int s = memsock_make(data, size);
    int h = dill_http_attach(s);
    if(h < 0) abort();
    char *a = malloc(len1 ? len1 : 1), *b = malloc(len2 ? len2 : 1);
    if(!a || !b) abort();
    int rc;
    if(response) {
        rc = dill_http_recvstatus(h, a, len1, -1);
        if(rc >= 0) {
            if(rc > 999) abort();
            check_out(a, len1);
        }
    } else {
        rc = dill_http_recvrequest(h, a, len1, b, len2, -1);
        if(rc == 0) {
            check_out(a, len1);
            check_out(b, len2);
        }
    }
    if(rc < 0 && errno != EPROTO && errno != EMSGSIZE && errno != EPIPE)
        abort();
    for(int i = 0; i < 200; i++) {
        rc = dill_http_recvfield(h, a, len1, b, len2, -1);
        if(rc == 0) {
            check_out(a, len1);
            check_out(b, len2);
            continue;
        }
        if(errno == EPROTO || errno == EMSGSIZE) continue;
        if(errno != EPIPE && errno != ECONNRESET) abort();
        break;
    }
    free(a);
    free(b);
    int u = dill_http_detach(h, -1);
    if(u >= 0) {
        dill_hclose(u);
    } else if(errno != ECONNRESET && errno != EMSGSIZE) {
        abort();
    }
}

/* Cut the next string (up to a NUL or the end) off the input. */
static const char *next(const uint8_t **data, size_t *size, char *buf,
      size_t room) {
    size_t n = 0;
    while(*size && **data && n + 1 < room) {
        buf[n++] = (char)**data;
        (*data)++;
        (*size)--;
    }
    if(*size) {
        (*data)++;
        (*size)--;
    }
    buf[n] = 0;
    return buf;
}

static int has_any(const char *str, const char *set) {
    return str[strcspn(str, set)] != 0;
}

static void fuzz_send(const uint8_t *data, size_t size, int status) {
    char cmd[64], res[2048], name[64], value[2048], reason[128];
    next(&data, &size, cmd, sizeof(cmd));
    next(&data, &size, res, sizeof(res));
    next(&data, &size, name, sizeof(name));
    next(&data, &size, value, sizeof(value));
    next(&data, &size, reason, sizeof(reason));
    int s = memsock_make(NULL, 0);
    struct memsock *m = memsock_of(s);
    int h = dill_http_attach(s);
    if(h < 0) abort();
    size_t expected = 0;
    int rc = dill_http_sendrequest(h, cmd, res, -1);
    int bad = has_any(cmd, " \t\n") || has_any(res, " \t\n");
    if((rc == 0) == bad) abort();
    if(rc == 0) expected += strlen(cmd) + strlen(res) + 12;
    rc = dill_http_sendstatus(h, status, reason, -1);
    if((rc == 0) != (status >= 100 && status <= 599)) abort();
    if(rc == 0) expected += 13 + strlen(reason) + 2;
    /* The value as it is, and without its first bytes. */
    size_t vlen = strlen(value);
    for(size_t i = 0; i < 3 && i <= vlen; i++) {
        rc = dill_http_sendfield(h, name, value + i, -1);
        size_t start = i, end = vlen;
        while(start < end && value[start] == ' ') start++;
        while(end > start && value[end - 1] == ' ') end--;
        int refused = has_any(name, "()<>@,;:\\\"/[]?={} \t\n");
        if(rc == 0 && (refused || start == end)) abort();
        if(rc < 0 && errno != (refused ? EINVAL : EPROTO)) abort();
        if(rc == 0) expected += strlen(name) + 2 + (end - start) + 2;
    }
    if(dill_http_done(h, -1) < 0) abort();
    expected += 2;
    if(m->sent != expected) abort();
    /* Lines after done are written at once. */
    if(dill_http_sendfield(h, "Late", "x", -1) < 0) abort();
    if(m->sent != expected + 9) abort();
    dill_hclose(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if(size < 4) return 0;
    /* Sizes 0..255 and, with the high bit of the selector, up to 2 KiB. */
    size_t len1 = data[0], len2 = data[1];
    int sel = data[2];
    if(sel & 0x80) {
        len1 *= 8;
        len2 *= 8;
    }
    int status = data[3] * 3;
    data += 4;
    size -= 4;
    fuzz_recv(data, size, len1, len2, sel & 1);
    fuzz_send(data, size, status);
    return 0;
}
