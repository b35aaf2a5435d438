/*
 * tests/soak_wire.c: the soak test's checksums and payloads. CRC-32 (the
 * IEEE polynomial, reflected, as zlib and Ethernet use it) over header and
 * payload; a payload is a pseudo-random stream derived from the message's
 * lane, serial and sequence number, so the client can check an echo byte
 * for byte without keeping what it sent.
 */
#include <string.h>

#include "soak.h"

static uint32_t crc_table[256];

/* Called once by main, before the threads start. */
void soak_wire_init(void) {
    for(uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for(int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
}

uint32_t soak_crc32(uint32_t crc, const void *buf, size_t len) {
    const uint8_t *p = buf;
    crc = ~crc;
    for(size_t i = 0; i < len; i++)
        crc = (crc >> 8) ^ crc_table[(crc ^ p[i]) & 0xffu];
    return ~crc;
}

static uint32_t msg_crc(const struct soak_msg *m, const uint8_t *payload) {
    struct soak_msg h = *m;
    h.crc = 0;
    return soak_crc32(soak_crc32(0, &h, sizeof(h)), payload, m->len);
}

void soak_msg_seal(struct soak_msg *m, const uint8_t *payload) {
    m->magic = SOAK_MSG_MAGIC;
    m->crc = msg_crc(m, payload);
}

int soak_msg_intact(const struct soak_msg *m, const uint8_t *payload) {
    return m->magic == SOAK_MSG_MAGIC && m->len <= SOAK_MAX_PAYLOAD &&
        m->crc == msg_crc(m, payload);
}

static uint32_t hello_crc(const struct soak_hello *h) {
    struct soak_hello c = *h;
    c.crc = 0;
    return soak_crc32(0, &c, sizeof(c));
}

void soak_hello_seal(struct soak_hello *h) {
    h->magic = SOAK_HELLO_MAGIC;
    h->crc = hello_crc(h);
}

int soak_hello_intact(const struct soak_hello *h) {
    return h->magic == SOAK_HELLO_MAGIC && h->crc == hello_crc(h);
}

/* splitmix64: every seed gives an unrelated stream. */
static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t payload_seed(const struct soak_msg *m) {
    return ((uint64_t)m->lane << 48) ^ ((uint64_t)m->serial << 20) ^ m->seq;
}

void soak_payload_fill(uint8_t *buf, const struct soak_msg *m) {
    uint64_t x = payload_seed(m);
    for(size_t i = 0; i < m->len; i += 8) {
        uint64_t v = splitmix(&x);
        size_t n = m->len - i < 8 ? m->len - i : 8;
        memcpy(buf + i, &v, n);
    }
}

int soak_payload_expected(const uint8_t *buf, const struct soak_msg *m) {
    uint64_t x = payload_seed(m);
    for(size_t i = 0; i < m->len; i += 8) {
        uint64_t v = splitmix(&x);
        size_t n = m->len - i < 8 ? m->len - i : 8;
        if(memcmp(buf + i, &v, n) != 0) return 0;
    }
    return 1;
}
