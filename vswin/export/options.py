"""Export choices, kept free of TensorFlow so the `vswin` CLI can offer them without importing it."""

# --precision -> Keras dtype policy (weights stay float32; compute runs in the named precision).
PRECISIONS = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}

ATTENTION_ALL, ATTENTION_LAST = "all", "last"


def attention_blocks(spec: str, depths: tuple[int, ...]) -> list[tuple[int, int]]:
    """(stage, block) pairs of `--attention-blocks`: `last`, `all`, or a comma list of `S` (a whole stage) and `S.B`.

    Stages and blocks count from 0, as `attention_stage{S}_block{B}` names them; order is kept, repeats dropped.
    """
    every = [(stage, block) for stage, depth in enumerate(depths) for block in range(depth)]
    chosen: list[tuple[int, int]] = []
    for item in (part.strip() for part in spec.split(",")):
        if item == ATTENTION_ALL:
            picked = every
        elif item == ATTENTION_LAST:
            picked = every[-1:]
        else:
            picked = _stage_or_block(item, depths, spec)
        chosen += [pair for pair in picked if pair not in chosen]
    return chosen


def _stage_or_block(item: str, depths: tuple[int, ...], spec: str) -> list[tuple[int, int]]:
    parts = item.split(".")
    if not 1 <= len(parts) <= 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"attention blocks {spec!r}: {item!r} is not 'last', 'all', a stage S or a block S.B")
    stage = int(parts[0])
    if stage >= len(depths):
        raise ValueError(f"attention blocks {spec!r}: stage {stage} does not exist (stages 0..{len(depths) - 1})")
    if len(parts) == 1:
        return [(stage, block) for block in range(depths[stage])]
    block = int(parts[1])
    if block >= depths[stage]:
        raise ValueError(f"attention blocks {spec!r}: stage {stage} has blocks 0..{depths[stage] - 1}, not {block}")
    return [(stage, block)]
