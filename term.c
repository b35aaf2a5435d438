/*
 * term.c: not written yet (issue 7).
 */
#include "config.h"

typedef int dill_term_not_written_yet;
