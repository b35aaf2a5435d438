/*
 * prefix.c: not written yet (issue 7).
 */
#include "config.h"

typedef int dill_prefix_not_written_yet;
