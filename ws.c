/*
 * ws.c: not written yet (issue 7).
 */
#include "config.h"

typedef int dill_ws_not_written_yet;
