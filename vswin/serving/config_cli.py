"""`vswin config`: generate and validate models.config, move version labels (argparse only at import)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONFIG = "serving_config/models.config"
DEFAULT_CONFIG_DIR = "serving_config"
DEFAULT_CONFIGMAP = "serving_config/k8s/configmap.yaml"
DEFAULT_BATCHING = "serving_config/batching_parameters.txt"
EXIT_PENDING_LOAD = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="Generate and validate models.config; promote and roll back version labels.",
        description="models.config tooling: generate, validate, and label moves for rollouts "
        "(see serving_config/README.md).",
    )
    commands = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)

    generate = commands.add_parser("generate", help="A models.config with one entry per model directory.")
    generate.add_argument("models_root", help="Directory of model directories (each holding version directories).")
    generate.add_argument("--out", help="Write here (atomically) instead of printing.")
    generate.add_argument("--policy", choices=("latest", "all", "specific"), default="latest",
                          help="Version policy (default latest; specific serves the labelled versions).")
    generate.add_argument("--num-versions", type=int, default=1, help="Versions kept by --policy latest (default 1).")
    generate.add_argument("--label", action="append", default=[], metavar="LABEL=VERSION",
                          help="Version label, VERSION a number or 'latest'; repeatable (e.g. stable=latest).")
    generate.add_argument("--base-path-prefix",
                          help="Root written into base_path instead of MODELS_ROOT's absolute path (e.g. /models).")
    generate.set_defaults(func=run_generate)

    validate = commands.add_parser("validate", help="Check a models.config against the exported models.")
    validate.add_argument("--config", default=DEFAULT_CONFIG, help=f"models.config (default {DEFAULT_CONFIG}).")
    validate.add_argument("--map", action="append", default=[], metavar="PREFIX=DIR",
                          help="Check base paths under PREFIX in DIR instead (e.g. /models=./exports); repeatable.")
    validate.set_defaults(func=run_validate)

    for name, text in (("promote", "Point a version label at a version (loaded first)."),
                       ("rollback", "Move the stable label back to the previous stable version.")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("model", help="Model name in the config.")
        sub.add_argument("--config", default=DEFAULT_CONFIG, help=f"models.config (default {DEFAULT_CONFIG}).")
        sub.add_argument("--server", metavar="HOST:PORT",
                         help="Running server: check versions with GetModelStatus and apply the new config with "
                         "HandleReloadConfigRequest.")
        sub.add_argument("--map", action="append", default=[], metavar="PREFIX=DIR",
                         help="Without --server: look for base paths under PREFIX in DIR (e.g. /models=./exports).")
        sub.add_argument("--wait", type=float, default=120.0,
                         help="With --server: seconds a reload and a new version's loading may take (default 120).")
        if name == "promote":
            sub.add_argument("--label", required=True, help="Label to move, e.g. canary or stable.")
            source = sub.add_mutually_exclusive_group(required=True)
            source.add_argument("--version", type=int, help="Version to point the label at.")
            source.add_argument("--from", dest="from_label", metavar="LABEL",
                                help="Point the label at the version this label points at (e.g. --from canary).")
        sub.set_defaults(func=run_label_move, action=name)

    configmap = commands.add_parser("configmap", help="Regenerate the Kubernetes ConfigMap from the config files.",
                                    description="Write the ConfigMap that carries models.config, "
                                    "batching_parameters.txt and monitoring.config to every replica.")
    configmap.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR,
                           help=f"Directory of the three files (default {DEFAULT_CONFIG_DIR}).")
    configmap.add_argument("--out", default=DEFAULT_CONFIGMAP, help=f"Manifest to write (default {DEFAULT_CONFIGMAP}).")
    configmap.add_argument("--check", action="store_true",
                           help="Write nothing; exit 1 if --out differs from what would be written.")
    configmap.set_defaults(func=run_configmap)

    sizes = commands.add_parser("batch-sizes", help="Print a batching file's allowed_batch_sizes (e.g. 1,2,4,8).",
                                description="The batch plan as `vswin export --batch-sizes` takes it.")
    sizes.add_argument("batching_file", nargs="?", default=DEFAULT_BATCHING,
                       help=f"BatchingParameters text proto (default {DEFAULT_BATCHING}).")
    sizes.set_defaults(func=run_batch_sizes)


def run_generate(args: argparse.Namespace) -> int:
    from google.protobuf import text_format

    from vswin.serving.config_tools import generate_config, parse_assignments
    from vswin.serving.rollout import write_config

    try:
        labels = parse_assignments(args.label, "--label")
        config = generate_config(Path(args.models_root), args.policy, args.num_versions, labels,
                                 args.base_path_prefix)
    except (ValueError, OSError) as err:
        print(f"vswin config generate: {err}", file=sys.stderr)
        return 1
    if args.out:
        write_config(Path(args.out), config)
        print(f"wrote {args.out} ({len(config.model_config_list.config)} models)")
    else:
        sys.stdout.write(text_format.MessageToString(config))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from vswin.serving.config_tools import parse_assignments, validate_config
    from vswin.serving.model_config import model_config_problems, read_model_config

    try:
        path_map = parse_assignments(args.map, "--map")
        config = read_model_config(Path(args.config), check=False)  # rule problems are listed below
    except ValueError as err:
        print(f"vswin config validate: {err}", file=sys.stderr)
        return 1
    problems = model_config_problems(config) + validate_config(config, path_map)
    for problem in problems:
        print(f"{args.config}: {problem}", file=sys.stderr)
    if problems:
        print(f"{args.config}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.config}: OK ({len(config.model_config_list.config)} models)")
    return 0


def run_label_move(args: argparse.Namespace) -> int:
    from vswin.serving.config_tools import parse_assignments, version_on_disk
    from vswin.serving.rollout import PendingLoad, Rollout, RolloutError, ServerControl

    try:
        path_map = parse_assignments(args.map, "--map")
    except ValueError as err:
        print(f"vswin config {args.action}: {err}", file=sys.stderr)
        return 1
    server = ServerControl(args.server, timeout=args.wait) if args.server else None
    loaded = server.not_available if server else version_on_disk(path_map)
    rollout = Rollout(Path(args.config), loaded, server, wait_seconds=args.wait)
    try:
        if args.action == "promote":
            version = rollout.promote(args.model, args.label, args.version, args.from_label)
            print(f"{args.model}: {args.label} -> version {version}")
        else:
            version = rollout.rollback(args.model)
            print(f"{args.model}: stable rolled back to version {version}")
    except PendingLoad as err:
        print(f"vswin config {args.action}: {err}", file=sys.stderr)
        return EXIT_PENDING_LOAD
    except (RolloutError, ValueError) as err:
        print(f"vswin config {args.action}: {err}", file=sys.stderr)
        return 1
    finally:
        if server:
            server.close()
    return 0


def run_configmap(args: argparse.Namespace) -> int:
    from vswin.atomic import publish
    from vswin.serving.k8s_config import configmap_yaml

    try:
        text = configmap_yaml(Path(args.config_dir))
    except OSError as err:
        print(f"vswin config configmap: {err}", file=sys.stderr)
        return 1
    out = Path(args.out)
    if args.check:
        current = out.read_text() if out.exists() else None
        if current != text:
            print(f"{out} is stale: run `vswin config configmap` to regenerate it from {args.config_dir}/",
                  file=sys.stderr)
            return 1
        print(f"{out}: up to date")
        return 0
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text)
        publish(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out}")
    return 0


def run_batch_sizes(args: argparse.Namespace) -> int:
    from vswin.serving.k8s_config import batch_sizes

    try:
        print(",".join(map(str, batch_sizes(Path(args.batching_file)))))
    except ValueError as err:
        print(f"vswin config batch-sizes: {err}", file=sys.stderr)
        return 1
    return 0
