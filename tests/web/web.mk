# tests/web/web.mk: the tests of the live page (chalk --serve, :serve, :save, --transcript), included by
# repl/repl.mk. tests/web/test_server.py talks HTTP to a running chalk (live events, pictures, files under
# the output folder only, path traversal, malformed requests, 100 connections, :quit); test_browser.py
# drives Debian's chromium headless over DevTools (the page, a picture within a second, zoom and pan, a
# lesson's transcript). Without chromium the browser test says SKIP and why; `make test` installs it.
WEB_PYTHON ?= /usr/bin/python3
CHECKS += check-web
.PHONY: check-web
check-web: $(BUILD)/chalk
	@failed=""; start=$$(date +%s); \
	for t in tests/web/test_server.py tests/web/test_browser.py; do \
	  timeout 120 $(WEB_PYTHON) $$t $(BUILD)/chalk || failed="$$failed $$(basename $$t)"; \
	done; \
	if [ -n "$$failed" ]; then echo "check-web: FAILED:$$failed"; exit 1; fi; \
	echo "check-web: the live page's tests passed ($$(( $$(date +%s) - start ))s)"
