# examples/http.mk: see examples/examples.mk. Not written yet (issue 7).
