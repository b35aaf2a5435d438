# tests/emfile.mk: see tests/tests.mk. Every call that makes a file
# descriptor, with no room left for it under a lowered RLIMIT_NOFILE:
# EMFILE, nothing left behind, and a retry that works. It runs in mount and
# network namespaces of its own, so it needs root, and fails saying so
# without it; with --enable-tls it also needs the openssl command.
check_PROGRAMS += tests/emfile
TESTS += tests/emfile
tests_emfile_LDADD = $(dill_test_ldadd) -lpthread
