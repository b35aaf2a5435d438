# man/socks5.mk: see man/man.mk. Not written yet (issue 7).
