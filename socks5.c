/*
 * socks5.c: SOCKS5 (RFC 1928) with username/password authentication (RFC
 * 1929), sockets.md §16. Nothing here makes a handle: each function runs
 * its part of the exchange on the caller's bytestream and, on success,
 * that stream simply carries the tunnel. Every SOCKS message is read with
 * exact-length receives, a fixed part first and then the length it
 * announces, so not one byte of the tunnelled data behind it is consumed.
 * Every message we send goes out in one bsend (one segment, no Nagle
 * stall between its fields).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "libdill.h"

#define SOCKS_VERSION 0x05
#define LOGIN_VERSION 0x01 /* RFC 1929's subnegotiation */

#define METHOD_NONE 0x00
#define METHOD_LOGIN 0x02
#define METHOD_REFUSED 0xFF

#define ATYP_IPV4 0x01
#define ATYP_NAME 0x03
#define ATYP_IPV6 0x04

/* Longest field of a SOCKS message: one length byte counts it. */
#define FIELD_MAX 255

/* ---- Shared pieces ----------------------------------------------------- */

static int fail(int err) {
    errno = err;
    return -1;
}

/* Passwords do not stay behind on the stack. The volatile pointer keeps
   the compiler from dropping stores to memory that dies right after. */
static void wipe(void *buf, size_t len) {
    volatile uint8_t *p = buf;
    while(len--) *p++ = 0;
}

static int field_ok(const char *s) {
    return !s || strlen(s) <= FIELD_MAX;
}

/* The address part of a request or reply, ATYP ADDR PORT, for an IPv4 or
   IPv6 ipaddr. Its length, or -1 with EINVAL for anything else. */
static int put_ipaddr(uint8_t *out, const struct dill_ipaddr *addr) {
    if(!addr) return fail(EINVAL);
    int len;
    uint16_t port = htons((uint16_t)dill_ipaddr_port(addr));
    switch(dill_ipaddr_family(addr)) {
    case AF_INET: {
        struct sockaddr_in in;
        memcpy(&in, addr, sizeof(in));
        out[0] = ATYP_IPV4;
        memcpy(out + 1, &in.sin_addr, 4);
        len = 5;
        break;
    }
    case AF_INET6: {
        struct sockaddr_in6 in6;
        memcpy(&in6, addr, sizeof(in6));
        out[0] = ATYP_IPV6;
        memcpy(out + 1, &in6.sin6_addr, 16);
        len = 17;
        break;
    }
    default:
        return fail(EINVAL);
    }
    memcpy(out + len, &port, 2);
    return len + 2;
}

/* ---- Client ------------------------------------------------------------ */

/* RFC 1929: send the credentials, read the verdict. */
static int client_login(int s, const char *username, const char *password,
      int64_t deadline) {
    uint8_t msg[3 + 2 * FIELD_MAX];
    size_t ulen = strlen(username), plen = strlen(password);
    msg[0] = LOGIN_VERSION;
    msg[1] = (uint8_t)ulen;
    memcpy(msg + 2, username, ulen);
    msg[2 + ulen] = (uint8_t)plen;
    memcpy(msg + 3 + ulen, password, plen);
    int rc = dill_bsend(s, msg, 3 + ulen + plen, deadline);
    wipe(msg, sizeof(msg));
    if(rc < 0) return -1;
    uint8_t status[2];
    if(dill_brecv(s, status, 2, deadline) < 0) return -1;
    if(status[0] != LOGIN_VERSION) return fail(EPROTO);
    if(status[1] != 0x00) return fail(EACCES);
    return 0;
}

/* Offer "no authentication", or username/password when both are given,
   and follow the proxy's choice. */
static int client_greet(int s, const char *username, const char *password,
      int64_t deadline) {
    int login = username && password;
    const uint8_t offer_none[] = {SOCKS_VERSION, 1, METHOD_NONE};
    const uint8_t offer_both[] = {SOCKS_VERSION, 2, METHOD_NONE,
        METHOD_LOGIN};
    if(login) {
        if(dill_bsend(s, offer_both, sizeof(offer_both), deadline) < 0)
            return -1;
    }
    else if(dill_bsend(s, offer_none, sizeof(offer_none), deadline) < 0)
        return -1;
    uint8_t choice[2];
    if(dill_brecv(s, choice, 2, deadline) < 0) return -1;
    if(choice[0] != SOCKS_VERSION) return fail(EPROTO);
    switch(choice[1]) {
    case METHOD_NONE:
        return 0;
    case METHOD_REFUSED:
        return fail(EACCES);
    case METHOD_LOGIN:
        if(login) return client_login(s, username, password, deadline);
        /* A method we did not offer. */
        return fail(EPROTO);
    default:
        return fail(EPROTO);
    }
}

/* The REP codes of RFC 1928 §6 as errno values (sockets.md §16.1). */
static const int rep_errno[] = {
    0,            /* succeeded */
    EIO,          /* general SOCKS server failure */
    EACCES,       /* connection not allowed by ruleset */
    ENETUNREACH,  /* network unreachable */
    EHOSTUNREACH, /* host unreachable */
    ECONNREFUSED, /* connection refused */
    ETIMEDOUT,    /* TTL expired */
    EOPNOTSUPP,   /* command not supported */
    EAFNOSUPPORT, /* address type not supported */
};

