/*
 * wshandshake.c: the WebSocket opening handshake (RFC 6455 §4; sockets.md
 * §15.2-§15.4) over the HTTP layer, and the key helpers ws_request_key and
 * ws_response_key. The request and the answer are checked field by field;
 * no HTTP error answer is ever sent.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "layer.h"
#include "random.h"
#include "sha1.h"
#include "ws.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- Keys ---------------------------------------------------------------- */

DILL_EXPORT int dill_ws_request_key(char *request_key) {
    if(!request_key) {
        errno = EINVAL;
        return -1;
    }
    uint8_t nonce[16];
    if(dill_random_fill(nonce, sizeof(nonce)) < 0) return -1;
    dill_base64_encode(nonce, sizeof(nonce), request_key, WS_KEY_SIZE);
    return 0;
}

DILL_EXPORT int dill_ws_response_key(const char *request_key,
      char *response_key) {
    if(!request_key || !response_key) {
        errno = EINVAL;
        return -1;
    }
    uint8_t nonce[17];
    if(dill_base64_decode(request_key, nonce, sizeof(nonce)) != 16) {
        errno = EPROTO;
        return -1;
    }
    struct dill_sha1 sha;
    dill_sha1_init(&sha);
    dill_sha1_update(&sha, request_key, strlen(request_key));
    dill_sha1_update(&sha, ws_guid, sizeof(ws_guid) - 1);
    uint8_t digest[DILL_SHA1_SIZE];
    dill_sha1_final(&sha, digest);
    dill_base64_encode(digest, sizeof(digest), response_key, WS_KEY_SIZE);
    return 0;
}

/* ---- Opening handshake (RFC 6455 §4) ----------------------------------- */

/* Field values are compared whole, ignoring case: a list such as
   "keep-alive, Upgrade" does not match (sockets.md §15.2). */
static int field_is(const char *name, const char *want) {
    return strcasecmp(name, want) == 0;
}

/* A field that must come once: -1 with EPROTO the second time. */
static int once(int *seen) {
    if(*seen) {
        errno = EPROTO;
        return -1;
    }
    *seen = 1;
    return 0;
}

static int send_request(int h, const char *resource, const char *host,
      const char *key, int64_t deadline) {
    if(dill_http_sendrequest(h, "GET", resource, deadline) < 0) return -1;
    if(dill_http_sendfield(h, "Host", host, deadline) < 0) return -1;
    if(dill_http_sendfield(h, "Upgrade", "websocket", deadline) < 0)
        return -1;
    if(dill_http_sendfield(h, "Connection", "Upgrade", deadline) < 0)
        return -1;
    if(dill_http_sendfield(h, "Sec-WebSocket-Key", key, deadline) < 0)
        return -1;
    if(dill_http_sendfield(h, "Sec-WebSocket-Version", "13", deadline) < 0)
        return -1;
    return dill_http_done(h, deadline);
}

/* The server's answer: 101, then Upgrade, Connection and the accept key
   for our key, each once; other fields are ignored. */
