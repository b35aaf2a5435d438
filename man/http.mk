# man/http.mk: the HTTP pages (see man/man.mk).
dist_man_MANS += man/http_attach.3 man/http_attach_mem.3 man/http_done.3 man/http_detach.3 man/http_sendrequest.3 man/http_recvrequest.3 man/http_sendstatus.3 man/http_recvstatus.3 man/http_sendfield.3 man/http_recvfield.3
