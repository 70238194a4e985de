# The report's browser test renders report.html in Debian's headless Chromium; install it when it is missing.
# On a fresh Debian 12 machine this is one apt-get run: about 25-40 s, a 113 MB download (115 packages).
# Phony rather than a stamp file, so a machine where chromium was removed gets it back.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium not found: installing Debian's package for the report's browser test"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

TEST_DEPS += chromium
