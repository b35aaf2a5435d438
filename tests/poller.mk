# tests/poller.mk: fdin, fdout and fdclean (tests/fd.c), run against the
# poller backend configure chose and, on Linux, run a second time against
# poller_kqueue.c over the kqueue emulation in tests/kqueue/, so that the
# kqueue backend's logic is exercised here and not only compiled.

check_PROGRAMS += tests/fd
TESTS += tests/fd
tests_fd_SOURCES = tests/fd.c
tests_fd_LDADD = $(dill_test_ldadd)
tests_fd_CPPFLAGS =
if THREADS
tests_fd_CPPFLAGS += -DDILL_TEST_THREADS
endif

if LINUX_EPOLL
# The whole runtime again, with poller_kqueue.c as its backend and the
# emulation under <sys/event.h>. A convenience library: nothing installed.
check_LTLIBRARIES += tests/libdill_kqueue.la
tests_libdill_kqueue_la_SOURCES = $(dill_core_sources) poller_kqueue.c \
	tests/kqueue/kqueue_emul.c tests/kqueue/sys/event.h
tests_libdill_kqueue_la_CPPFLAGS = -I$(srcdir)/tests/kqueue
tests_libdill_kqueue_la_CFLAGS = $(dill_lib_cflags)

check_PROGRAMS += tests/fd_kqueue
TESTS += tests/fd_kqueue
tests_fd_kqueue_SOURCES = tests/fd.c
tests_fd_kqueue_CPPFLAGS = $(tests_fd_CPPFLAGS)
tests_fd_kqueue_LDADD = tests/libdill_kqueue.la
endif

EXTRA_DIST += tests/kqueue/sys/event.h tests/kqueue/kqueue_emul.c

if POLLER_EPOLL
# epoll_ctl refusing a change of interest (tests/epoll_fault.c).
check_PROGRAMS += tests/epoll_fault
TESTS += tests/epoll_fault
tests_epoll_fault_SOURCES = tests/epoll_fault.c
tests_epoll_fault_LDADD = $(dill_test_ldadd)
# Linked statically against musl, the library's epoll_create1 brings in
# libc.a's epoll object, which defines epoll_ctl too: without this flag
# that is a second definition. The first one, the test's, is kept.
tests_epoll_fault_LDFLAGS = -Wl,--allow-multiple-definition
endif
