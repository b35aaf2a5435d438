/*
 * base64.c: not written yet (issue 7).
 */
#include "config.h"

typedef int dill_base64_not_written_yet;
