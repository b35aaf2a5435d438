# tests/tests.mk: every test program, run by make check. Each area keeps its
# own list so that several people can add tests side by side.
include tests/cr.mk
include tests/chan.mk
include tests/poller.mk
include tests/dns.mk
include tests/inject.mk
if SOCKETS
include tests/bsock.mk
include tests/ipaddr.mk
include tests/tcp.mk
include tests/ipc.mk
include tests/udp.mk
include tests/prefix.mk
include tests/suffix.mk
include tests/term.mk
include tests/http.mk
include tests/ws.mk
include tests/socks5.mk
include tests/happyeyeballs.mk
include tests/emfile.mk
if TLS
include tests/tls.mk
endif
endif
include tests/soak.mk
EXTRA_DIST += tests/peer.h

# Scratch folders of tests that run peers (tests/NAME.tmp).
clean-local: clean-test-dirs
clean-test-dirs:
	-rm -rf tests/*.tmp
.PHONY: clean-test-dirs
EXTRA_DIST += tests/check.h

# The test programs make check runs, one line: .ci/cross runs a subset.
print-tests:
	@echo $(TESTS)
.PHONY: print-tests
