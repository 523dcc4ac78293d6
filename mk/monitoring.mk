# Monitoring: the drift-to-retrain loop on this machine (docs/monitoring.md).

TEST_SETUP += setup-monitoring
BENCH += bench-monitoring

.PHONY: setup-monitoring drift-drill drift-drill-production bench-monitoring evaluate-champion

setup-monitoring: install ## Debian's prometheus, prometheus-alertmanager and prometheus-pushgateway (no daemon starts)
	scripts/apt-install prometheus prometheus-alertmanager prometheus-pushgateway

drift-drill: pipeline setup-monitoring ## Drift in live traffic to one GitHub dispatch, real processes on loopback; prints the time
	$(PY) -m pytest -q -s -p no:cacheprovider tests/e2e/test_drift_drill.py

evaluate-champion: data ## Score models/model.onnx on the newest labeled snapshot (MLflow + reports/champion.*)
	$(VENV)/bin/churnops evaluate-champion

drift-drill-production: pipeline setup-monitoring ## The drift drill with production's scrape, evaluation, `for:` and group_wait (about 4 min)
	CHURNOPS_DRILL_TIMING=production $(PY) -m pytest -q -s -p no:cacheprovider tests/e2e/test_drift_drill.py

bench-monitoring: pipeline setup-monitoring ## Drift onset to dispatch: 3 drill runs and 1 at production timings vs the computed worst case (about 7 min)
	$(PY) bench/monitoring.py
