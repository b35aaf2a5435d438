/* sha1.h: not written yet (issue 7). */
