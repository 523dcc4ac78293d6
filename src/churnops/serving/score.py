"""`churnops score INPUT OUTPUT`: score a CSV or Parquet file of customers with the served model.

The same checks as the API (request_model's Customer: whole columns at once with numpy,
pydantic only for the rows those flag) and the same predictor (ONNX via onnxruntime).
Rows that fail the checks do not stop the run: they go to a rejects file (OUTPUT's name +
`.rejects.csv`) with their row number and the reason. The output keeps the customer id
when the input has one, then churn_probability and churn. CSV outputs quote cells a
spreadsheet would run as formulas; outputs appear whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from churnops import card, schema
from churnops.config import MODEL_FILE, MODELS_DIR
from churnops.predictor import Predictor
from churnops.serving.request_model import customer_model, field_path

CHUNK_ROWS = 50_000


def read_chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The input in chunks of `rows` rows (CSV or Parquet, by extension)."""
    if path.suffix == ".parquet":
        # Text columns as dictionaries: pandas Categoricals, whose checks and conversion to
        # the model's string inputs work on the few distinct values, not on every row.
        names = set(pq.read_schema(path).names) & set(schema.CATEGORICAL_FEATURES)
        file = pq.ParquetFile(path, read_dictionary=sorted(names))
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


def _values(column: pd.Series) -> np.ndarray:
    """The column as a numpy array; a Categorical's strings are shared, not copied per row."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = np.append(np.asarray(column.cat.categories, dtype=object), None)
        return categories[column.cat.codes.to_numpy()]  # code -1 (a gap) picks the None
    if column.dtype.kind in "iuf":
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return column.to_numpy(dtype=object)


def _suspect(feature: schema.Feature, column: pd.Series, values: np.ndarray) -> np.ndarray:
    """Rows whose value may break the feature's rule, from whole columns (no per-row Python).

    Conservative: a row it passes, the API's checks pass too; a row it flags is judged by
    them (pydantic), so the verdicts and reasons are the API's own.
    """
    missing = column.isna().to_numpy()
    if feature.is_categorical:
        if isinstance(column.dtype, pd.CategoricalDtype):
            known = np.isin(np.asarray(column.cat.categories, dtype=object), feature.values)
            ok = np.append(known, False)[column.cat.codes.to_numpy()]
        else:
            ok = column.isin(feature.values).to_numpy()
    elif column.dtype.kind in "iuf":  # numbers; a flag column with a gap reads as floats
        ok = np.isfinite(values) & (values >= feature.minimum) & (values <= feature.maximum)
        if feature.kind == "binary":
            ok &= values == np.round(values)
    else:  # bool, text or mixed: let the API's checks say what is wrong
        ok = np.zeros(len(column), dtype=bool)
    return ~ok & ~(missing & feature.nullable)


class Scorer:
    """Validates and scores chunks of customers; counts what it scored and rejected.

    A chunk is checked column by column with numpy; only the rows that check flags go
    through pydantic, the API's validator, which gives each bad row its reason.
    """

    def __init__(self, model_dir: Path) -> None:
        self.predictor = Predictor(model_dir / MODEL_FILE)
        self.threshold = card.decision_threshold(card.read_card(model_dir))
        self.customers = TypeAdapter(list[customer_model()])

    def score(self, chunk: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(scored rows, rejected rows with `row` and `reason`) of one chunk."""
        schema.require_features(chunk.columns, "the input")
        columns = {f.name: _values(chunk[f.name]) for f in schema.FEATURES}
        suspects = np.zeros(len(chunk), dtype=bool)
        for feature in schema.FEATURES:
            suspects |= _suspect(feature, chunk[feature.name], columns[feature.name])
        flagged = np.flatnonzero(suspects)
        reasons = self._reasons(chunk.iloc[flagged], flagged) if len(flagged) else {}
        good = np.ones(len(chunk), dtype=bool)
        good[list(reasons)] = False
        if reasons:
            columns = {name: values[good] for name, values in columns.items()}
        scored = pd.DataFrame(index=chunk.index[good])
        if schema.ID_COLUMN in chunk.columns:
            scored[schema.ID_COLUMN] = chunk[schema.ID_COLUMN].to_numpy()[good]
        probabilities = (
            self.predictor.churn_probability(columns) if good.any() else np.empty(0, np.float32)
        )
        scored["churn_probability"] = probabilities
        scored["churn"] = probabilities >= self.threshold
        bad = sorted(reasons)
        rejects = chunk.iloc[bad].copy()
        rejects.insert(0, "reason", [reasons[i] for i in bad])
        rejects.insert(0, "row", [first_row + i for i in bad])
        return scored, rejects

    def _reasons(self, rows: pd.DataFrame, positions: np.ndarray) -> dict[int, str]:
        """The first problem of each invalid row, by its position in the chunk."""
        reasons: dict[int, str] = {}
        try:
            self.customers.validate_python(schema.records_of(schema.request_columns(rows)))
        except ValidationError as error:
            for detail in error.errors(include_url=False, include_input=False):
                index, *field = detail["loc"]
                reasons.setdefault(
                    int(positions[int(index)]), f"{field_path(field)}: {detail['msg']}"
                )
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