static int recv_response(int h, const char *key, int64_t deadline) {
    char expected[WS_KEY_SIZE];
    if(dill_ws_response_key(key, expected) < 0) return -1;
    char name[256], value[256];
    int status = dill_http_recvstatus(h, value, sizeof(value), deadline);
    if(status < 0) return -1;
    if(status != 101) {
        errno = EPROTO;
        return -1;
    }
    int upgrade = 0, connection = 0, accept = 0;
    for(;;) {
        if(dill_http_recvfield(h, name, sizeof(name), value, sizeof(value),
              deadline) < 0) {
            if(errno != EPIPE) return -1;
            break;
        }
        int ok = 1;
        if(field_is(name, "Upgrade")) {
            if(once(&upgrade) < 0) return -1;
            ok = field_is(value, "websocket");
        } else if(field_is(name, "Connection")) {
            if(once(&connection) < 0) return -1;
            ok = field_is(value, "Upgrade");
        } else if(field_is(name, "Sec-WebSocket-Accept")) {
            if(once(&accept) < 0) return -1;
            ok = strcmp(value, expected) == 0;
        }
        if(!ok) {
            errno = EPROTO;
            return -1;
        }
    }
    if(!upgrade || !connection || !accept) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

int dill_ws_client_handshake(int *u, const char *resource, const char *host,
      int64_t deadline) {
    struct dill_http_storage storage;
    int h = dill_http_attach_mem(*u, &storage);
    if(h < 0) return -1;
    char key[WS_KEY_SIZE];
    if(dill_ws_request_key(key) < 0 ||
          send_request(h, resource, host, key, deadline) < 0 ||
          recv_response(h, key, deadline) < 0)
        return dill_layer_abort(h);
    *u = dill_http_detach(h, deadline);
    return *u < 0 ? -1 : 0;
}

struct request {
    char *host;
    size_t hostlen;
    char key[256];
    int has_host, upgrade, connection, has_key, version;
};

/* One field of the request. A bad value: -1 with EPROTO. */
static int request_field(struct request *r, const char *name,
      const char *value) {
    int ok = 1;
    if(field_is(name, "Host")) {
        if(once(&r->has_host) < 0) return -1;
        if(strlen(value) >= r->hostlen) {
            errno = EMSGSIZE;
            return -1;
        }
        strcpy(r->host, value);
    } else if(field_is(name, "Upgrade")) {
        if(once(&r->upgrade) < 0) return -1;
        ok = field_is(value, "websocket");
    } else if(field_is(name, "Connection")) {
        if(once(&r->connection) < 0) return -1;
        ok = field_is(value, "Upgrade");
    } else if(field_is(name, "Sec-WebSocket-Key")) {
        if(once(&r->has_key) < 0) return -1;
        uint8_t nonce[17];
        ok = dill_base64_decode(value, nonce, sizeof(nonce)) == 16;
        strcpy(r->key, value);
    } else if(field_is(name, "Sec-WebSocket-Version")) {
        if(once(&r->version) < 0) return -1;
        ok = strcmp(value, "13") == 0;
    }
    if(!ok) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

static int recv_request(int h, char *resource, size_t resourcelen,
      struct request *r, int64_t deadline) {
    char command[32];
    if(dill_http_recvrequest(h, command, sizeof(command), resource,
          resourcelen, deadline) < 0)
        return -1;
    if(strcmp(command, "GET") != 0) {
        errno = EPROTO;
        return -1;
    }
    char name[256], value[256];
    for(;;) {
        if(dill_http_recvfield(h, name, sizeof(name), value, sizeof(value),
              deadline) < 0) {
            if(errno != EPIPE) return -1;
            break;
        }
        if(request_field(r, name, value) < 0) return -1;
    }
    if(!r->upgrade || !r->connection || !r->has_key || !r->version) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

static int send_response(int h, const char *key, int64_t deadline) {
    char accept[WS_KEY_SIZE];
    if(dill_ws_response_key(key, accept) < 0) return -1;
    if(dill_http_sendstatus(h, 101, "Switching Protocols", deadline) < 0)
        return -1;
    if(dill_http_sendfield(h, "Upgrade", "websocket", deadline) < 0)
        return -1;
    if(dill_http_sendfield(h, "Connection", "Upgrade", deadline) < 0)
        return -1;
    return dill_http_sendfield(h, "Sec-WebSocket-Accept", accept, deadline);
}

int dill_ws_server_handshake(int *u, char *resource, size_t resourcelen,
      char *host, size_t hostlen, int64_t deadline) {
    struct dill_http_storage storage;
    int h = dill_http_attach_mem(*u, &storage);
    if(h < 0) return -1;
    struct request r;
    memset(&r, 0, sizeof(r));
    r.host = host;
    r.hostlen = hostlen;
    if(recv_request(h, resource, resourcelen, &r, deadline) < 0 ||
          send_response(h, r.key, deadline) < 0)
        return dill_layer_abort(h);
    *u = dill_http_detach(h, deadline);
    return *u < 0 ? -1 : 0;
}