/* Send CONNECT to the address part addr (ATYP ADDR PORT, len bytes), then
   read the whole reply, bound address included, before acting on REP. */
static int client_request(int s, const uint8_t *addr, size_t len,
      int64_t deadline) {
    uint8_t req[3 + 1 + 1 + FIELD_MAX + 2] = {SOCKS_VERSION,
        DILL_SOCKS5_CONNECT, 0x00};
    memcpy(req + 3, addr, len);
    if(dill_bsend(s, req, 3 + len, deadline) < 0) return -1;
    uint8_t head[4];
    if(dill_brecv(s, head, 4, deadline) < 0) return -1;
    if(head[0] != SOCKS_VERSION || head[2] != 0x00) return fail(EPROTO);
    /* The bound address is of no use to a CONNECT client: drop it. */
    uint8_t bound[FIELD_MAX + 2];
    size_t skip;
    switch(head[3]) {
    case ATYP_IPV4: skip = 4 + 2; break;
    case ATYP_IPV6: skip = 16 + 2; break;
    case ATYP_NAME:
        if(dill_brecv(s, bound, 1, deadline) < 0) return -1;
        skip = (size_t)bound[0] + 2;
        break;
    default:
        return fail(EPROTO);
    }
    if(dill_brecv(s, bound, skip, deadline) < 0) return -1;
    if(head[1] >= sizeof(rep_errno) / sizeof(rep_errno[0]))
        return fail(EPROTO);
    if(head[1] != DILL_SOCKS5_SUCCESS) return fail(rep_errno[head[1]]);
    return 0;
}

DILL_EXPORT int dill_socks5_client_connect(int s, const char *username,
      const char *password, struct dill_ipaddr *addr, int64_t deadline) {
    if(!field_ok(username) || !field_ok(password)) return fail(EINVAL);
    uint8_t part[1 + 16 + 2];
    int len = put_ipaddr(part, addr);
    if(len < 0) return -1;
    if(client_greet(s, username, password, deadline) < 0) return -1;
    return client_request(s, part, (size_t)len, deadline);
}

DILL_EXPORT int dill_socks5_client_connectbyname(int s, const char *username,
      const char *password, const char *hostname, int port,
      int64_t deadline) {
    if(!field_ok(username) || !field_ok(password)) return fail(EINVAL);
    /* An empty name names nothing: refused here rather than by the proxy. */
    if(!hostname || !*hostname || !field_ok(hostname)) return fail(EINVAL);
    if(port < 1 || port > 65535) return fail(EINVAL);
    uint8_t part[1 + 1 + FIELD_MAX + 2];
    size_t len;
    /* Literals travel as addresses, so the proxy does no lookup for them. */
    if(inet_pton(AF_INET, hostname, part + 1) == 1) {
        part[0] = ATYP_IPV4;
        len = 1 + 4;
    }
    else if(inet_pton(AF_INET6, hostname, part + 1) == 1) {
        part[0] = ATYP_IPV6;
        len = 1 + 16;
    }
    else {
        size_t n = strlen(hostname);
        part[0] = ATYP_NAME;
        part[1] = (uint8_t)n;
        memcpy(part + 2, hostname, n);
        len = 2 + n;
    }
    part[len] = (uint8_t)(port >> 8);
    part[len + 1] = (uint8_t)port;
    if(client_greet(s, username, password, deadline) < 0) return -1;
    return client_request(s, part, len + 2, deadline);
}

/* ---- Proxy ------------------------------------------------------------- */

static int choose_method(int s, uint8_t method, int64_t deadline) {
    const uint8_t msg[2] = {SOCKS_VERSION, method};
    return dill_bsend(s, msg, 2, deadline);
}

/* RFC 1929 from the proxy's side: read the credentials, ask auth_fn. */
static int proxy_login(int s, dill_socks5_auth_function *auth_fn,
      int64_t deadline) {
    uint8_t head[2];
    if(dill_brecv(s, head, 2, deadline) < 0) return -1;
    if(head[0] != LOGIN_VERSION) return fail(EPROTO);
    /* The username and, behind it, the length of the password. */
    char username[FIELD_MAX + 2], password[FIELD_MAX + 1];
    size_t ulen = head[1];
    if(dill_brecv(s, username, ulen + 1, deadline) < 0) return -1;
    size_t plen = (uint8_t)username[ulen];
    username[ulen] = 0;
    int rc = dill_brecv(s, password, plen, deadline);
    password[plen] = 0;
    if(rc < 0) {
        wipe(password, sizeof(password));
        return -1;
    }
    /* auth_fn sees C strings: a NUL inside a field would cut it short and
       make it check something else than what was sent. Refused unseen. */
    int ok = !memchr(username, 0, ulen) && !memchr(password, 0, plen) &&
        auth_fn(username, password);
    wipe(password, sizeof(password));
    const uint8_t status[2] = {LOGIN_VERSION, ok ? 0x00 : 0xFF};
    if(dill_bsend(s, status, 2, deadline) < 0) return -1;
    return ok ? 0 : fail(EACCES);
}

