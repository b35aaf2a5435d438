/*
 * http.c: not written yet (issue 7).
 */
#include "config.h"

typedef int dill_http_not_written_yet;
