# tests/chan.mk: channels, choose and handles (see tests/tests.mk).
check_PROGRAMS += tests/chan tests/choose tests/handle
tests_chan_LDADD = $(dill_test_ldadd)
tests_choose_LDADD = $(dill_test_ldadd)
tests_handle_LDADD = $(dill_test_ldadd)
TESTS += tests/chan tests/choose tests/handle
