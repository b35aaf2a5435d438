/*
 * perf/http_raw.c: the yardstick for examples/httpd in perf/httpd: a
 * hand-written HTTP/1.1 responder on raw epoll, doing the same work.
 *
 *     http_raw PORT THREADS [more]
 *
 * Each thread has its own SO_REUSEPORT listener on 127.0.0.1:PORT, with
 * the socket options of examples/httpd (Nagle's algorithm on), and its own
 * level-triggered epoll set.
 * A connection's bytes collect in a buffer of its own; every complete head
 * in it (pipelined ones too) is parsed line by line the way the http_*
 * functions parse it: the request line split into command, resource and
 * version, each field into name and value, Connection and Content-Length
 * looked at. GET / gets the same 200 response as from examples/httpd,
 * written with one send (more: the head with MSG_MORE, then the body, the
 * two sends examples/httpd makes);
 * anything else 404. Keep-alive, a request body skipped, Connection: close
 * honoured. No libdill.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096

static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    "Content-Length: 27\r\n\r\nHello from libdill's httpd\n";
static const char missing[] = "HTTP/1.1 404 Not Found\r\n"
    "Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot found\n";

struct conn {
    int fd;
    size_t len;        /* bytes in buf */
    size_t skip;       /* request body bytes still to drop */
    const char *out;   /* response bytes not written yet */
    size_t outlen;
    int closing;       /* close once out is written */
    char buf[BUF_SIZE];
};

static int port;
static int more; /* the head with MSG_MORE, then the body */

/* A head's fields: what the responder needs of them. -1 for a head that
   does not parse. */
static int parse_head(char *head, size_t len, int *get_root, int *close_it,
      long *body) {
    char *end = head + len;
    char *eol = memmem(head, len, "\r\n", 2);
    char *p = head;
    while(p < eol && *p == ' ') p++;
    char *cmd = p;
    while(p < eol && *p != ' ') p++;
    if(p == eol) return -1;
    size_t cmdlen = (size_t)(p - cmd);
    while(p < eol && *p == ' ') p++;
    char *res = p;
    while(p < eol && *p != ' ') p++;
    if(p == eol) return -1;
    size_t reslen = (size_t)(p - res);
    while(p < eol && *p == ' ') p++;
    char *version = p;
    while(p < eol && *p != ' ') p++;
    if(p - version < 8) return -1;
    *get_root = cmdlen == 3 && memcmp(cmd, "GET", 3) == 0 && reslen == 1 &&
        res[0] == '/';
    *close_it = 0;
    *body = 0;
    for(p = eol + 2; p < end;) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if(eol == p) break;
        char *name = p;
        while(p < eol && *p != ':' && *p != ' ') p++;
        size_t namelen = (size_t)(p - name);
        while(p < eol && *p == ' ') p++;
        if(p == eol || *p != ':') return -1;
        p++;
        while(p < eol && *p == ' ') p++;
        char *value = p;
        size_t valuelen = (size_t)(eol - p);
        if(namelen == 10 && strncasecmp(name, "Connection", 10) == 0 &&
              valuelen == 5 && strncasecmp(value, "close", 5) == 0)
            *close_it = 1;
        if(namelen == 14 && strncasecmp(name, "Content-Length", 14) == 0)
            *body = strtol(value, NULL, 10);
        p = eol + 2;
    }
    return 0;
}

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Write what is pending; 1 when all is out, 0 when the socket is full,
   -1 on error. */
static int flush_out(int ep, struct conn *c) {
    while(c->outlen) {
        ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        if(n < 0 && errno == EAGAIN) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return 0;
        }
        if(n <= 0) return -1;
        c->out += n;
        c->outlen -= (size_t)n;
    }
    return 1;
}

/* Answer every complete head in the buffer. 0 to go on, -1 to close. */
static int serve(int ep, struct conn *c) {
    size_t pos = 0;
    while(c->outlen == 0) {
        if(c->skip) {
            size_t n = c->len - pos < c->skip ? c->len - pos : c->skip;
            pos += n;
            c->skip -= n;
            if(c->skip) break;
        }
        char *head = c->buf + pos;
        char *end = memmem(head, c->len - pos, "\r\n\r\n", 4);
        if(!end) break;
        size_t len = (size_t)(end + 4 - head);
        int get_root, close_it;
        long body;
        if(parse_head(head, len, &get_root, &close_it, &body) < 0 || body < 0)
            return -1;
        pos += len;
        c->skip = (size_t)body;
        c->out = get_root ? ok : missing;
        c->outlen = get_root ? sizeof(ok) - 1 : sizeof(missing) - 1;
        if(more) {
            /* The head first, as a layered server writes it. */
            size_t body = get_root ? 27 : 10;
            size_t head = c->outlen - body;
            ssize_t n = send(c->fd, c->out, head, MSG_NOSIGNAL | MSG_MORE);
            if(n < 0 && errno != EAGAIN) return -1;
            if(n > 0) {
                c->out += n;
                c->outlen -= (size_t)n;
            }
        }
        int rc = flush_out(ep, c);
        if(rc < 0 || (rc > 0 && close_it)) return -1;
        c->closing = close_it;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
    /* A head that does not fit the buffer is refused. */
    return c->len == BUF_SIZE ? -1 : 0;
}

static void *run(void *arg) {
    (void)arg;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET,
        .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if(ls < 0 ||
          setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
          setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
          bind(ls, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
          listen(ls, 1024) < 0) {
        perror("http_raw: listen");
        exit(1);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if(ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0) {
        perror("http_raw: epoll");
        exit(1);
    }
    for(;;) {
        struct epoll_event events[64];
        int n = epoll_wait(ep, events, 64, -1);
        for(int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if(!c) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if(fd < 0) continue;
                c = malloc(sizeof(*c));
                if(!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->len = c->skip = c->outlen = 0;
                c->closing = 0;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                continue;
            }
            if(events[i].events & EPOLLOUT) {
                int rc = flush_out(ep, c);
                if(rc < 0) {
                    drop(ep, c);
                    continue;
                }
                if(rc == 0) continue;
                struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
                /* Heads that came in meanwhile. */
                if(c->closing || serve(ep, c) < 0) {
                    drop(ep, c);
                    continue;
                }
            }
            ssize_t got = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
            if(got < 0 && errno == EAGAIN) continue;
            if(got <= 0) {
                drop(ep, c);
                continue;
            }
            c->len += (size_t)got;
            if(serve(ep, c) < 0) drop(ep, c);
        }
    }
    return NULL;
}

int main(int argc, char *argv[]) {
    if(argc == 4 && strcmp(argv[3], "more") == 0) more = 1;
    else if(argc != 3) {
        fprintf(stderr, "usage: %s PORT THREADS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int threads = atoi(argv[2]);
    if(port <= 0 || port > 65535 || threads < 1 || threads > 256) return 2;
    for(int i = 1; i < threads; i++) {
        pthread_t t;
        if(pthread_create(&t, NULL, run, NULL) != 0) return 1;
        pthread_detach(t);
    }
    run(NULL);
    return 0;
}
