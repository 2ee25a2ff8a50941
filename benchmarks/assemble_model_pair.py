"""Assemble a two-pass HC Studio model: an int8 first pass that names an int8 refining model.

Writes OUT_DIR/FILE.onnx (the first pass, quantised from --first) and OUT_DIR/FILE_refine.onnx
(the refining pass, quantised from --refiner), both with `quantize_model.py`. The first pass's
metadata names the refining model (`hc_studio.refiner`, `hc_studio.refine_margin`) and the float
model it was quantised from (`hc_studio.float_weights`: `train --init` and `--adapt` start from
those weights, since int8 convolutions with batch norm folded in cannot be trained), which must
be copied beside it; `--name`, `--data`, `--validation` and `--method` describe the pair.

    python benchmarks/assemble_model_pair.py --first models/hc_head_ersr_v1.onnx \\
        --first-calibration $SPLIT/train --refiner $RUN/model.onnx \\
        --refiner-calibration $CROPS/train/images --file hc_head_v2 --name hc-head-v2 \\
        --out-dir models
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
from pathlib import Path

from quantize_model import quantise


def set_metadata(path: Path, values: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    properties = {p.key: p.value for p in model.metadata_props}
    properties.update(values)
    del model.metadata_props[:]
    for key, value in properties.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--first", type=Path, required=True, help="Float first-pass model (HC Studio ONNX).")
    add("--first-calibration", type=Path, required=True, help="Training-side frames.")
    add("--refiner", type=Path, required=True, help="Float refining model (square input).")
    add("--refiner-calibration", type=Path, required=True, help="Training-side head crops.")
    add("--margin", type=float, default=1.25, help="Window margin the refiner learned (1.25).")
    add("--file", required=True, help="File stem of the pair, e.g. hc_head_v2.")
    add("--name", required=True, help="Model name in the metadata, e.g. hc-head-v2.")
    add("--data", default="", help="Training data description for the metadata.")
    add("--method", default="", help="Training method description for the metadata.")
    add("--validation", type=Path, help="A JSON of held-out figures to store in the metadata.")
    add("--out-dir", type=Path, required=True, help="Folder to write the pair into.")
    args = parser.parse_args(argv)

    first_out = args.out_dir / f"{args.file}.onnx"
    refiner_out = args.out_dir / f"{args.file}_refine.onnx"
    float_copy = args.out_dir / args.first.name
    validation = args.validation.read_text() if args.validation else "{}"
    json.loads(validation)  # refuse a broken JSON before writing anything
    common = {
        "hc_studio.date": datetime.date.today().isoformat(),
        "hc_studio.data": args.data,
        "hc_studio.method": args.method,
        "hc_studio.validation": validation,
    }
    try:
        with tempfile.TemporaryDirectory() as work:
            first_tmp, refiner_tmp = Path(work) / "first.onnx", Path(work) / "refine.onnx"
            quantise(args.refiner, args.refiner_calibration, refiner_tmp)
            quantise(args.first, args.first_calibration, first_tmp)
            set_metadata(refiner_tmp, {**common, "hc_studio.name": f"{args.name}-refine"})
            set_metadata(
                first_tmp,
                {
                    **common,
                    "hc_studio.name": args.name,
                    "hc_studio.refiner": refiner_out.name,
                    "hc_studio.refine_margin": f"{args.margin:g}",
                    "hc_studio.float_weights": float_copy.name,
                },
            )
            args.out_dir.mkdir(parents=True, exist_ok=True)
            if float_copy.resolve() != args.first.resolve():
                shutil.copy(args.first, float_copy)
            shutil.move(refiner_tmp, refiner_out)
            shutil.move(first_tmp, first_out)
    except (OSError, ValueError) as error:
        print(f"assemble_model_pair: {error}", file=sys.stderr)
        return 2
    print(f"wrote {first_out} (refiner {refiner_out.name}, float weights {float_copy.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
