"""`churnops score INPUT OUTPUT`: score a CSV or Parquet file of customers with the served model.

The same checks as the API (request_model's Customer) and the same predictor (ONNX via
onnxruntime). Rows that fail the checks do not stop the run: they go to a rejects file
(OUTPUT's name + `.rejects.csv`) with their row number and the reason. The output keeps
the customer id when the input has one, then churn_probability and churn.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from churnops import card, schema
from churnops.config import MODEL_FILE, MODELS_DIR
from churnops.predictor import Predictor
from churnops.serving.request_model import customer_model, customer_struct, field_path

CHUNK_ROWS = 10_000


def read_chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The input in chunks of `rows` rows (CSV or Parquet, by extension)."""
    if path.suffix == ".parquet":
        file = pq.ParquetFile(path)
        if file.metadata.num_rows == 0:  # one empty chunk, as pandas reads an empty CSV
            yield file.read().to_pandas()
        for batch in file.iter_batches(batch_size=rows):
            yield batch.to_pandas()
    elif path.suffix == ".csv":
        yield from pd.read_csv(path, chunksize=rows)
    else:
        raise ValueError(f"{path}: expected a .csv or .parquet file")


def count_rows(path: Path) -> int | None:
    return pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet" else None


class Scorer:
    """Validates and scores chunks of customers; counts what it scored and rejected.

    A chunk is checked by msgspec, the API's quick path; only a chunk with an invalid
    row goes through pydantic, which gives each bad row its reason.
    """

    def __init__(self, model_dir: Path) -> None:
        self.predictor = Predictor(model_dir / MODEL_FILE)
        self.threshold = card.decision_threshold(card.read_card(model_dir))
        self.customers = TypeAdapter(list[customer_model()])
        self.customer_structs = list[customer_struct()]

    def score(self, chunk: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(scored rows, rejected rows with `row` and `reason`) of one chunk."""
        schema.require_features(chunk.columns, "the input")
        columns = schema.request_columns(chunk)
        records = schema.records_of(columns)
        reasons = {} if self._all_valid(records) else self._reasons(records)
        good = [i for i in range(len(records)) if i not in reasons]
        if reasons:
            columns = {name: [values[i] for i in good] for name, values in columns.items()}
        scored = pd.DataFrame(index=chunk.index[good])
        if schema.ID_COLUMN in chunk.columns:
            scored[schema.ID_COLUMN] = chunk[schema.ID_COLUMN].iloc[good].to_numpy()
        if good:
            probabilities = self.predictor.churn_probability(columns)
            scored["churn_probability"] = probabilities
            scored["churn"] = probabilities >= self.threshold
        bad = sorted(reasons)
        rejects = chunk.iloc[bad].copy()
        rejects.insert(0, "reason", [reasons[i] for i in bad])
        rejects.insert(0, "row", [first_row + i for i in bad])
        return scored, rejects

    def _all_valid(self, records: list[dict[str, Any]]) -> bool:
        try:
            msgspec.convert(records, self.customer_structs)
        except msgspec.ValidationError:
            return False
        return True

    def _reasons(self, records: list[dict[str, Any]]) -> dict[int, str]:
        """The first problem of each invalid record, by its index (pydantic's message)."""
        reasons: dict[int, str] = {}
        try:
            self.customers.validate_python(records)
        except ValidationError as error:
            for detail in error.errors(include_url=False, include_input=False):
                index, *field = detail["loc"]
                reasons.setdefault(int(index), f"{field_path(field)}: {detail['msg']}")
        return reasons


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
