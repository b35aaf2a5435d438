# man/udp.mk: the UDP pages (see man/man.mk).
dist_man_MANS += man/udp_open.3 man/udp_open_mem.3 man/udp_send.3 man/udp_sendl.3 man/udp_recv.3 man/udp_recvl.3
