/*
 * fuzz/dns.c: DNS responses (dns.c), the parser of everything a name
 * server sends: the answer to a fixed A and AAAA question, with the id
 * taken from the input so that mismatches do not hide the rest, and every
 * compressed name the message holds read at every offset.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dns.h"

static void parse_as(const uint8_t *data, size_t size, int type) {
    struct dill_dns_question q;
    uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    if(dill_dns_question(&q, id, "www.example.test", type) < 0) abort();
    struct dill_dns_addr addrs[8];
    int count = -1;
    enum dill_dns_result r = dill_dns_parse(&q, data, size, addrs, 8, &count);
    if(count < 0 || count > 8) abort();
    if(r != DILL_DNS_OK && count != 0) abort();
    for(int i = 0; i < count; i++)
        if(addrs[i].len != (type == DILL_DNS_TYPE_A ? 4 : 16)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    parse_as(data, size, DILL_DNS_TYPE_A);
    parse_as(data, size, DILL_DNS_TYPE_AAAA);
    for(size_t pos = 0; pos < size && pos < 600; pos++) {
        uint8_t name[DILL_DNS_MAXWIRE];
        size_t next;
        int n = dill_dns_name_read(data, size, pos, name, &next);
        if(n > DILL_DNS_MAXWIRE || (n >= 0 && next > size)) abort();
    }
    return 0;
}
