# tests/cr.mk: see tests/tests.mk. Coroutines, bundles, time, cancellation,
# stacks, threads and the launch ABI.
#
# tests/stack keeps DILL_TEST_COROUTINES coroutines alive at once (default
# 100000); under valgrind set it lower, e.g. DILL_TEST_COROUTINES=2000.
cr_tests = \
	tests/go \
	tests/go_mem \
	tests/bundle \
	tests/cancel \
	tests/time \
	tests/stack \
	tests/threads \
	tests/abi
check_PROGRAMS += $(cr_tests)
TESTS += $(cr_tests)
EXTRA_DIST += tests/abi_launch.h

tests_go_LDADD = $(dill_test_ldadd)
tests_go_mem_LDADD = $(dill_test_ldadd)
tests_bundle_LDADD = $(dill_test_ldadd)
tests_cancel_LDADD = $(dill_test_ldadd)
tests_time_LDADD = $(dill_test_ldadd)
tests_stack_LDADD = $(dill_test_ldadd) -lpthread
tests_threads_LDADD = $(dill_test_ldadd) -lpthread
if THREADS
tests_threads_CPPFLAGS = -DDILL_TEST_THREADS
endif
# abi.c uses only its own copy of the launch macros (tests/abi_launch.h),
# never libdill.h, and links the library like any compiled program.
tests_abi_SOURCES = tests/abi.c tests/abi_launch.h
tests_abi_LDADD = $(dill_test_ldadd)
