"""`vswin beam`: a folder or list of videos and images -> Parquet (or TFRecord) features, on any Beam runner.

Imports only argparse at module level; Beam, the client and (in-process
mode) TensorFlow load inside the handler. Options it does not know go to
Beam's PipelineOptions (--runner, --project, --direct_num_workers, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vswin import contract
from vswin.client.cli import add_sampling_arguments, add_tls_arguments, extract_options, tls_options

DESCRIPTION = (
    "Turns videos and images (jpg, png, webp; a glob, a folder, or a .txt/.list file of URIs on any filesystem "
    "Beam reads) into one row of features per file: PREFIX-SSSSS-of-NNNNN.parquet (key, model, version, "
    "clip_starts, features, clip_features), or .tfrecord of tf.train.Example. Each file is cut the way the model "
    "was evaluated (the preprocessing recorded in its export; flags override it); an image model takes images, "
    "and --frames-per-video frames of each video. Files that fail go to PREFIX-failed-00000-of-00001.jsonl "
    "(key, stage, error) and the job goes on. Inference is remote (--server: TF Serving or vswin serve, no "
    "TensorFlow in the workers) or in each worker (--savedmodel). Any other option goes to Beam, e.g. "
    "--direct_num_workers 2 --direct_running_mode multi_processing, or --runner DataflowRunner --project P "
    "--region R --temp_location gs://... --sdk_container_image IMAGE."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "beam", help="Extract features from many videos and images with Apache Beam (DirectRunner, Dataflow, Flink, "
                     "Spark).",
        description=DESCRIPTION, allow_abbrev=False,
    )
    parser.add_argument("--inputs", required=True, help="Glob, folder, or .txt/.list file with one URI per line.")
    parser.add_argument("--output", required=True, help="Output prefix, e.g. gs://bucket/features/k400.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--server", help="gRPC target of TF Serving or vswin serve (remote inference).")
    source.add_argument("--savedmodel", help="Export version directory BASE/NAME/VERSION (in-process inference).")
    parser.add_argument("--model", help="Model name on the server (with --server).")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="Model version on the server (default: its latest).")
    which.add_argument("--label", help="Model version label on the server, e.g. stable.")
    parser.add_argument("--signature", default=contract.SERVING_DEFAULT,
                        help=f"Signature to call (default {contract.SERVING_DEFAULT}).")
    add_sampling_arguments(parser)
    parser.add_argument("--format", dest="output_format", choices=("parquet", "tfrecord"), default="parquet",
                        help="Output format (default parquet).")
    parser.add_argument("--num-shards", type=int,
                        help="Output files (default: as many as the earlier output at PREFIX has, else 1).")
    parser.add_argument("--skip-existing", action="store_true",
                        help="Process only the files whose keys are not in the output yet, and keep the rest.")
    parser.add_argument("--max-batch", type=int, default=contract.MAX_BATCH_SIZE,
                        help="Views (clips, images or frames) per inference batch, across files "
                             f"(default {contract.MAX_BATCH_SIZE}).")
    parser.add_argument("--max-in-flight", type=int, default=4,
                        help="Predict requests one worker process has open at once (default 4).")
    parser.add_argument("--timeout", type=float, default=60.0, help="Deadline per request, seconds (default 60).")
    parser.add_argument("--retries", type=int, default=3,
                        help="Attempts of a whole batch after the client's own retries (default 3).")
    parser.add_argument("--model-copies", type=int,
                        help="With --savedmodel: share this many model copies among a worker's processes "
                             "(one per GPU); default one per process.")
    add_tls_arguments(parser)
    parser.add_argument("--metrics-json", type=Path, help="Also write the job's counters and seconds here.")
    parser.set_defaults(func=run, accepts_pipeline_args=True)


def model_from_args(args: argparse.Namespace):
    """RemoteModel or ExportedModel from the command line."""
    from vswin.beam.models import ExportedModel, RemoteModel

    if args.server:
        if not args.model:
            raise ValueError("--server needs --model (the model's name on the server)")
        # Certificates travel as PEM bytes: the workers (Dataflow VMs) do not have the launcher's files.
        channel = {k: v.read_bytes() if isinstance(v, Path) else v for k, v in tls_options(args).items() if v}
        return RemoteModel(args.server, args.model, version=args.version, label=args.label, signature=args.signature,
                           timeout=args.timeout, max_batch=args.max_batch, max_in_flight=args.max_in_flight,
                           num_retries=args.retries, channel=channel)
    if args.version is not None or args.label is not None or args.model:
        raise ValueError("--model, --version and --label go with --server; --savedmodel names one version")
    return ExportedModel(args.savedmodel, signature=args.signature, max_batch=args.max_batch,
                         model_copies=args.model_copies)


def run(args: argparse.Namespace) -> int:
    import logging

    pipeline_args = list(args.pipeline_args)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # Beam's INFO lines would drown the job's own
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
        if not any(arg.startswith("--default_sdk_harness_log_level") for arg in pipeline_args):
            pipeline_args += ["--default_sdk_harness_log_level", "WARNING"]

    from vswin.beam import metrics
    from vswin.beam.pipeline import Job, run as run_job
    from vswin.client.extract import ExtractOptions

    try:
        job = Job(inputs=args.inputs, output=args.output, model=model_from_args(args),
                  options=ExtractOptions(**extract_options(args)), output_format=args.output_format,
                  num_shards=args.num_shards, skip_existing=args.skip_existing,
                  pipeline_args=tuple(pipeline_args))
        totals, seconds = run_job(job)
    except ValueError as err:
        print(f"vswin beam: {err}", file=sys.stderr)
        return 2
    print(metrics.summary(totals, seconds), file=sys.stderr)
    if totals[metrics.VIDEOS_FAILED]:
        print(f"vswin beam: failures are listed in {args.output}-failed-00000-of-00001.jsonl", file=sys.stderr)
    if args.metrics_json:
        args.metrics_json.write_text(json.dumps({"counters": totals, "seconds": seconds}, indent=1) + "\n")
    return 1 if totals[metrics.VIDEOS_FAILED] else 0
