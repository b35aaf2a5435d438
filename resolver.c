/*
 * resolver.c: the stub resolver behind ipaddr_remote(s). It owns the
 * configuration cache (/etc/resolv.conf, /etc/hosts, /etc/nsswitch.conf,
 * checked for changes at most once a second and re-read when they
 * change), the hosts-file search and the DNS exchanges: one A or AAAA
 * query per try over a fresh non-blocking UDP socket (so a fresh random
 * source port), a random id per query, a retransmission to the next
 * server when a try times out, TCP when a reply is truncated. The message
 * format itself is dns.c's. The calling coroutine waits with fdin/fdout;
 * the thread never blocks on the network.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined DILL_THREADS
#include <pthread.h>
#endif

#include "alloc.h"
#include "cr.h"
#include "random.h"
#include "dns.h"
#include "resolver.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define HOSTS "/etc/hosts"
#define NSSWITCH_CONF "/etc/nsswitch.conf"

/* The limits glibc applies to resolv.conf (resolv.h: MAXNS, MAXDNSRCH,
   RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY). */
#define MAXNS 3
#define MAXSEARCH 6
#define MAXNDOTS 15
#define MAXTIMEOUT 30
#define MAXATTEMPTS 5

/* The files are looked at no more often than this (ms). */
#define RECHECK 1000

/* A 64 KiB TCP reply holds at most about 4,000 address records. */
#define MAXFOUND 4096

