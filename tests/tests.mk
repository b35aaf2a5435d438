# tests/tests.mk: every test program, run by make check. Each area keeps its
# own list so that several people can add tests side by side.
include tests/cr.mk
include tests/chan.mk
include tests/poller.mk
include tests/dns.mk
EXTRA_DIST += tests/check.h
