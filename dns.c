/*
 * dns.c: DNS messages for the stub resolver (RFC 1035 §4). Builds A/AAAA
 * queries, validates a response against the question it claims to answer,
 * follows the CNAME chain inside the answer section and collects the
 * addresses; reads compressed names safely; applies the resolv.conf search
 * list. No I/O and no allocation: resolver.c owns the sockets, the
 * deadlines and the buffers. Every read of a message goes through a bounds
 * check against its length, because the bytes come from the network.
 */
#include <errno.h>
#include <string.h>

#include "dns.h"

#define HEADER_LEN 12
#define FLAG_QR 0x8000     /* response */
#define FLAG_TC 0x0200     /* truncated */
#define FLAG_RD 0x0100     /* recursion desired */
#define OPCODE(flags) (((flags) >> 11) & 0xf)
#define RCODE(flags) ((flags) & 0xf)

/* A name has at most 127 labels, so a legitimate compressed name never
   needs more pointer hops than that. Pointers that must point strictly
   backwards already rule out loops; this bounds the work as well. */
#define MAXHOPS 127

/* ---- Bytes ---------------------------------------------------------- */

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xff);
}

/* RFC 4343 §3: only the ASCII letters fold; every other byte is compared
   exactly. tolower() would depend on the locale. */
static uint8_t fold(uint8_t c) {
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* ---- Names ---------------------------------------------------------- */

/* Length of the dotted name without its trailing dot if it is a valid
   name (labels 1..63 bytes, at most 253 characters), else -1. */
static int text_len(const char *name) {
    size_t n = strlen(name);
    if(n > 0 && name[n - 1] == '.') n--;
    if(n == 0 || n > DILL_DNS_MAXTEXT) return -1;
    size_t label = 0;
    for(size_t i = 0; i <= n; i++) {
        if(i < n && name[i] != '.') {
            if(++label > DILL_DNS_MAXLABEL) return -1;
            continue;
        }
        if(label == 0) return -1;
        label = 0;
    }
    return (int)n;
}

/* Dotted name to wire form (RFC 1035 §3.1): each label preceded by its
   length, then the root's zero byte. Returns the wire length (n + 2). */
static int encode_name(uint8_t *out, const char *name) {
    int n = text_len(name);
    if(n < 0) return -1;
    int lenpos = 0, o = 1;
    for(int i = 0; i < n; i++) {
        if(name[i] == '.') {
            out[lenpos] = (uint8_t)(o - lenpos - 1);
            lenpos = o++;
            continue;
        }
        out[o++] = (uint8_t)name[i];
    }
    out[lenpos] = (uint8_t)(o - lenpos - 1);
    out[o++] = 0;
    return o;
}

/* Length of a wire-form name that is known to be valid. */
static size_t wire_len(const uint8_t *name) {
    size_t i = 0;
    while(i < DILL_DNS_MAXWIRE && name[i] != 0) i += 1 + name[i];
    return i + 1;
}

int dill_dns_name_equal(const uint8_t *a, const uint8_t *b) {
    size_t i = 0;
    while(i < DILL_DNS_MAXWIRE) {
        if(a[i] != b[i]) return 0;
        if(a[i] == 0) return 1;
        size_t end = i + 1 + a[i];
        if(end > DILL_DNS_MAXWIRE) return 0;
        for(i++; i < end; i++)
            if(fold(a[i]) != fold(b[i])) return 0;
    }
    return 0;
}

/* RFC 1035 §4.1.4: the top two bits of a length byte say what it is. 00 is
   a label, 11 a pointer to an earlier name; 01 and 10 are reserved (01
   held the extended label types of RFC 2671, deprecated by RFC 6891 §5,
   never deployed). A pointer may
   only point before the start of the label sequence being read: each hop
   then moves strictly backwards, so a chain of pointers ends. */
int dill_dns_name_read(const uint8_t *msg, size_t len, size_t pos,
      uint8_t *out, size_t *next) {
    size_t start = pos;   /* first byte of the current label sequence */
    size_t outlen = 0;
    int hops = 0;
    int jumped = 0;
    while(1) {
        if(pos >= len) return -1;
        uint8_t b = msg[pos];
        if((b & 0xc0) == 0xc0) {
            if(len - pos < 2) return -1;
            size_t target = (size_t)(b & 0x3f) << 8 | msg[pos + 1];
            if(target >= start || ++hops > MAXHOPS) return -1;
            if(!jumped) *next = pos + 2;
            jumped = 1;
            pos = start = target;
            continue;
        }
        if(b & 0xc0) return -1;
        /* len - pos - 1 cannot wrap: pos < len. */
        if(b > len - pos - 1) return -1;
        if(outlen + 1 + b > DILL_DNS_MAXWIRE) return -1;
        memcpy(out + outlen, msg + pos, 1 + (size_t)b);
        outlen += 1 + (size_t)b;
        pos += 1 + (size_t)b;
        if(b == 0) break;
    }
    if(!jumped) *next = pos;
    return (int)outlen;
}

/* ---- Queries -------------------------------------------------------- */

int dill_dns_question(struct dill_dns_question *q, uint16_t id,
      const char *name, int type) {
    if(!q || !name ||
          (type != DILL_DNS_TYPE_A && type != DILL_DNS_TYPE_AAAA)) {
        errno = EINVAL;
        return -1;
    }
    if(encode_name(q->name, name) < 0) {
        errno = EINVAL;
        return -1;
    }
    q->id = id;
    q->type = (uint16_t)type;
    return 0;
}

int dill_dns_query(uint8_t *buf, size_t len,
      const struct dill_dns_question *q) {
    size_t namelen = wire_len(q->name);
    size_t total = HEADER_LEN + namelen + 4;
    if(len < total) {
        errno = EMSGSIZE;
        return -1;
    }
    /* RFC 1035 §4.1.1: a standard query asking for recursion, with one
       question and no records in the other sections. */
    memset(buf, 0, HEADER_LEN);
    put16(buf, q->id);
    put16(buf + 2, FLAG_RD);
    put16(buf + 4, 1);
    memcpy(buf + HEADER_LEN, q->name, namelen);
    put16(buf + HEADER_LEN + namelen, q->type);
    put16(buf + HEADER_LEN + namelen + 2, DILL_DNS_CLASS_IN);
    return (int)total;
}

int dill_dns_query_tcp(uint8_t *buf, size_t len,
      const struct dill_dns_question *q) {
    if(len < 2) {
        errno = EMSGSIZE;
        return -1;
    }
    int n = dill_dns_query(buf + 2, len - 2, q);
    if(n < 0) return -1;
    put16(buf, (uint16_t)n);
    return n + 2;
}

/* ---- Responses ------------------------------------------------------ */

/* A resource record (RFC 1035 §4.1.3) as found in the message. */
struct rr {
    uint8_t owner[DILL_DNS_MAXWIRE];
    uint16_t type;
    uint16_t class;
    size_t rdata;   /* offset of RDATA */
    size_t rdlen;
    size_t next;    /* offset of the following record */
};

/* The bytes of a record of a type we use must be what that type says:
   exactly 4 for A, 16 for AAAA (RFC 3596 §2.2), one name for CNAME. Other
   classes give other meanings to the same type numbers, so only IN is
   checked; other types are skipped unread. */
static int check_rdata(const uint8_t *msg, const struct rr *rr) {
    if(rr->class != DILL_DNS_CLASS_IN) return 0;
    switch(rr->type) {
    case DILL_DNS_TYPE_A:
        return rr->rdlen == 4 ? 0 : -1;
    case DILL_DNS_TYPE_AAAA:
        return rr->rdlen == 16 ? 0 : -1;
    case DILL_DNS_TYPE_CNAME: {
        /* Reading is bounded by RDATA: the name may point back into the
           message, but its own bytes must fill RDATA exactly. */
        uint8_t target[DILL_DNS_MAXWIRE];
        size_t end;
        size_t rdend = rr->rdata + rr->rdlen;
        if(dill_dns_name_read(msg, rdend, rr->rdata, target, &end) < 0)
            return -1;
        return end == rdend ? 0 : -1;
    }
    default:
        return 0;
    }
}

/* Read and check the record at msg[pos]. 0 or -1 when malformed. */
static int read_rr(const uint8_t *msg, size_t len, size_t pos,
      struct rr *rr) {
    size_t p;
    if(dill_dns_name_read(msg, len, pos, rr->owner, &p) < 0) return -1;
    /* TYPE, CLASS, TTL (4 bytes, unused: nothing is cached), RDLENGTH. */
    if(len - p < 10) return -1;
    rr->type = get16(msg + p);
    rr->class = get16(msg + p + 2);
    rr->rdlen = get16(msg + p + 8);
    rr->rdata = p + 10;
    if(rr->rdlen > len - rr->rdata) return -1;
    rr->next = rr->rdata + rr->rdlen;
    return check_rdata(msg, rr);
}

/* The answer section, located and checked once; later passes over it
   cannot fail. */
struct answers {
    const uint8_t *msg;
    size_t len;
    size_t start;
    int count;
};

static int check_answers(const struct answers *an) {
    struct rr rr;
    size_t pos = an->start;
    for(int i = 0; i < an->count; i++) {
        if(read_rr(an->msg, an->len, pos, &rr) < 0) return -1;
        pos = rr.next;
    }
    return 0;
}

/* Find the first record of class IN and the given type owned by name:
   0 with the record in rr, or -1. */
static int find_rr(const struct answers *an, const uint8_t *name,
      uint16_t type, struct rr *rr) {
    size_t pos = an->start;
    for(int i = 0; i < an->count; i++) {
        read_rr(an->msg, an->len, pos, rr);  /* checked before */
        pos = rr->next;
        if(rr->class == DILL_DNS_CLASS_IN && rr->type == type &&
              dill_dns_name_equal(rr->owner, name))
            return 0;
    }
    return -1;
}

/* RFC 1034 §3.6.2 and §4.3.2: an alias has only its CNAME, and the server
   puts the chain in the answer, usually but not necessarily in order, so
   the chain is followed by looking up each link anew. Ends with the final
   name in target; -1 if the chain is longer than DILL_DNS_MAXCNAME, which
   includes every loop. */
static int chase(const struct answers *an, uint8_t *target) {
    struct rr rr;
    int hops = 0;
    while(find_rr(an, target, DILL_DNS_TYPE_CNAME, &rr) == 0) {
        if(hops++ == DILL_DNS_MAXCNAME) return -1;
        size_t end;
        dill_dns_name_read(an->msg, rr.next, rr.rdata, target, &end);
    }
    return 0;
}

/* One pass in answer order: the addresses of the given type owned by
   owner, as many as fit. */
static int collect(const struct answers *an, const uint8_t *owner,
      uint16_t type, struct dill_dns_addr *addrs, int naddrs) {
    struct rr rr;
    size_t pos = an->start;
    int n = 0;
    for(int i = 0; i < an->count && n < naddrs; i++) {
        read_rr(an->msg, an->len, pos, &rr);  /* checked before */
        pos = rr.next;
        if(rr.class != DILL_DNS_CLASS_IN || rr.type != type ||
              !dill_dns_name_equal(rr.owner, owner))
            continue;
        addrs[n].len = (int)rr.rdlen;
        memset(addrs[n].bytes, 0, sizeof(addrs[n].bytes));
        memcpy(addrs[n].bytes, an->msg + rr.rdata, rr.rdlen);
        n++;
    }
    return n;
}

/* RFC 1035 §4.1.2 and §7.3: a reply is only accepted for the question we
   asked, compared field by field, name case-insensitively (RFC 4343).
   Sets *end to the first byte after the question. */
static enum dill_dns_result check_question(const struct dill_dns_question *q,
      const uint8_t *msg, size_t len, size_t *end) {
    uint8_t name[DILL_DNS_MAXWIRE];
    size_t p;
    if(dill_dns_name_read(msg, len, HEADER_LEN, name, &p) < 0 ||
          len - p < 4)
        return DILL_DNS_MALFORMED;
    if(!dill_dns_name_equal(name, q->name) || get16(msg + p) != q->type ||
          get16(msg + p + 2) != DILL_DNS_CLASS_IN)
        return DILL_DNS_MISMATCH;
    *end = p + 4;
    return DILL_DNS_OK;
}

/* RFC 1035 §4.1.1 RCODE values. */
static enum dill_dns_result rcode_result(int rcode) {
    switch(rcode) {
    case 0: return DILL_DNS_OK;
    case 2: return DILL_DNS_SERVFAIL;
    case 3: return DILL_DNS_NXDOMAIN;
    case 5: return DILL_DNS_REFUSED;
    default: return DILL_DNS_OTHER;
    }
}

/* The header and question, in the order that lets a stray or forged packet
   be ignored before anything else is believed: id, QR, opcode, QDCOUNT,
   question, then TC and RCODE. */
static enum dill_dns_result check_head(const struct dill_dns_question *q,
      const uint8_t *msg, size_t len, size_t *end) {
    if(len < HEADER_LEN) return DILL_DNS_MALFORMED;
    uint16_t flags = get16(msg + 2);
    if(get16(msg) != q->id || !(flags & FLAG_QR) || OPCODE(flags) != 0 ||
          get16(msg + 4) != 1)
        return DILL_DNS_MISMATCH;
    enum dill_dns_result rc = check_question(q, msg, len, end);
    if(rc != DILL_DNS_OK) return rc;
    if(flags & FLAG_TC) return DILL_DNS_TRUNCATED;
    return rcode_result(RCODE(flags));
}

enum dill_dns_result dill_dns_parse(const struct dill_dns_question *q,
      const uint8_t *msg, size_t len, struct dill_dns_addr *addrs, int naddrs,
      int *count) {
    *count = 0;
    size_t end = 0;
    enum dill_dns_result rc = check_head(q, msg, len, &end);
    if(rc != DILL_DNS_OK) return rc;
    struct answers an = {msg, len, end, get16(msg + 6)};
    if(check_answers(&an) < 0) return DILL_DNS_MALFORMED;
    uint8_t target[DILL_DNS_MAXWIRE];
    memcpy(target, q->name, wire_len(q->name));
    if(chase(&an, target) < 0) return DILL_DNS_OK;
    *count = collect(&an, target, q->type, addrs, naddrs < 0 ? 0 : naddrs);
    return DILL_DNS_OK;
}

/* ---- Search list ---------------------------------------------------- */

int dill_dns_expand(char *out, size_t outlen, const char *name,
      const char *domain) {
    size_t n = strlen(name);
    /* An absolute name is never expanded. text_len drops the domain's
       trailing dot and refuses an empty domain, whose expansion would be
       the name itself made absolute. */
    int d = text_len(domain);
    if(n == 0 || name[n - 1] == '.' || text_len(name) < 0 || d < 0 ||
          n + 1 + (size_t)d > DILL_DNS_MAXTEXT) {
        errno = EINVAL;
        return -1;
    }
    if(outlen < n + 1 + (size_t)d + 1) {
        errno = EMSGSIZE;
        return -1;
    }
    memcpy(out, name, n);
    out[n] = '.';
    memcpy(out + n + 1, domain, (size_t)d);
    out[n + 1 + (size_t)d] = 0;
    return (int)(n + 1 + (size_t)d);
}

int dill_dns_bare_first(const char *name, int ndots) {
    size_t n = strlen(name);
    if(n > 0 && name[n - 1] == '.') return 1;
    int dots = 0;
    for(size_t i = 0; i < n; i++)
        if(name[i] == '.') dots++;
    return dots >= ndots;
}

static int bare(char *out, size_t outlen, const char *name) {
    size_t n = strlen(name);
    if(text_len(name) < 0) {
        errno = EINVAL;
        return -1;
    }
    if(outlen < n + 1) {
        errno = EMSGSIZE;
        return -1;
    }
    memcpy(out, name, n + 1);
    return 1;
}

static int searched(char *out, size_t outlen, const char *name,
      const char *domain) {
    return dill_dns_expand(out, outlen, name, domain) < 0 ? -1 : 1;
}

/* resolv.conf(5): with at least ndots dots the name is first tried as it
   is, then with each search domain; with fewer, the search domains come
   first and the name as it is last. */
int dill_dns_candidate(char *out, size_t outlen, const char *name, int ndots,
      const char *const *search, int nsearch, int i) {
    size_t n = strlen(name);
    if(i < 0) return 0;
    if(n > 0 && name[n - 1] == '.')
        return i == 0 ? bare(out, outlen, name) : 0;
    if(nsearch < 0) nsearch = 0;
    if(dill_dns_bare_first(name, ndots)) {
        if(i == 0) return bare(out, outlen, name);
        i--;
    }
    else if(i == nsearch) return bare(out, outlen, name);
    if(i >= nsearch) return 0;
    return searched(out, outlen, name, search[i]);
}
