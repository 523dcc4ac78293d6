# Serving: the BentoML service over the gated ONNX model (docs/serving.md).

TEST_SETUP += setup-serving
BENCH += bench-serving bench-scoring

.PHONY: serve bento bench-serving bench-scoring setup-serving

serve: install ## Serve models/ with BentoML on $PORT (default 3000): /predict /metadata /metrics
	scripts/first-run/check-port $(PY) "$$PORT"
	$(VENV)/bin/bentoml serve churnops.serving.service:Churnops --host 0.0.0.0 --port "$$PORT"

bento: install ## Import models/ into the BentoML model store and build the Bento (prints its tag)
	$(VENV)/bin/churnops bento

setup-serving: install ## Tools for the serving tests and benchmark (wrk)
	scripts/apt-install wrk

bench-serving: setup-serving ## Throughput and p99 vs bare Starlette and `mlflow models serve`; startup, memory, deploy time
	$(PY) bench/serving.py

bench-scoring: pipeline ## Batch scoring of 1M customers vs the bare onnxruntime call; peak memory
	$(PY) bench/scoring.py
