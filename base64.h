/* base64.h: not written yet (issue 7). */
