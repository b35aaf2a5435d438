/*
 * dtls.c: not written yet (issue 7).
 */
#include "config.h"

typedef int dill_dtls_not_written_yet;
