/*
 * ws.h: what ws.c (frames and the message socket) asks of wshandshake.c
 * (the opening handshake over HTTP).
 */
#ifndef DILL_WS_H_INCLUDED
#define DILL_WS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* Client side: the request for resource at host, the server's answer,
   then, in *u, the stream exactly after the answer's empty line. 0, or -1
   with *u closed (EPROTO for a refusal or a bad answer, EMSGSIZE, or an
   error of the stream). */
int dill_ws_client_handshake(int *u, const char *resource, const char *host,
    int64_t deadline);

/* Server side: the request (its resource and Host stored as
   ws_attach_server says), our answer (http_detach writes its empty line),
   then, in *u, the stream right after the request. 0, or -1 with *u
   closed. */
int dill_ws_server_handshake(int *u, char *resource, size_t resourcelen,
    char *host, size_t hostlen, int64_t deadline);

#endif
