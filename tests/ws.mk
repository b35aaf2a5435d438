# tests/ws.mk: see tests/tests.mk. Not written yet (issue 7).
