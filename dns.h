/*
 * dns.h: the DNS message code of the resolver (RFC 1035 §4): building an
 * A or AAAA query, checking a response against the question it answers and
 * taking the addresses out of it, reading compressed names, and the
 * resolv.conf search-list policy. Pure code: no I/O, no allocation, every
 * buffer belongs to the caller, every read of a message is bounds-checked.
 * Internal (hidden by -fvisibility=hidden); resolver.c is the user.
 */
#ifndef DILL_DNS_H_INCLUDED
#define DILL_DNS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define DILL_DNS_TYPE_A 1      /* RFC 1035 §3.2.2 */
#define DILL_DNS_TYPE_CNAME 5
#define DILL_DNS_TYPE_AAAA 28  /* RFC 3596 §2.1 */
#define DILL_DNS_CLASS_IN 1

/* A name in wire form, length octets and the root label included, is at
   most 255 bytes (RFC 1035 §2.3.4); as dotted text that is at most 253
   characters without the optional trailing dot. */
#define DILL_DNS_MAXWIRE 255
#define DILL_DNS_MAXTEXT 253
#define DILL_DNS_MAXLABEL 63
/* The longest query dill_dns_query can build: header, name, type, class. */
#define DILL_DNS_MAXQUERY (12 + DILL_DNS_MAXWIRE + 4)
/* A UDP message is at most 512 bytes without EDNS (RFC 1035 §4.2.1); our
   queries carry no OPT record, so this is the receive buffer to use. Over
   TCP each message is preceded by its length in two bytes (§4.2.2). */
#define DILL_DNS_MAXUDP 512
#define DILL_DNS_MAXTCP 65535
/* Longest CNAME chain followed inside one answer. */
#define DILL_DNS_MAXCNAME 16

/* What a response means for the question we asked. */
enum dill_dns_result {
    /* NOERROR. The addresses are in the caller's array; zero addresses is
       a valid answer too (the name exists but has no record of this type,
       or its CNAME chain loops or is longer than DILL_DNS_MAXCNAME). */
    DILL_DNS_OK = 0,
    DILL_DNS_NXDOMAIN,  /* RCODE 3: the name does not exist */
    DILL_DNS_SERVFAIL,  /* RCODE 2 */
    DILL_DNS_REFUSED,   /* RCODE 5 */
    DILL_DNS_OTHER,     /* any other RCODE (FORMERR, NOTIMP, ...) */
    /* TC bit set: discard this reply and ask again over TCP
       (RFC 2181 §9). Its answer section is not looked at. */
    DILL_DNS_TRUNCATED,
    /* Not a reply to this question (wrong id, not a response, opcode not
       QUERY, QDCOUNT not 1, other name/type/class): ignore the packet and
       keep waiting for the real reply. */
    DILL_DNS_MISMATCH,
    /* Cannot be parsed: shorter than a header, or id and question match but
       the question or an answer record is broken. Treat it like a lost
       reply. */
    DILL_DNS_MALFORMED
};

/* The question as it was sent, filled by dill_dns_question; name is in
   uncompressed wire form. A resolver may change id before each
   (re)transmission; the other fields are only written by
   dill_dns_question. */
struct dill_dns_question {
    uint16_t id;
    uint16_t type;
    uint8_t name[DILL_DNS_MAXWIRE];
};

/* One address from an answer, in network byte order exactly as in the
   record: 4 bytes for A, 16 for AAAA (copy into sin_addr / sin6_addr). */
struct dill_dns_addr {
    int len;
    uint8_t bytes[16];
};

/* Fill q for a query of type (DILL_DNS_TYPE_A or _AAAA) about the dotted
   name, with or without a trailing dot. Labels must be 1..63 bytes, the
   name 1..253 characters (trailing dot not counted); any byte but '.' may
   appear in a label. 0, or -1 with errno EINVAL. */
int dill_dns_question(struct dill_dns_question *q, uint16_t id,
    const char *name, int type);

/* Write the query for q (RD set, one question, class IN) into buf. Returns
   its length, or -1 with errno EMSGSIZE when len is too small (a buffer of
   DILL_DNS_MAXQUERY bytes is always enough). */
int dill_dns_query(uint8_t *buf, size_t len,
    const struct dill_dns_question *q);

/* The same query as sent over TCP: preceded by its length as two bytes in
   network order (RFC 1035 §4.2.2). Returns the total length (query + 2),
   or -1 with errno EMSGSIZE. */
int dill_dns_query_tcp(uint8_t *buf, size_t len,
    const struct dill_dns_question *q);

/* Check the response msg (len bytes, without a TCP length prefix) against
   q and store up to naddrs addresses of the type asked for, owned by the
   name asked for or by the end of its CNAME chain, in answer-section
   order. *count is set to the number stored (0 unless DILL_DNS_OK). Only
   the header, the question and the answer section are read: bytes after
   the last answer record are ignored, so a message cut inside its
   authority or additional section gives the same result as the whole
   message, and a message cut anywhere earlier is DILL_DNS_MALFORMED.
   Every answer record is checked even when addrs is full. */
enum dill_dns_result dill_dns_parse(const struct dill_dns_question *q,
    const uint8_t *msg, size_t len, struct dill_dns_addr *addrs, int naddrs,
    int *count);

/* Read the possibly compressed name at msg[pos] into out (at least
   DILL_DNS_MAXWIRE bytes) in uncompressed wire form. *next is set to the
   offset just past the name where it sits (past its first pointer, or its
   root label). Returns the length of out, or -1 if the name is malformed:
   it runs past len, uses a reserved label type, exceeds 255 bytes, or
   has a pointer that does not point strictly before the label sequence it
   appears in (this makes loops impossible). Never reads msg[len] or
   beyond. */
int dill_dns_name_read(const uint8_t *msg, size_t len, size_t pos,
    uint8_t *out, size_t *next);

/* 1 if the wire-form names a and b are equal, ASCII letters compared
   case-insensitively (RFC 4343 §3), else 0. */
int dill_dns_name_equal(const uint8_t *a, const uint8_t *b);

/* Write name + "." + domain into out (outlen bytes, NUL included). A
   trailing dot on domain is dropped. Returns the length written, or -1
   with errno EINVAL (name absolute, i.e. ending in a dot, or the result is
   not a valid name) or EMSGSIZE (out too small). */
int dill_dns_expand(char *out, size_t outlen, const char *name,
    const char *domain);

/* 1 if name is looked up as it is before the search list is tried: it
   ends in a dot or has at least ndots dots (resolv.conf(5)); else 0. */
int dill_dns_bare_first(const char *name, int ndots);

/* The i-th name to query (i = 0, 1, ...) for name, with resolv.conf's
   ndots and search list: an absolute name (trailing dot) is tried alone;
   otherwise the bare name comes first when dill_dns_bare_first says so,
   else last, and the name expanded with each search domain in list order
   fills the other places. Returns 1 with the candidate in out, 0 when
   there are no more candidates, -1 (errno as dill_dns_expand) when this
   candidate cannot be formed: skip it and go on with i + 1. */
int dill_dns_candidate(char *out, size_t outlen, const char *name, int ndots,
    const char *const *search, int nsearch, int i);

#endif
