# tests/inject.mk: allocation-failure injection (see tests/tests.mk and
# tests/inject.h). tests/libdill_inject.la is the library built again from
# the same sources with -DDILL_ALLOC_INJECT, so that its allocations go
# through tests/inject_alloc.c, which can make any one of them fail. Only
# these tests link it; it is built by make check and never installed, and
# libdill.la itself has nothing of it (alloc.h).
check_LTLIBRARIES += tests/libdill_inject.la
tests_libdill_inject_la_SOURCES = $(libdill_la_SOURCES) \
	tests/inject_alloc.c tests/inject.h
tests_libdill_inject_la_CFLAGS = $(dill_lib_cflags)
tests_libdill_inject_la_CPPFLAGS = -DDILL_ALLOC_INJECT

inject_tests = tests/inject_core
check_PROGRAMS += $(inject_tests)
TESTS += $(inject_tests)

tests_inject_core_SOURCES = tests/inject_core.c tests/inject_driver.c \
	tests/inject.h
tests_inject_core_LDADD = tests/libdill_inject.la

if LINUX_EPOLL
# The core again with poller_kqueue.c as its backend, over the kqueue
# emulation of tests/poller.mk (whose allocations are the "kernel's" and
# never fail), so that the kqueue backend's allocations are made to fail
# too.
check_LTLIBRARIES += tests/libdill_inject_kqueue.la
tests_libdill_inject_kqueue_la_SOURCES = $(dill_core_sources) \
	poller_kqueue.c tests/kqueue/kqueue_emul.c tests/kqueue/sys/event.h \
	tests/inject_alloc.c tests/inject.h
tests_libdill_inject_kqueue_la_CFLAGS = $(dill_lib_cflags)
tests_libdill_inject_kqueue_la_CPPFLAGS = -DDILL_ALLOC_INJECT \
	-I$(srcdir)/tests/kqueue

check_PROGRAMS += tests/inject_core_kqueue
TESTS += tests/inject_core_kqueue
tests_inject_core_kqueue_SOURCES = tests/inject_core.c tests/inject_driver.c \
	tests/inject.h
tests_inject_core_kqueue_LDADD = tests/libdill_inject_kqueue.la
endif

if SOCKETS
# tests/inject_resolver runs in namespaces of its own: it needs root.
inject_socket_tests = tests/inject_sockets tests/inject_protocols \
	tests/inject_resolver
check_PROGRAMS += $(inject_socket_tests)
TESTS += $(inject_socket_tests)
tests_inject_sockets_SOURCES = tests/inject_sockets.c tests/inject_driver.c \
	tests/inject.h
tests_inject_sockets_LDADD = tests/libdill_inject.la
tests_inject_protocols_SOURCES = tests/inject_protocols.c \
	tests/inject_driver.c tests/inject.h
tests_inject_protocols_LDADD = tests/libdill_inject.la
tests_inject_resolver_SOURCES = tests/inject_resolver.c \
	tests/inject_driver.c tests/inject.h
tests_inject_resolver_LDADD = tests/libdill_inject.la
endif
