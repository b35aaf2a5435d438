/*
 * census.c: stack-use measurement for --enable-census. A new coroutine's
 * stack is painted with a byte pattern below its record; when the
 * coroutine ends, the deepest byte that no longer holds the pattern tells
 * how much stack it used. The maximum is kept per go() call site.
 */
#include "config.h"

#if defined DILL_CENSUS

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "census.h"

#define PAINT 0xa5

struct dill_census_site {
    struct dill_census_site *next;
    const char *file;
    int line;
    size_t max;
};

/* Caller memory keeps its canary word at lo: paint from just above it. */
static char *paint_lo(const struct dill_stack *st) {
    if(st->kind == DILL_STACK_CALLER) return st->lo + sizeof(uint64_t);
    return st->lo;
}

void dill_census_paint(struct dill_stack *st, const struct dill_cr *cr) {
    memset(paint_lo(st), PAINT, (size_t)((const char *)cr - paint_lo(st)));
}

void dill_census_measure(struct dill_census_site **sites,
      const struct dill_cr *cr) {
    const char *p = paint_lo(&cr->stack);
    while(p < (const char *)cr && (unsigned char)*p == PAINT) p++;
    size_t used = (size_t)((const char *)cr - p);
    struct dill_census_site *s;
    for(s = *sites; s; s = s->next)
        if(s->line == cr->line && strcmp(s->file, cr->file) == 0) break;
    if(!s) {
        s = dill_calloc(1, sizeof(struct dill_census_site));
        if(!s) return;
        s->file = cr->file;
        s->line = cr->line;
        s->next = *sites;
        *sites = s;
    }
    if(used > s->max) s->max = used;
}

void dill_census_report(struct dill_census_site **sites) {
    while(*sites) {
        struct dill_census_site *s = *sites;
        *sites = s->next;
        fprintf(stderr, "%s:%d - maximum stack size %zu B\n", s->file,
            s->line, s->max);
        free(s);
    }
}

#endif
