"""`churnops score INPUT OUTPUT`: score a CSV or Parquet file of customers with the served model.

The same checks as the API (request_model's Customer) and the same predictor (ONNX via
onnxruntime). Rows that fail the checks do not stop the run: they go to a rejects file
(OUTPUT's name + `.rejects.csv`) with their row number and the reason. The output keeps
the customer id when the input has one, then churn_probability and churn.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from churnops import schema
from churnops.config import CARD_FILE, MODEL_FILE, MODELS_DIR, read_json
from churnops.predictor import Predictor
from churnops.request_model import columns_of, customer_model, field_path

CHUNK_ROWS = 10_000


def read_chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The input in chunks of `rows` rows (CSV or Parquet, by extension)."""
    if path.suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    elif path.suffix == ".csv":
        yield from pd.read_csv(path, chunksize=rows)
    else:
        raise ValueError(f"{path}: expected a .csv or .parquet file")


def count_rows(path: Path) -> int | None:
    return pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet" else None


BINARY = frozenset(f.name for f in schema.FEATURES if f.kind == "binary")


def customer_records(chunk: pd.DataFrame) -> list[dict[str, Any]]:
    """Feature values as a JSON request would give them: NaN as null, 0/1 flags as integers.

    (A flag column with a gap in it is read as floats; its 0.0/1.0 are still flags.)
    """
    records = chunk[list(schema.FEATURE_NAMES)].to_dict("records")
    for record in records:
        for name, value in record.items():
            if isinstance(value, float):
                if math.isnan(value):
                    record[name] = None
                elif name in BINARY and value.is_integer():
                    record[name] = int(value)
    return records


class Scorer:
    """Validates and scores chunks of customers; counts what it scored and rejected."""

    def __init__(self, model_dir: Path) -> None:
        self.predictor = Predictor(model_dir / MODEL_FILE)
        self.threshold = float(read_json(model_dir / CARD_FILE).get("decision_threshold", 0.5))
        self.customers = TypeAdapter(list[customer_model()])  # type: ignore[misc]

    def score(self, chunk: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(scored rows, rejected rows with `row` and `reason`) of one chunk."""
        missing = [name for name in schema.FEATURE_NAMES if name not in chunk.columns]
        if missing:
            raise ValueError(f"input has no column(s) {', '.join(missing)}")
        records = customer_records(chunk)
        reasons: dict[int, str] = {}
        try:
            customers = self.customers.validate_python(records)
        except ValidationError as error:
            for detail in error.errors(include_url=False, include_input=False):
                index, *field = detail["loc"]
                reasons.setdefault(int(index), f"{field_path(field)}: {detail['msg']}")
            kept = [r for i, r in enumerate(records) if i not in reasons]
            customers = self.customers.validate_python(kept)
        good = [i for i in range(len(records)) if i not in reasons]
        scored = pd.DataFrame(index=chunk.index[good])
        if schema.ID_COLUMN in chunk.columns:
            scored[schema.ID_COLUMN] = chunk[schema.ID_COLUMN].iloc[good].to_numpy()
        if customers:
            probabilities = self.predictor.churn_probability(columns_of(customers))
            scored["churn_probability"] = probabilities
            scored["churn"] = probabilities >= self.threshold
        bad = sorted(reasons)
        rejects = chunk.iloc[bad].copy()
        rejects.insert(0, "reason", [reasons[i] for i in bad])
        rejects.insert(0, "row", [first_row + i for i in bad])
        return scored, rejects


def write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.csv")


def score_file(input_path: Path, output: Path, model_dir: Path) -> tuple[int, int]:
    """Score INPUT into OUTPUT (and its rejects file); (rows scored, rows rejected)."""
    scorer = Scorer(model_dir)
    scored_parts, reject_parts, seen = [], [], 0
    with tqdm(total=count_rows(input_path), unit="rows", desc="score", file=sys.stderr) as bar:
        for chunk in read_chunks(input_path):
            scored, rejects = scorer.score(chunk, seen)
            scored_parts.append(scored)
            reject_parts.append(rejects)
            seen += len(chunk)
            bar.update(len(chunk))
    scored, rejects = pd.concat(scored_parts), pd.concat(reject_parts)
    output.parent.mkdir(parents=True, exist_ok=True)
    write(scored, output)
    rejected = rejects_path(output)
    if len(rejects):
        rejects.to_csv(rejected, index=False)
    else:
        rejected.unlink(missing_ok=True)
    return len(scored), len(rejects)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops score", description=__doc__)
    parser.add_argument("input", type=Path, help="customers, .csv or .parquet")
    parser.add_argument("output", type=Path, help="predictions, .csv or .parquet")
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args(argv)
    try:
        scored, rejected = score_file(args.input, args.output, args.model_dir)
    except (OSError, ValueError) as error:
        sys.exit(f"score: {error}")
    where = f", rejects in {rejects_path(args.output)}" if rejected else ""
    print(f"score: {scored} customers scored into {args.output}, {rejected} rejected{where}")


if __name__ == "__main__":
    main()