union sa {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

enum source { SRC_FILES, SRC_DNS };

struct conf {
    union sa ns[MAXNS];
    int nns;
    char search[MAXSEARCH][DILL_DNS_MAXTEXT + 2];
    int nsearch;
    int ndots;
    int timeout;  /* ms per try */
    int attempts; /* rounds over the server list */
    /* The hosts: line of nsswitch.conf: sources in order, and whether a
       source marked [NOTFOUND=return] ends the lookup. */
    uint8_t order[2];
    uint8_t stop[2];
    int norder;
};

/* ---- Files ------------------------------------------------------------ */

/* A configuration file and what identifies the version that was read. */
struct file {
    const char *path;
    int known;   /* looked at least once */
    int present; /* data holds its contents */
    int err;     /* why it is not present */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char *data;
    size_t len;
};

static struct {
    struct file resolv;
    struct file hosts;
    struct file nsswitch;
    int64_t checked; /* now() of the last look at the files; 0: never */
    int stale;       /* resolv.conf or nsswitch.conf changed since conf */
    int err;         /* 0, or why resolv.conf cannot be used */
    struct conf conf;
} cache = {
    .resolv = {.path = RESOLV_CONF},
    .hosts = {.path = HOSTS},
    .nsswitch = {.path = NSSWITCH_CONF}
};

/* The cache is shared by the schedulers of all threads. It is held only
   while files are read and searched, never across a wait. */
#if defined DILL_THREADS
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static void lock(void) {pthread_mutex_lock(&cache_lock);}
static void unlock(void) {pthread_mutex_unlock(&cache_lock);}
#else
static void lock(void) {}
static void unlock(void) {}
#endif

static struct timespec mtime_of(const struct stat *st) {
#if defined __APPLE__
    return st->st_mtimespec;
#else
    return st->st_mtim;
#endif
}

static int same_version(const struct file *f, const struct stat *st) {
    struct timespec m = mtime_of(st);
    return f->dev == st->st_dev && f->ino == st->st_ino &&
        f->size == st->st_size && f->mtime.tv_sec == m.tv_sec &&
        f->mtime.tv_nsec == m.tv_nsec;
}

/* Errors that say nothing about the file: try again at the next call. */
static int transient(int err) {
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR;
}

static void file_drop(struct file *f, int err) {
    free(f->data);
    f->data = NULL;
    f->len = 0;
    f->present = 0;
    f->known = 1;
    f->err = err;
}

/* Read the whole file into a new buffer, NUL-terminated. */
static int file_read(struct file *f) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if(fd < 0) return -1;
    struct stat st;
    if(fstat(fd, &st) < 0) goto fail;
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    size_t len = 0;
    char *data = dill_malloc(cap);
    if(!data) goto fail;
    while(1) {
        if(len + 1 == cap) {
            char *bigger = dill_realloc(data, cap * 2);
            if(!bigger) {
                free(data);
                goto fail;
            }
            data = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, data + len, cap - 1 - len);
        if(n < 0 && errno == EINTR) continue;
        if(n < 0) {
            free(data);
            goto fail;
        }
        if(n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    data[len] = 0;
    free(f->data);
    f->data = data;
    f->len = len;
    f->known = 1;
    f->present = 1;
    f->err = 0;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->mtime = mtime_of(&st);
    return 0;
fail:;
    int err = errno;
    close(fd);
    errno = err;
    return -1;
}

/* 1 if the file changed (appeared, went, or is another version) and was
   re-read, 0 if it is as before, -1 on a transient error. */
static int file_refresh(struct file *f) {
    struct stat st;
    if(stat(f->path, &st) < 0) {
        if(transient(errno)) return -1;
        if(f->known && !f->present && f->err == errno) return 0;
        file_drop(f, errno);
        return 1;
    }
    if(f->present && same_version(f, &st)) return 0;
    if(file_read(f) < 0) {
        if(transient(errno)) return -1;
        file_drop(f, errno);
    }
    return 1;
}

/* ---- Parsing ---------------------------------------------------------- */

/* A piece of a text, [p, end). */
struct span {
    const char *p;
    const char *end;
};

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* The next line after *pos, cut at the first of the comment characters. */
static int next_line(const char **pos, const char *end, struct span *line,
      const char *comment) {
    if(*pos >= end) return 0;
    const char *nl = memchr(*pos, '\n', (size_t)(end - *pos));
    line->p = *pos;
    line->end = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    for(const char *c = line->p; c < line->end; c++) {
        if(*c && strchr(comment, *c)) {
            line->end = c;
            break;
        }
    }
    return 1;
}

static int next_token(struct span *line, struct span *tok) {
    while(line->p < line->end && is_blank(*line->p)) line->p++;
    if(line->p == line->end) return 0;
    tok->p = line->p;
    while(line->p < line->end && !is_blank(*line->p)) line->p++;
    tok->end = line->p;
    return 1;
}

static size_t span_len(const struct span *s) {
    return (size_t)(s->end - s->p);
}

static int span_is(const struct span *s, const char *word) {
    size_t n = strlen(word);
    return span_len(s) == n && memcmp(s->p, word, n) == 0;
}

/* The token as a C string; -1 if it does not fit. */
static int span_copy(const struct span *s, char *buf, size_t size) {
    size_t n = span_len(s);
    if(n >= size) return -1;
    memcpy(buf, s->p, n);
    buf[n] = 0;
    return 0;
}

static char fold(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* ASCII case-insensitive comparison of n bytes (the locale plays no part
   in host names). */
static int same_text(const char *a, const char *b, size_t n) {
    for(size_t i = 0; i < n; i++)
        if(fold(a[i]) != fold(b[i])) return 0;
    return 1;
}

/* An IPv6 address may carry a zone, "fe80::1%eth0" or "fe80::1%2". */
static uint32_t zone_index(const char *zone) {
    char *end;
    unsigned long n = strtoul(zone, &end, 10);
    if(*zone && !*end) return (uint32_t)n;
    return if_nametoindex(zone);
}

/* A textual address of family into bytes (and zone). 1 if it is one. */
static int parse_addr(const struct span *s, int family, uint8_t *bytes,
      uint32_t *zone) {
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if(span_copy(s, text, sizeof(text)) < 0) return 0;
    *zone = 0;
    char *pct = strchr(text, '%');
    if(pct) {
        if(family != AF_INET6) return 0;
        *pct++ = 0;
    }
    if(inet_pton(family, text, bytes) != 1) return 0;
    if(pct) *zone = zone_index(pct);
    return 1;
}

static int parse_ns(union sa *u, const struct span *s) {
    uint8_t bytes[16];
    uint32_t zone;
    memset(u, 0, sizeof(*u));
    if(parse_addr(s, AF_INET, bytes, &zone)) {
        u->in.sin_family = AF_INET;
        u->in.sin_port = htons(53);
        memcpy(&u->in.sin_addr, bytes, 4);
        return 0;
    }
    if(parse_addr(s, AF_INET6, bytes, &zone)) {
        u->in6.sin6_family = AF_INET6;
        u->in6.sin6_port = htons(53);
        memcpy(&u->in6.sin6_addr, bytes, 16);
        u->in6.sin6_scope_id = zone;
        return 0;
    }
    return -1;
}

/* "name:N" sets *val to N clamped to lo..hi; other tokens are ignored. */
static void parse_option(const struct span *s, const char *name, int lo,
      int hi, int *val) {
    size_t n = strlen(name);
    if(span_len(s) <= n + 1 || memcmp(s->p, name, n) != 0 || s->p[n] != ':')
        return;
    char num[16];
    struct span v = {s->p + n + 1, s->end};
    if(span_copy(&v, num, sizeof(num)) < 0) return;
    char *end;
    long x = strtol(num, &end, 10);
    if(end == num || *end) return;
    *val = x < lo ? lo : x > hi ? hi : (int)x;
}

static void parse_search(struct conf *c, struct span *line) {
    struct span tok;
    c->nsearch = 0;
    while(c->nsearch < MAXSEARCH && next_token(line, &tok))
        if(span_copy(&tok, c->search[c->nsearch], sizeof(c->search[0])) == 0)
            c->nsearch++;
}

/* resolv.conf(5). "domain" and "search" replace each other: the last one
   wins. "lookup" (the BSD form of nsswitch's hosts: line) gives the order
   of sources when nsswitch.conf has none. */
static void parse_resolv(struct conf *c, const char *text, size_t len) {
    const char *pos = text;
    struct span line, tok;
    while(next_line(&pos, text + len, &line, "#;")) {
        if(!next_token(&line, &tok)) continue;
        if(span_is(&tok, "nameserver")) {
            if(c->nns < MAXNS && next_token(&line, &tok) &&
                  parse_ns(&c->ns[c->nns], &tok) == 0)
                c->nns++;
        }
        else if(span_is(&tok, "domain") || span_is(&tok, "search")) {
            parse_search(c, &line);
        }
        else if(span_is(&tok, "options")) {
            int secs = c->timeout / 1000;
            while(next_token(&line, &tok)) {
                parse_option(&tok, "ndots", 0, MAXNDOTS, &c->ndots);
                parse_option(&tok, "timeout", 1, MAXTIMEOUT, &secs);
                parse_option(&tok, "attempts", 1, MAXATTEMPTS, &c->attempts);
            }
            c->timeout = secs * 1000;
        }
        else if(span_is(&tok, "lookup")) {
            c->norder = 0;
            while(c->norder < 2 && next_token(&line, &tok)) {
                if(span_is(&tok, "file")) c->order[c->norder++] = SRC_FILES;
                else if(span_is(&tok, "bind")) c->order[c->norder++] = SRC_DNS;
            }
        }
    }
}

/* nsswitch.conf(5): the hosts: line. Services other than files and dns
   (mdns, myhostname, resolve, ...) are not ours to run and are skipped
   together with their actions; [NOTFOUND=return] after files or dns
   ends the lookup there when that source does not know the name. */
static void parse_nsswitch(struct conf *c, const char *text, size_t len) {
    const char *pos = text;
    struct span line, tok;
    while(next_line(&pos, text + len, &line, "#")) {
        if(!next_token(&line, &tok) || span_len(&tok) < 6 ||
              memcmp(tok.p, "hosts:", 6) != 0)
            continue;
        line.p = tok.p + 6;
        int n = 0, last = -1;
        uint8_t order[2], stop[2] = {0, 0};
        while(next_token(&line, &tok)) {
            if(tok.p[0] == '[') {
                /* An action list, "[NOTFOUND=return]" or "[ a=b c=d ]". */
                int notfound_return = 0;
                while(1) {
                    struct span item = tok;
                    if(item.p[0] == '[') item.p++;
                    int closed = item.p < item.end && item.end[-1] == ']';
                    if(closed) item.end--;
                    if(span_len(&item) == 15 &&
                          same_text(item.p, "NOTFOUND=return", 15))
                        notfound_return = 1;
                    if(closed || !next_token(&line, &tok)) break;
                }
                if(last >= 0 && notfound_return) stop[last] = 1;
                last = -1;
                continue;
            }
            last = -1;
            int src = span_is(&tok, "files") ? SRC_FILES :
                span_is(&tok, "dns") ? SRC_DNS : -1;
            if(src < 0) continue;
            int dup = 0;
            for(int i = 0; i < n; i++) dup |= order[i] == src;
            if(dup || n == 2) continue;
            last = n;
            order[n++] = (uint8_t)src;
        }
        if(n > 0) {
            memcpy(c->order, order, sizeof(order));
            memcpy(c->stop, stop, sizeof(stop));
            c->norder = n;
        }
        return;
    }
}

/* Without search or domain, the search list is the domain part of the
   host name, if it has one. */
static void default_search(struct conf *c) {
    char host[256];
    if(gethostname(host, sizeof(host)) < 0) return;
    host[sizeof(host) - 1] = 0;
    char *dot = strchr(host, '.');
    if(!dot || !dot[1] || strlen(dot + 1) >= sizeof(c->search[0])) return;
    strcpy(c->search[0], dot + 1);
    c->nsearch = 1;
}

static void parse_conf(struct conf *c) {
    memset(c, 0, sizeof(*c));
    c->ndots = 1;
    c->timeout = 5000;
    c->attempts = 2;
    c->nsearch = -1;
    c->order[0] = SRC_FILES;
    c->order[1] = SRC_DNS;
    c->norder = 2;
    parse_resolv(c, cache.resolv.data, cache.resolv.len);
    if(cache.nsswitch.present)
        parse_nsswitch(c, cache.nsswitch.data, cache.nsswitch.len);
    if(c->nns == 0) {
        /* No nameserver line: the local host, as glibc does. */
        c->ns[0].in.sin_family = AF_INET;
        c->ns[0].in.sin_port = htons(53);
        c->ns[0].in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->nns = 1;
    }
    if(c->nsearch < 0) {
        c->nsearch = 0;
        default_search(c);
    }
}

/* Look at the files if a second has passed since the last look; re-parse
   the configuration when one of them changed. Called with the lock held.
   0, or -1 with errno ENOENT when resolv.conf cannot be read (or a
   transient error: EMFILE, ENFILE, ENOMEM). */
static int refresh(void) {
    int64_t t = dill_now();
    if(cache.checked == 0 || t - cache.checked >= RECHECK) {
        int a = file_refresh(&cache.resolv);
        int b = file_refresh(&cache.nsswitch);
        int c = file_refresh(&cache.hosts);
        /* A file read by a look that fails on another one is as it is
           now, and the next look sees no change: it must still be
           parsed then. */
        if(a > 0 || b > 0) cache.stale = 1;
        if(a < 0 || b < 0 || c < 0) {
            /* Look again next time: nothing about the files was learnt. */
            cache.checked = 0;
            return -1;
        }
        cache.checked = t;
        if(cache.stale) {
            cache.stale = 0;
            cache.err = cache.resolv.present ? 0 : ENOENT;
            if(!cache.err) parse_conf(&cache.conf);
        }
    }
    if(cache.err) {
        errno = cache.err;
        return -1;
    }
    return 0;
}

/* ---- Results ---------------------------------------------------------- */

static void put(struct dill_ipaddr *out, int family, const uint8_t *bytes,
      uint32_t zone, int port) {
    union sa u;
    memset(&u, 0, sizeof(u));
    if(family == AF_INET) {
        u.in.sin_family = AF_INET;
        u.in.sin_port = htons((uint16_t)port);
        memcpy(&u.in.sin_addr, bytes, 4);
    }
    else {
        u.in6.sin6_family = AF_INET6;
        u.in6.sin6_port = htons((uint16_t)port);
        memcpy(&u.in6.sin6_addr, bytes, 16);
        u.in6.sin6_scope_id = zone;
    }
#if defined __APPLE__ || defined __FreeBSD__ || defined __OpenBSD__ || \
    defined __NetBSD__ || defined __DragonFly__
    u.sa.sa_len = family == AF_INET ? sizeof(struct sockaddr_in) :
        sizeof(struct sockaddr_in6);
#endif
    memset(out, 0, sizeof(*out));
    memcpy(out, &u, sizeof(u));
}

/* One lookup in progress. Allocated, so that the resolver runs on the
   smallest coroutine stacks. */
struct lookup {
    struct conf conf;
    const char *name;
    size_t namelen; /* without a trailing dot */
    int family;
    int type;
    int port;
    int64_t deadline;
    struct dill_ipaddr *out;
    int nout;
    int count;
    struct dill_dns_question q;
    uint8_t rnd[32];
    size_t nrnd;
    uint8_t msg[2 + DILL_DNS_MAXQUERY];
    uint8_t reply[DILL_DNS_MAXUDP];
    char cand[DILL_DNS_MAXTEXT + 2];
    int cap;
    struct dill_dns_addr found[];
};

/* ---- /etc/hosts ------------------------------------------------------- */

static int same_name(const struct span *tok, const char *name,
      size_t namelen) {
    size_t n = span_len(tok);
    if(n > 0 && tok->p[n - 1] == '.') n--;
    return n == namelen && same_text(tok->p, name, n);
}

/* hosts(5): address, canonical name, aliases. Every line naming the host
   contributes its address if it is of the family asked for, in file
   order. Returns the number stored; *known is set if any line names the
   host, whatever the family. Called with the lock held. */
static int hosts_search(struct lookup *lk, int *known) {
    const struct file *f = &cache.hosts;
    int n = 0;
    *known = 0;
    if(!f->present) return 0;
    const char *pos = f->data;
    struct span line, tok, addr;
    while(n < lk->nout && next_line(&pos, f->data + f->len, &line, "#")) {
        if(!next_token(&line, &addr)) continue;
        int match = 0;
        while(!match && next_token(&line, &tok))
            match = same_name(&tok, lk->name, lk->namelen);
        if(!match) continue;
        *known = 1;
        uint8_t bytes[16];
        uint32_t zone;
        if(parse_addr(&addr, lk->family, bytes, &zone))
            put(&lk->out[n++], lk->family, bytes, zone, lk->port);
    }
    return n;
}

/* RFC 6761 §6.3: "localhost" and the names under it never go to a
   nameserver. The hosts file answers for the ones it lists, the others
   are the loopback address. */
static int is_localhost(const char *name, size_t namelen) {
    static const char lh[] = "localhost";
    size_t n = sizeof(lh) - 1;
    if(namelen < n || !same_text(name + namelen - n, lh, n)) return 0;
    return namelen == n || name[namelen - n - 1] == '.';
}

static int loopback(struct lookup *lk) {
    static const uint8_t v4[4] = {127, 0, 0, 1};
    static const uint8_t v6[16] = {[15] = 1};
    put(&lk->out[0], lk->family, lk->family == AF_INET ? v4 : v6, 0,
        lk->port);
    return 1;
}

/* ---- DNS exchanges ---------------------------------------------------- */

/* What a try with one server came to. -1 (not listed) is a failure of the
   whole lookup: the caller's deadline, cancellation, no fds or memory. */
enum outcome {
    FOUND = 1,  /* addresses in lk->found, lk->count of them */
    NOTFOUND,   /* NXDOMAIN, or no record of the type */
    FAILED,     /* the server could not answer: SERVFAIL, REFUSED, ICMP */
    NOREPLY,    /* no answer within the resolver's timeout */
    TRUNCATED   /* ask again over TCP */
};

static void random_fill(uint8_t *buf, size_t len) {
    size_t got = dill_random_fill(buf, len) == 0 ? len : 0;
    /* No entropy source at all (a chroot without /dev, early boot): mix
       what varies, so that ids at least differ between queries. */
    static uint64_t state;
    for(; got < len; got++) {
        state += 0x9e3779b97f4a7c15ULL ^ (uint64_t)dill_now() ^
            (uint64_t)(uintptr_t)buf;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        buf[got] = (uint8_t)(z ^ (z >> 31));
    }
}

static uint16_t random_id(struct lookup *lk) {
    if(lk->nrnd < 2) {
        random_fill(lk->rnd, sizeof(lk->rnd));
        lk->nrnd = sizeof(lk->rnd);
    }
    lk->nrnd -= 2;
    return (uint16_t)(lk->rnd[lk->nrnd] << 8 | lk->rnd[lk->nrnd + 1]);
}

static socklen_t sa_len(const union sa *u) {
    return u->sa.sa_family == AF_INET ? sizeof(struct sockaddr_in) :
        sizeof(struct sockaddr_in6);
}

static int same_peer(const union sa *a, const union sa *b) {
    if(a->sa.sa_family != b->sa.sa_family) return 0;
    if(a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port &&
            a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return a->in6.sin6_port == b->in6.sin6_port &&
        memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

/* Close one of our sockets; errno survives. */
static void close_fd(int fd) {
    int err = errno;
    dill_fdclean(fd);
    close(fd);
    errno = err;
}

/* socket(): running out of fds or memory ends the lookup; anything else
   (no IPv6 in this kernel, a sandbox) is this server's failure. */
static int open_socket(const union sa *ns, int type) {
    int fd = socket(ns->sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if(fd >= 0) return fd;
    if(errno == EMFILE || errno == ENFILE || errno == ENOMEM) return -1;
    if(errno == ENOBUFS) {
        errno = ENOMEM;
        return -1;
    }
    return -2;
}

/* A try lasts the configured timeout, or less if the caller's deadline
   comes first; *capped says which. No query is sent once the caller's
   deadline has passed (deadline 0 included): an answer always takes a
   wait, so the try would fail anyway, or succeed only by a race. */
static int try_deadline(const struct lookup *lk, int64_t *deadline,
      int *capped) {
    int64_t t = dill_now();
    if(lk->deadline >= 0 && lk->deadline <= t) {
        errno = ETIMEDOUT;
        return -1;
    }
    int64_t d = t + lk->conf.timeout;
    *capped = lk->deadline >= 0 && lk->deadline <= d;
    *deadline = *capped ? lk->deadline : d;
    return 0;
}

/* 0 when fd is ready, NOREPLY when the try's own time ran out, -1 with
   errno (ETIMEDOUT at the caller's deadline, ECANCELED, ...). */
static int await(int fd, int out, int64_t deadline, int capped) {
    int rc = out ? dill_fdout(fd, deadline) : dill_fdin(fd, deadline);
    if(rc == 0) return 0;
    if(errno == ETIMEDOUT && !capped) return NOREPLY;
    return -1;
}

static int outcome_of(enum dill_dns_result rc, int count) {
    switch(rc) {
    case DILL_DNS_OK: return count > 0 ? FOUND : NOTFOUND;
    case DILL_DNS_NXDOMAIN: return NOTFOUND;
    case DILL_DNS_TRUNCATED: return TRUNCATED;
    default: return FAILED;
    }
}

static int udp_exchange(struct lookup *lk, int fd, const union sa *ns,
      int64_t deadline, int capped) {
    union sa peer;
    socklen_t plen = sizeof(peer);
    /* Connected, the socket only accepts datagrams from the server, and an
       ICMP refusal comes back as ECONNREFUSED. */
    if(connect(fd, &ns->sa, sa_len(ns)) < 0 ||
          getpeername(fd, &peer.sa, &plen) < 0)
        return FAILED;
    lk->q.id = random_id(lk);
    int n = dill_dns_query(lk->msg, sizeof(lk->msg), &lk->q);
    if(n < 0 || send(fd, lk->msg, (size_t)n, 0) < 0) return FAILED;
    while(1) {
        union sa from;
        struct iovec iov = {lk->reply, sizeof(lk->reply)};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from),
            .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t r = recvmsg(fd, &mh, 0);
        if(r < 0 && errno == EINTR) continue;
        if(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = await(fd, 0, deadline, capped);
            if(w != 0) return w;
            continue;
        }
        if(r < 0) return FAILED;
        if(!same_peer(&from, &peer)) continue;
        int count;
        enum dill_dns_result rc = dill_dns_parse(&lk->q, lk->reply,
            (size_t)r, lk->found, lk->cap, &count);
        /* Not a reply to this query: as if it never came, the real reply
           may follow. */
        if(rc == DILL_DNS_MISMATCH) continue;
        /* Bigger than a UDP reply may be without EDNS (RFC 1035 §4.2.1),
           yet it answers our question: get it whole over TCP. */
        if(mh.msg_flags & MSG_TRUNC) return TRUNCATED;
        /* Unreadable: as if lost. */
        if(rc == DILL_DNS_MALFORMED) continue;
        lk->count = count;
        return outcome_of(rc, count);
    }
}

static int udp_try(struct lookup *lk, const union sa *ns) {
    int capped;
    int64_t deadline;
    if(try_deadline(lk, &deadline, &capped) < 0) return -1;
    int fd = open_socket(ns, SOCK_DGRAM);
    if(fd == -2) return FAILED;
    if(fd < 0) return -1;
    int rc = udp_exchange(lk, fd, ns, deadline, capped);
    close_fd(fd);
    return rc;
}

/* Move len bytes over the stream: 0, FAILED (reset, end of stream),
   NOREPLY or -1, as await. */
static int tcp_io(int fd, uint8_t *buf, size_t len, int out,
      int64_t deadline, int capped) {
    while(len > 0) {
        ssize_t n = out ? send(fd, buf, len, MSG_NOSIGNAL) :
            recv(fd, buf, len, 0);
        if(n < 0 && errno == EINTR) continue;
        if(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = await(fd, out, deadline, capped);
            if(w != 0) return w;
            continue;
        }
        if(n <= 0) return FAILED;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* RFC 1035 §4.2.2: each message is preceded by its length in two bytes.
   The TCP connection is ours alone, so anything but the answer to the
   question is a failure of the server. */
static int tcp_exchange(struct lookup *lk, int fd, const union sa *ns,
      int64_t deadline, int capped) {
    if(connect(fd, &ns->sa, sa_len(ns)) < 0) {
        if(errno != EINPROGRESS) return FAILED;
        int w = await(fd, 1, deadline, capped);
        if(w != 0) return w;
        int err = 0;
        socklen_t elen = sizeof(err);
        if(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err)
            return FAILED;
    }
    lk->q.id = random_id(lk);
    int n = dill_dns_query_tcp(lk->msg, sizeof(lk->msg), &lk->q);
    if(n < 0) return FAILED;
    int rc = tcp_io(fd, lk->msg, (size_t)n, 1, deadline, capped);
    if(rc != 0) return rc;
    uint8_t head[2];
    rc = tcp_io(fd, head, 2, 0, deadline, capped);
    if(rc != 0) return rc;
    size_t len = (size_t)head[0] << 8 | head[1];
    uint8_t *msg = dill_malloc(len ? len : 1);
    if(!msg) return -1;
    rc = tcp_io(fd, msg, len, 0, deadline, capped);
    if(rc == 0) {
        int count;
        enum dill_dns_result res = dill_dns_parse(&lk->q, msg, len,
            lk->found, lk->cap, &count);
        lk->count = count;
        rc = outcome_of(res, count);
        if(rc == TRUNCATED) rc = FAILED;
    }
    free(msg);
    return rc;
}

static int tcp_try(struct lookup *lk, const union sa *ns) {
    int capped;
    int64_t deadline;
    if(try_deadline(lk, &deadline, &capped) < 0) return -1;
    int fd = open_socket(ns, SOCK_STREAM);
    if(fd == -2) return FAILED;
    if(fd < 0) return -1;
    int rc = tcp_exchange(lk, fd, ns, deadline, capped);
    close_fd(fd);
    return rc;
}

/* Ask for lk->cand: each round tries every server in turn, a server that
   does not answer in time is followed by the next one, and the rounds
   repeat attempts times (the retransmissions). NOREPLY only if no server
   ever answered or refused. */
static int ask(struct lookup *lk) {
    if(dill_dns_question(&lk->q, 0, lk->cand, lk->type) < 0) return NOTFOUND;
    int outcome = NOREPLY;
    for(int a = 0; a < lk->conf.attempts; a++) {
        for(int s = 0; s < lk->conf.nns; s++) {
            int rc = udp_try(lk, &lk->conf.ns[s]);
            if(rc == TRUNCATED) rc = tcp_try(lk, &lk->conf.ns[s]);
            if(rc < 0 || rc == FOUND || rc == NOTFOUND) return rc;
            if(rc == FAILED) outcome = FAILED;
        }
    }
    return outcome;
}

/* The names of the search list in turn (dill_dns_candidate), until one
   has addresses. When the servers do not answer at all, the other names
   would not fare better: stop, as glibc does. */
static int dns_search(struct lookup *lk) {
    const char *search[MAXSEARCH];
    for(int i = 0; i < lk->conf.nsearch; i++) search[i] = lk->conf.search[i];
    for(int i = 0;; i++) {
        int rc = dill_dns_candidate(lk->cand, sizeof(lk->cand), lk->name,
            lk->conf.ndots, search, lk->conf.nsearch, i);
        if(rc == 0) return NOTFOUND;
        if(rc < 0) continue;
        rc = ask(lk);
        if(rc < 0 || rc == FOUND || rc == NOREPLY) return rc;
    }
}

/* ---- The lookup ------------------------------------------------------- */

/* Address literals are not host names: ipaddr.c handles the ones of the
   right family, the others have no address of the family asked for. */
static int is_literal(const char *name) {
    struct in_addr a;
    return strchr(name, ':') || inet_pton(AF_INET, name, &a) == 1;
}

/* The hosts file, as it is now: the number of addresses stored, or -1
   (resolv.conf has gone: ENOENT). *known as hosts_search. */
static int files(struct lookup *lk, int *known) {
    lock();
    int n = refresh() < 0 ? -1 : hosts_search(lk, known);
    unlock();
    return n;
}

/* The sources in the configured order. */
static int run(struct lookup *lk) {
    int known, noreply = 0;
    if(is_literal(lk->name)) return 0;
    if(is_localhost(lk->name, lk->namelen)) {
        int n = files(lk, &known);
        return n < 0 || known ? n : loopback(lk);
    }
    for(int i = 0; i < lk->conf.norder; i++) {
        if(lk->conf.order[i] == SRC_FILES) {
            int n = files(lk, &known);
            /* The file speaks for the names it lists, for both families. */
            if(n < 0 || known) return n;
            if(lk->conf.stop[i]) return 0;
            continue;
        }
        int rc = dns_search(lk);
        if(rc < 0) return -1;
        if(rc == FOUND) {
            for(int j = 0; j < lk->count; j++)
                put(&lk->out[j], lk->family, lk->found[j].bytes, 0, lk->port);
            return lk->count;
        }
        if(rc == NOREPLY) noreply = 1;
        else if(lk->conf.stop[i]) return 0;
    }
    if(noreply) {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

int dill_resolve(struct dill_ipaddr *addrs, int naddrs, const char *name,
      int family, int port, int64_t deadline) {
    if(!dill_may_block_now()) return -1;
    int cap = naddrs < MAXFOUND ? naddrs : MAXFOUND;
    struct lookup *lk = dill_malloc(sizeof(*lk) +
        (size_t)cap * sizeof(struct dill_dns_addr));
    if(!lk) {
        errno = ENOMEM;
        return -1;
    }
    lk->name = name;
    lk->namelen = strlen(name);
    if(lk->namelen > 0 && name[lk->namelen - 1] == '.') lk->namelen--;
    lk->family = family;
    lk->type = family == AF_INET ? DILL_DNS_TYPE_A : DILL_DNS_TYPE_AAAA;
    lk->port = port;
    lk->deadline = deadline;
    lk->out = addrs;
    lk->nout = naddrs;
    lk->count = 0;
    lk->nrnd = 0;
    lk->cap = cap;
    lock();
    int rc = refresh();
    if(rc == 0) lk->conf = cache.conf;
    unlock();
    if(rc == 0) rc = run(lk);
    int err = errno;
    free(lk);
    errno = err;
    return rc;
}
