# man/ipaddr.mk: the IP address pages; ipaddr_remote.3 describes the
# resolver (see man/man.mk).
dist_man_MANS += man/ipaddr_local.3 man/ipaddr_remote.3 man/ipaddr_remotes.3 man/ipaddr_str.3 man/ipaddr_family.3 man/ipaddr_sockaddr.3 man/ipaddr_len.3 man/ipaddr_port.3 man/ipaddr_setport.3 man/ipaddr_equal.3