DILL_EXPORT int dill_socks5_proxy_auth(int s,
      dill_socks5_auth_function *auth_fn, int64_t deadline) {
    uint8_t head[2];
    if(dill_brecv(s, head, 2, deadline) < 0) return -1;
    if(head[0] != SOCKS_VERSION) return fail(EPROTO);
    uint8_t methods[FIELD_MAX];
    if(dill_brecv(s, methods, head[1], deadline) < 0) return -1;
    int none = memchr(methods, METHOD_NONE, head[1]) != NULL;
    int login = memchr(methods, METHOD_LOGIN, head[1]) != NULL;
    /* With auth_fn a login is required even if the client would do without
       one; without it only "no authentication" is accepted. */
    if(!auth_fn && none) return choose_method(s, METHOD_NONE, deadline);
    if(auth_fn && login) {
        if(choose_method(s, METHOD_LOGIN, deadline) < 0) return -1;
        return proxy_login(s, auth_fn, deadline);
    }
    if(choose_method(s, METHOD_REFUSED, deadline) < 0) return -1;
    return fail(EACCES);
}

/* A request, read whole. host is the address in text form or the name. */
struct request {
    int cmd;
    int atyp;
    char host[FIELD_MAX + 1];
    int port;
};

static int recv_request(int s, struct request *r, int64_t deadline) {
    uint8_t head[4];
    if(dill_brecv(s, head, 4, deadline) < 0) return -1;
    if(head[0] != SOCKS_VERSION || head[2] != 0x00) return fail(EPROTO);
    if(head[1] < DILL_SOCKS5_CONNECT || head[1] > DILL_SOCKS5_UDP_ASSOCIATE)
        return fail(EPROTO);
    r->cmd = head[1];
    r->atyp = head[3];
    uint8_t buf[FIELD_MAX + 2];
    size_t len;
    switch(r->atyp) {
    case ATYP_IPV4: len = 4; break;
    case ATYP_IPV6: len = 16; break;
    case ATYP_NAME:
        if(dill_brecv(s, buf, 1, deadline) < 0) return -1;
        len = buf[0];
        break;
    default:
        /* The length of what follows is unknown: nothing more is read. */
        return fail(EPROTO);
    }
    if(dill_brecv(s, buf, len + 2, deadline) < 0) return -1;
    r->port = buf[len] << 8 | buf[len + 1];
    if(r->atyp == ATYP_NAME) {
        /* The request is read whole, so the caller can still reply. An
           empty name names nothing; one with a NUL would be cut short. */
        if(len == 0 || memchr(buf, 0, len)) return fail(EPROTO);
        memcpy(r->host, buf, len);
        r->host[len] = 0;
        return 0;
    }
    inet_ntop(r->atyp == ATYP_IPV4 ? AF_INET : AF_INET6, buf, r->host,
        sizeof(r->host));
    return 0;
}

DILL_EXPORT int dill_socks5_proxy_recvcommand(int s,
      struct dill_ipaddr *ipaddr, int64_t deadline) {
    if(!ipaddr) return fail(EINVAL);
    struct request r;
    if(recv_request(s, &r, deadline) < 0) return -1;
    /* Literals never reach the resolver; the result is written only when
       everything has worked. */
    struct dill_ipaddr addr;
    int rc;
    switch(r.atyp) {
    case ATYP_IPV4:
        rc = dill_ipaddr_local(&addr, r.host, r.port, DILL_IPADDR_IPV4);
        break;
    case ATYP_IPV6:
        rc = dill_ipaddr_local(&addr, r.host, r.port, DILL_IPADDR_IPV6);
        break;
    default:
        rc = dill_ipaddr_remote(&addr, r.host, r.port, DILL_IPADDR_PREF_IPV4,
            deadline);
        break;
    }
    if(rc < 0) return -1;
    memcpy(ipaddr, &addr, sizeof(addr));
    return r.cmd;
}

DILL_EXPORT int dill_socks5_proxy_recvcommandbyname(int s, char *host,
      int *port, int64_t deadline) {
    if(!host || !port) return fail(EINVAL);
    struct request r;
    if(recv_request(s, &r, deadline) < 0) return -1;
    strcpy(host, r.host);
    *port = r.port;
    return r.cmd;
}

DILL_EXPORT int dill_socks5_proxy_sendreply(int s, int reply,
      struct dill_ipaddr *ipaddr, int64_t deadline) {
    if(reply < DILL_SOCKS5_SUCCESS ||
          reply > DILL_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED)
        return fail(EINVAL);
    uint8_t msg[3 + 1 + 16 + 2] = {SOCKS_VERSION, (uint8_t)reply, 0x00};
    int len = put_ipaddr(msg + 3, ipaddr);
    if(len < 0) return -1;
    return dill_bsend(s, msg, 3 + (size_t)len, deadline);
}
