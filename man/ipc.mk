# man/ipc.mk: the IPC (UNIX-domain socket) pages (see man/man.mk).
dist_man_MANS += man/ipc_listen.3 man/ipc_listen_mem.3 man/ipc_accept.3 man/ipc_accept_mem.3 man/ipc_connect.3 man/ipc_connect_mem.3 man/ipc_sendfd.3 man/ipc_recvfd.3 man/ipc_done.3 man/ipc_close.3 man/ipc_listener_fromfd.3 man/ipc_listener_fromfd_mem.3 man/ipc_fromfd.3 man/ipc_fromfd_mem.3 man/ipc_pair.3 man/ipc_pair_mem.3
