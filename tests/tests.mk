# tests/tests.mk: every test program, run by make check. Each area keeps its
# own list so that several people can add tests side by side.
include tests/cr.mk
include tests/chan.mk
include tests/poller.mk
include tests/dns.mk
if SOCKETS
include tests/bsock.mk
include tests/ipaddr.mk
include tests/tcp.mk
include tests/ipc.mk
include tests/udp.mk
endif
EXTRA_DIST += tests/check.h
