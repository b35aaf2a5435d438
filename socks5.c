/*
 * socks5.c: not written yet (issue 7).
 */
#include "config.h"

typedef int dill_socks5_not_written_yet;
