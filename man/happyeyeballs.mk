# man/happyeyeballs.mk: see man/man.mk. Not written yet (issue 7).
