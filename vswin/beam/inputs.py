"""Which videos: a glob (or a folder) or a text file of URIs, on any filesystem Beam reads (local, gs://, s3://)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.textio import ReadFromText

# `--inputs` naming a file with one of these suffixes is a list of URIs, anything else a glob.
LIST_SUFFIXES = (".txt", ".list")


def is_list_file(inputs: str) -> bool:
    return inputs.endswith(LIST_SUFFIXES)


def as_pattern(inputs: str) -> str:
    """A folder (local, or any URI ending in '/') stands for every file in it."""
    if inputs.endswith("/") or ("://" not in inputs and os.path.isdir(inputs)):
        return inputs.rstrip("/") + "/*"
    return inputs


def list_entries(line: str) -> Iterator[str]:
    """One URI per line; blank lines and '#' comments skipped, as `vswin extract --list` reads them."""
    entry = line.strip()
    if entry and not entry.startswith("#"):
        yield entry


class ReadVideoUris(beam.PTransform):
    """PBegin -> the URIs of `inputs`: a glob or folder (matched with Beam's fileio), or a .txt/.list file of
    URIs. The URI is each video's key in the output."""

    def __init__(self, inputs: str) -> None:
        super().__init__()
        self.inputs = inputs

    def expand(self, pbegin):
        if is_list_file(self.inputs):
            return pbegin | "ReadList" >> ReadFromText(self.inputs) | "Entries" >> beam.FlatMap(list_entries)
        return (pbegin | "Match" >> fileio.MatchFiles(as_pattern(self.inputs))
                | "Paths" >> beam.Map(lambda match: match.path))
