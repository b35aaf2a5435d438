# examples/socks5.mk: see examples/examples.mk. The SOCKS5 proxy is built by
# make check (check_PROGRAMS): tests/socks5 runs it as curl's proxy.
check_PROGRAMS += examples/socks5_proxy
examples_socks5_proxy_LDADD = libdill.la
