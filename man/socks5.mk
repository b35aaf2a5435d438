# man/socks5.mk: the SOCKS5 pages (see man/man.mk).
dist_man_MANS += man/socks5_client_connect.3 man/socks5_client_connectbyname.3 man/socks5_proxy_auth.3 man/socks5_proxy_recvcommand.3 man/socks5_proxy_recvcommandbyname.3 man/socks5_proxy_sendreply.3
