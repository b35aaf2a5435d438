# man/tcp.mk: the TCP pages (see man/man.mk).
dist_man_MANS += man/tcp_listen.3 man/tcp_listen_mem.3 man/tcp_accept.3 man/tcp_accept_mem.3 man/tcp_connect.3 man/tcp_connect_mem.3 man/tcp_done.3 man/tcp_close.3 man/tcp_fromfd.3 man/tcp_fromfd_mem.3 man/tcp_listener_fromfd.3 man/tcp_listener_fromfd_mem.3
