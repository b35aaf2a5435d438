/*
 * fuzz/socks5_proxy.c: the SOCKS5 proxy functions (socks5.c) reading
 * whatever a client may send. The first input byte picks whether an
 * auth_fn is given (and whether it accepts), which request function runs
 * and the reply code sent back; the rest is the client's side of the
 * stream. Each call must end in success or an error a client can cause,
 * with sane outputs. Requests naming a host go to recvcommandbyname only:
 * recvcommand would hand them to the resolver, which asks the network.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "memsock.h"

static int accept_all;

static int check(const char *username, const char *password) {
    if(strlen(username) > 255 || strlen(password) > 255) abort();
    return accept_all;
}

static void expect_errno(void) {
    if(errno != EPROTO && errno != EACCES && errno != EPIPE) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if(size < 1) return 0;
    int mode = data[0];
    accept_all = mode & 2;
    int s = memsock_make(data + 1, size - 1);
    struct memsock *m = (struct memsock *)((char *)dill_hquery(s,
        dill_bsock_type) - offsetof(struct memsock, bvfs));
    if(dill_socks5_proxy_auth(s, mode & 1 ? check : NULL, -1) < 0) {
        expect_errno();
        dill_hclose(s);
        return 0;
    }
    /* The address type of the request, if it is there. */
    int atyp = m->len - m->pos > 3 ? m->data[m->pos + 3] : 0;
    int cmd;
    if((mode & 4) && atyp != 3) {
        struct dill_ipaddr a;
        cmd = dill_socks5_proxy_recvcommand(s, &a, -1);
        if(cmd > 0) {
            int family = dill_ipaddr_family(&a);
            if(family != (atyp == 1 ? AF_INET : AF_INET6)) abort();
        }
    }
    else {
        char host[256 + 8];
        memset(host, 0x55, sizeof(host));
        int port = -1;
        cmd = dill_socks5_proxy_recvcommandbyname(s, host, &port, -1);
        for(size_t i = 256; i < sizeof(host); i++)
            if(host[i] != 0x55) abort();
        if(cmd > 0 && (strlen(host) > 255 || strlen(host) == 0 || port < 0 ||
              port > 65535))
            abort();
    }
    if(cmd < 0) expect_errno();
    else if(cmd < 1 || cmd > 3) abort();
    struct dill_ipaddr none;
    if(dill_ipaddr_local(&none, mode & 8 ? "::" : NULL, 0, 0) < 0) abort();
    int reply = (mode >> 4) % 10;
    int rc = dill_socks5_proxy_sendreply(s, reply, &none, -1);
    if(reply > 8 ? rc != -1 || errno != EINVAL : rc != 0) abort();
    dill_hclose(s);
    return 0;
}
