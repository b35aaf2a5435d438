/*
 * census.h: with --enable-census (DILL_CENSUS), the stack use of every
 * go() call site is measured and printed when the thread's scheduler is
 * torn down. Without it these calls compile to nothing.
 */
#ifndef DILL_CENSUS_H_INCLUDED
#define DILL_CENSUS_H_INCLUDED

#include "cr.h"

struct dill_census_site;

#if defined DILL_CENSUS
/* Paint a stack that is about to run a new coroutine. */
void dill_census_paint(struct dill_stack *st, const struct dill_cr *cr);
/* Measure a finished coroutine's stack and keep its site's maximum. */
void dill_census_measure(struct dill_census_site **sites,
    const struct dill_cr *cr);
/* Print one line per site and free the records. */
void dill_census_report(struct dill_census_site **sites);
#else
static inline void dill_census_paint(struct dill_stack *st,
      const struct dill_cr *cr) { (void)st; (void)cr; }
static inline void dill_census_measure(struct dill_census_site **sites,
      const struct dill_cr *cr) { (void)sites; (void)cr; }
static inline void dill_census_report(struct dill_census_site **sites) {
    (void)sites;
}
#endif

#endif
