"""Rows of the Hugging Face Hub's Parquet files by index, for the ingests that read them (`donut`: synthdog-en/zh;
`llava`: LLaVA-ReCap, LLaVA-OneVision-Data): planning counts the rows, each task reads its rows a row group at a
time (rows come in order within a task, so a row group is read once per task, not once per row).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pipelines.job import InputError
from pipelines.storage import open_url

PARQUET = ".parquet"


class ParquetRows:
    """A Parquet file's rows by index, read a row group at a time (rows come in order within a task): the
    `columns` named (all of them by default). The Hub's image columns are `{"bytes", "path"}` structs."""

    def __init__(self, url: str, columns: tuple[str, ...] | None = None):
        import pyarrow.parquet as pq

        self.url = url
        self.read = columns
        with open_url(url, "rb") as f:
            metadata = pq.ParquetFile(f).metadata
        self.columns = set(metadata.schema.to_arrow_schema().names)
        self.starts = [0]
        for group in range(metadata.num_row_groups):
            self.starts.append(self.starts[-1] + metadata.row_group(group).num_rows)

    @property
    def num_rows(self) -> int:
        return self.starts[-1]

    def row(self, index: int) -> dict[str, Any]:
        group = next(g for g in range(len(self.starts) - 1) if self.starts[g] <= index < self.starts[g + 1])
        return _row_group(self.url, group, self.read)[index - self.starts[group]]


@lru_cache(maxsize=2)
def _row_group(url: str, group: int, columns: tuple[str, ...] | None) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    with open_url(url, "rb") as f:
        return pq.ParquetFile(f).read_row_group(group, columns=list(columns) if columns else None).to_pylist()


@lru_cache(maxsize=4)
def parquet_rows(url: str, columns: tuple[str, ...] | None = None) -> ParquetRows:
    return ParquetRows(url, columns)


def open_parquet(url: str, columns: tuple[str, ...] | None = None) -> ParquetRows:
    """`parquet_rows(url, columns)`; a file that is not Parquet is an `InputError` naming it."""
    try:
        return parquet_rows(url, columns)
    except Exception as exn:  # pyarrow's errors for a file that is not Parquet have no common base
        raise InputError(url, "read parquet", f"not a readable Parquet file: {exn}",
                         exception=type(exn).__name__) from exn
