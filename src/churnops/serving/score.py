"""`churnops score INPUT OUTPUT`: score a CSV or Parquet file of customers with the served model.

The same checks as the API (request_model's Customer) and the same predictor (ONNX via
onnxruntime). Rows that fail the checks do not stop the run: they go to a rejects file
(OUTPUT's name + `.rejects.csv`) with their row number and the reason. The output keeps
the customer id when the input has one, then churn_probability and churn. CSV outputs
quote cells a spreadsheet would run as formulas; outputs appear whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
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
        probabilities = (
            self.predictor.churn_probability(columns) if good else np.empty(0, np.float32)
        )
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


# A cell a spreadsheet would run as a formula (OWASP's CSV injection): `=`, `+`, `-`, `@`,
# a tab or a carriage return first.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that a spreadsheet would evaluate quoted by a `'`."""
    text = [name for name in frame.columns if frame[name].dtype in (object, "string")]
    if not text:
        return frame
    frame = frame.copy()
    for name in text:
        frame[name] = frame[name].map(
            lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v
        )
    return frame


class TableWriter:
    """Appends chunks to one CSV or Parquet file; the header (or schema) comes from the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._started = False

    def write(self, frame: pd.DataFrame) -> None:
        if self.path.suffix == ".parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        else:
            neutralised(frame).to_csv(
                self.path, mode="a" if self._started else "w", header=not self._started, index=False
            )
        self._started = True
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.csv")


def score_file(input_path: Path, output: Path, model_dir: Path) -> tuple[int, int]:
    """Score INPUT into OUTPUT (and its rejects file); (rows scored, rows rejected).

    Chunk by chunk, in bounded memory, into files beside OUTPUT that replace it and its
    rejects file only once every row is done: a failure leaves the previous ones as they were.
    """
    scorer = Scorer(model_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    rejected = rejects_path(output)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as tmp:
        scored_file = TableWriter(Path(tmp) / output.name)
        rejects_file = TableWriter(Path(tmp) / rejected.name)
        seen = 0
        try:
            with tqdm(
                total=count_rows(input_path), unit="rows", desc="score", file=sys.stderr
            ) as bar:
                for chunk in read_chunks(input_path):
                    scored, rejects = scorer.score(chunk, seen)
                    scored_file.write(scored)
                    if len(rejects):
                        rejects_file.write(rejects)
                    seen += len(chunk)
                    bar.update(len(chunk))
        finally:
            scored_file.close()
            rejects_file.close()
        os.replace(scored_file.path, output)
        if rejects_file.rows:
            os.replace(rejects_file.path, rejected)
        else:
            rejected.unlink(missing_ok=True)
    return scored_file.rows, rejects_file.rows


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
