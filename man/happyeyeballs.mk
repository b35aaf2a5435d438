# man/happyeyeballs.mk: the happy eyeballs page (see man/man.mk).
dist_man_MANS += man/happyeyeballs_connect.3
