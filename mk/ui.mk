# The Streamlit UI and the Apache Airflow DAG (docs/ui.md, docs/airflow.md).
UI_PORT ?= 8501
CHURNOPS_API_URL ?= http://localhost:$(PORT)
AIRFLOW_VENV := .venv-airflow

TEST_SETUP += setup-ui setup-airflow

.PHONY: ui setup-ui test-ui setup-airflow test-airflow

ui: install ## Streamlit UI on $UI_PORT (8501) for the API at $CHURNOPS_API_URL
	CHURNOPS_API_URL=$(CHURNOPS_API_URL) $(VENV)/bin/streamlit run src/churnops/ui/app.py \
	  --server.port $(UI_PORT) --server.headless true --browser.gatherUsageStats false \
	  --client.toolbarMode minimal

setup-ui: install ## Debian's chromium for the browser test (Playwright's Python package drives it)
	scripts/apt-install chromium

test-ui: setup-ui ## UI tests: Streamlit AppTest, then real API + app + headless Chromium
	$(PY) -m pytest tests/code/test_ui_app.py tests/e2e/test_ui_browser.py

$(AIRFLOW_VENV)/.installed: airflow/requirements.txt airflow/constraints.txt
	python3 -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q pip==$(PIP_VERSION)
	$(AIRFLOW_VENV)/bin/pip install -q -r airflow/requirements.txt -c airflow/constraints.txt
	touch $@

setup-airflow: $(AIRFLOW_VENV)/.installed ## Apache Airflow in its own venv (.venv-airflow; its pins clash with .venv)

test-airflow: install setup-airflow ## `airflow dags test` of the DAG end to end, in a temporary copy of the repo
	$(PY) -m pytest tests/e2e/test_airflow_dag.py
