"""The bad-input campaign: malformed frames, DICOMs, CSVs, labelled folders, models, output paths
and kills, each with what a trustworthy tool must do with it (see `reliability_harness`).

Every case writes its own inputs into an empty folder, from the HC18 sample frames shipped in
`resources/samples/` and from data it makes; nothing is downloaded and nothing outside the folder
is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from reliability_harness import (
    Case,
    Run,
    all_of,
    kill_signal,
    measured_file,
    refused_file,
    usage_error,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "resources" / "samples"
GOOD = "143_2HC.png"  # a real HC18 frame with its pixel size in samples/pixel_size.csv
GOOD_MM = 0.086366534


# ----- building blocks ----------------------------------------------------------------------


def good_frame() -> np.ndarray:
    return cv2.imread(str(SAMPLES / GOOD), cv2.IMREAD_GRAYSCALE)


def put_good(folder: Path, name: str = GOOD) -> Path:
    target = folder / name
    shutil.copyfile(SAMPLES / GOOD, target)
    return target


def png_bytes_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` with one tiny (invalid) data chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def frame_case(
    group: str,
    name: str,
    target: str,
    write: Callable[[Path], None],
    expect: str = "refuse",
    extra: tuple[str, ...] = (),
) -> Case:
    """`measure` on a folder with one good frame and `target`; the good frame must still be
    measured (the batch goes on) and `target` refused or measured as `expect` says."""

    def build(folder: Path) -> list[str]:
        data = folder / "frames"
        data.mkdir()
        put_good(data)
        write(data)
        return ["measure", "frames", "--out", "out.csv", *extra]

    target_check = refused_file(target) if expect == "refuse" else measured_file(target)
    good_check = measured_file(GOOD)

    def precious(folder: Path) -> list[Path]:
        return [folder / "frames" / GOOD]

    return Case(group, name, build, all_of(good_check, target_check), precious)


def write_image(name: str, image: np.ndarray, params: tuple[int, ...] = ()) -> Callable:
    def write(folder: Path) -> None:
        ok, buffer = cv2.imencode(Path(name).suffix, image, list(params))
        assert ok, name
        (folder / name).write_bytes(buffer.tobytes())

    return write


def write_bytes(name: str, data: bytes) -> Callable:
    def write(folder: Path) -> None:
        (folder / name).write_bytes(data)

    return write


# ----- frames ---------------------------------------------------------------------------------


def frame_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    frame = good_frame()
    h, w = frame.shape
    good_png = (SAMPLES / GOOD).read_bytes()
    noise = rng.integers(0, 256, (h, w), dtype=np.uint8)
    checker = ((np.indices((h, w)).sum(0) // 40) % 2 * 255).astype(np.uint8)
    speckle = np.clip(rng.rayleigh(40, (h, w)), 0, 255).astype(np.uint8)
    corner = cv2.resize(frame[: h // 4, : w // 4], (w, h))
    ramp = np.linspace(0, 255, w)[None, :].repeat(h, 0).astype(np.uint8)
    ring = np.zeros((h, w), np.uint8)
    cv2.circle(ring, (w // 2, h // 2), 150, 255, 12)  # a bright ring and nothing inside: no brain
    text = np.zeros((h, w), np.uint8)
    cv2.putText(text, "HC STUDIO", (40, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 4, 255, 8)
    cases = [
        ("empty file", "empty.png", write_bytes("empty.png", b"")),
        ("random bytes", "random.png", write_bytes("random.png", rng.bytes(5000))),
        ("text file named .png", "notes.png", write_bytes("notes.png", b"not an image\n" * 20)),
        (
            "truncated PNG (half)",
            "half.png",
            write_bytes("half.png", good_png[: len(good_png) // 2]),
        ),
        ("PNG header only", "header.png", write_bytes("header.png", good_png[:40])),
        (
            "PNG claiming 40000x40000",
            "huge.png",
            write_bytes("huge.png", png_bytes_with_size(40000, 40000)),
        ),
        (
            "PNG claiming 20000x20000",
            "big.png",
            write_bytes("big.png", png_bytes_with_size(20000, 20000)),
        ),
        ("PNG claiming 0x0", "zero.png", write_bytes("zero.png", png_bytes_with_size(0, 0))),
        ("1x1 PNG", "dot.png", write_image("dot.png", np.full((1, 1), 128, np.uint8))),
        ("3x3 PNG", "tiny.png", write_image("tiny.png", np.full((3, 3), 128, np.uint8))),
        ("all-black frame", "black.png", write_image("black.png", np.zeros((h, w), np.uint8))),
        ("all-white frame", "white.png", write_image("white.png", np.full((h, w), 255, np.uint8))),
        ("mid-grey frame", "grey.png", write_image("grey.png", np.full((h, w), 128, np.uint8))),
        ("uniform noise", "noise.png", write_image("noise.png", noise)),
        ("speckle noise", "speckle.png", write_image("speckle.png", speckle)),
        ("checkerboard", "checker.png", write_image("checker.png", checker)),
        ("intensity ramp", "ramp.png", write_image("ramp.png", ramp)),
        ("corner of a frame, no head", "corner.png", write_image("corner.png", corner)),
        ("empty bright ring", "ring.png", write_image("ring.png", ring)),
        ("text on black", "text.png", write_image("text.png", text)),
        ("10x8000 strip", "strip.png", write_image("strip.png", np.full((10, 8000), 90, np.uint8))),
        (
            "truncated JPEG",
            "cut.jpg",
            write_bytes("cut.jpg", cv2.imencode(".jpg", frame)[1].tobytes()[:3000]),
        ),
        ("corrupt TIFF", "bad.tif", write_bytes("bad.tif", b"II*\x00" + rng.bytes(400))),
        ("zero-byte video", "clip.mp4", write_bytes("clip.mp4", b"")),
        ("random-bytes video", "clip.avi", write_bytes("clip.avi", rng.bytes(20000))),
        ("random-bytes DICOM suffix", "scan.dcm", write_bytes("scan.dcm", rng.bytes(3000))),
    ]
    result = [frame_case("frames", name, target, write) for name, target, write in cases]

    controls = [
        (
            "16-bit PNG of a real frame",
            "deep.png",
            write_image("deep.png", frame.astype(np.uint16) * 257),
        ),
        ("RGB PNG of a real frame", "rgb.png", write_image("rgb.png", cv2.merge([frame] * 3))),
        (
            "RGBA PNG of a real frame",
            "rgba.png",
            write_image("rgba.png", cv2.merge([frame] * 3 + [np.full_like(frame, 255)])),
        ),
        ("JPEG of a real frame", "real.jpg", write_image("real.jpg", frame)),
        ("TIFF of a real frame", "real.tif", write_image("real.tif", frame)),
        ("BMP of a real frame", "real.bmp", write_image("real.bmp", frame)),
        ("mirrored real frame", "mirror.png", write_image("mirror.png", frame[:, ::-1].copy())),
        (
            "JPEG bytes named .png",
            "disguised.png",
            write_bytes("disguised.png", cv2.imencode(".jpg", frame)[1].tobytes()),
        ),
    ]
    result += [
        frame_case("frames", name, target, write, expect="measure")
        for name, target, write in controls
    ]

    def dangling(folder: Path) -> None:
        (folder / "gone.png").symlink_to(folder / "nowhere.png")

    def loop(folder: Path) -> None:
        (folder / "loop").symlink_to(folder, target_is_directory=True)

    def directory(folder: Path) -> None:
        (folder / "dir.png").mkdir()

    result += [
        frame_case("frames", "dangling symlink", "gone.png", dangling),
        frame_case("frames", "folder named .png", "dir.png", directory, expect="none"),
        frame_case("frames", "symlink loop in folder", "loop", loop, expect="none"),
    ]
    for case in result[-2:]:
        case.check = measured_file(GOOD)
    return result


# ----- file names: CSV injection --------------------------------------------------------------


def injection_case(name: str) -> Case:
    def build(folder: Path) -> list[str]:
        data = folder / "frames"
        data.mkdir()
        put_good(data, name)
        return ["measure", "frames", "--out", "out.csv"]

    def check(run: Run) -> tuple[str, str] | None:
        raw = (run.folder / "out.csv").read_text(encoding="utf-8", errors="replace")
        for line in raw.splitlines()[1:]:
            cell = line.split(",")[0].strip('"')
            if cell and cell[0] in "=+-@\t\r":
                return "silently wrong", f"cell {cell[:30]!r} would run as a formula"
        if "frames/" not in raw and "frames\\" not in raw:
            return "silently wrong", "frame missing from the CSV"
        return None

    return Case("file names", f"CSV injection: {name}", build, check)


def name_cases() -> list[Case]:
    names = ["=HYPERLINK(1).png", "+1.png", "-x.png", "@cmd.png", "\tTab.png"]
    cases = [injection_case(name) for name in names]

    def build(folder: Path) -> list[str]:
        put_good(folder, "=1+1.png")
        return ["measure", "=1+1.png", "--out", "out.csv"]

    cases.append(
        Case("file names", "formula-like name given directly", build, measured_file("=1+1.png"))
    )
    return cases


# ----- DICOM ----------------------------------------------------------------------------------


def dicom_dataset(frames: np.ndarray, **fields):
    """An ultrasound DICOM dataset holding `frames` (N, H, W) uint8/uint16/int16."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = fields.pop("transfer_syntax", ExplicitVRLittleEndian)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    n, h, w = frames.shape
    ds.Rows, ds.Columns = h, w
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = frames.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if frames.dtype.kind == "i" else 0
    if n > 1:
        ds.NumberOfFrames = n
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    for key, value in fields.items():
        setattr(ds, key, value)
    return ds


def us_region(x0: int, y0: int, x1: int, y1: int, delta_cm: float, units: int = 3):
    from pydicom.dataset import Dataset

    region = Dataset()
    region.RegionSpatialFormat = 1
    region.RegionDataType = 1
    region.RegionFlags = 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = x0, y0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = x1, y1
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = units
    region.PhysicalDeltaX = region.PhysicalDeltaY = delta_cm
    return region


def dicom_case(
    name: str,
    make: Callable[[np.ndarray], object],
    check_kind: str,
    mutate: Callable[[Path], None] | None = None,
) -> Case:
    """`measure scan.dcm`: `check_kind` is refuse | measure | uncalibrated | calibrated."""

    def build(folder: Path) -> list[str]:
        ds = make(good_frame()[None])
        path = folder / "scan.dcm"
        ds.save_as(path, enforce_file_format=True)
        if mutate is not None:
            mutate(path)
        return ["measure", "scan.dcm", "--out", "out.csv"]

    if check_kind == "refuse":
        check = refused_file("scan.dcm")
    elif check_kind == "uncalibrated":
        check = measured_file("scan.dcm", calibrated=False)
    elif check_kind == "calibrated":
        check = measured_file("scan.dcm", calibrated=True)
    else:
        check = measured_file("scan.dcm")

    def no_nan(run: Run) -> tuple[str, str] | None:
        text = (run.folder / "out.csv").read_text() if (run.folder / "out.csv").exists() else ""
        if "nan" in text.lower().split("nan-")[0] and ",nan" in text.lower():
            return "silently wrong", "nan in the CSV"
        return None

    return Case("DICOM", name, build, all_of(check, no_nan))


def dicom_cases() -> list[Case]:
    from pydicom.sequence import Sequence

    h, w = good_frame().shape

    def plain(frames):
        return dicom_dataset(frames)

    def spacing(value):
        return lambda frames: dicom_dataset(frames, PixelSpacing=value)

    def regions(*items):
        return lambda frames: dicom_dataset(
            frames, SequenceOfUltrasoundRegions=Sequence(list(items))
        )

    def signed(frames):
        values = frames.astype(np.int16) * 100 - 12000  # -12000 .. 13500
        return dicom_dataset(values, WindowCenter=750, WindowWidth=25500)

    def signed_nowindow(frames):
        return dicom_dataset(frames.astype(np.int16) * 100 - 12000)

    def rows_mismatch(frames):
        ds = dicom_dataset(frames)
        ds.Rows = h + 40
        return ds

    def no_pixels(frames):
        ds = dicom_dataset(frames)
        del ds.PixelData
        return ds

    def too_many_frames(frames):
        ds = dicom_dataset(frames)
        ds.NumberOfFrames = 5
        return ds

    def huge_claim(frames):
        ds = dicom_dataset(frames)
        ds.Rows, ds.Columns = 40000, 40000
        return ds

    def mono1(frames):
        ds = dicom_dataset(255 - frames)
        ds.PhotometricInterpretation = "MONOCHROME1"
        return ds

    def unknown_syntax(path: Path) -> None:
        # pydicom refuses to write an unknown syntax: patch the UID in the written file meta.
        data = path.read_bytes()
        path.write_bytes(data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.9\x00", 1))

    def truncate(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])

    return [
        dicom_case("plain 8-bit, no calibration", plain, "uncalibrated"),
        dicom_case("PixelSpacing 0.0866 mm", spacing([GOOD_MM, GOOD_MM]), "calibrated"),
        dicom_case("PixelSpacing 0", spacing([0, 0]), "uncalibrated"),
        dicom_case("PixelSpacing negative", spacing([-0.1, -0.1]), "uncalibrated"),
        dicom_case("PixelSpacing 1e308", spacing([1e308, 1e308]), "uncalibrated"),
        dicom_case("PixelSpacing 50 mm", spacing([50, 50]), "uncalibrated"),
        dicom_case("PixelSpacing 0.0001 mm", spacing([0.0001, 0.0001]), "uncalibrated"),
        dicom_case(
            "US region holding the image",
            regions(us_region(0, 0, w - 1, h - 1, 0.00866)),
            "calibrated",
        ),
        dicom_case(
            "US region outside the image",
            regions(us_region(w + 10, h + 10, w + 400, h + 400, 0.00866)),
            "uncalibrated",
        ),
        dicom_case(
            "US region larger than the image",
            regions(us_region(0, 0, w + 500, h + 500, 0.00866)),
            "uncalibrated",
        ),
        dicom_case(
            "US region in mm units code 0",
            regions(us_region(0, 0, w - 1, h - 1, 0.1, 0)),
            "uncalibrated",
        ),
        dicom_case(
            "US region 10 cm per pixel",
            regions(us_region(0, 0, w - 1, h - 1, 10.0)),
            "uncalibrated",
        ),
        dicom_case("signed 16-bit with window", signed, "measure"),
        dicom_case("signed 16-bit without window", signed_nowindow, "measure"),
        dicom_case("MONOCHROME1", mono1, "measure"),
        dicom_case("Rows disagree with pixel data", rows_mismatch, "refuse"),
        dicom_case("no pixel data", no_pixels, "refuse"),
        dicom_case("NumberOfFrames beyond the data", too_many_frames, "refuse"),
        dicom_case("Rows/Columns claim 40000x40000", huge_claim, "refuse"),
        dicom_case("unknown transfer syntax", plain, "refuse", mutate=unknown_syntax),
        dicom_case("truncated file", plain, "refuse", mutate=truncate),
    ]


# ----- pixel CSVs -----------------------------------------------------------------------------


def csv_case(name: str, text: str | bytes, expect: str, *words: str) -> Case:
    """`measure GOOD --pixel-csv px.csv`: expect usage | calibrated | uncalibrated."""

    def build(folder: Path) -> list[str]:
        put_good(folder)
        data = text.encode() if isinstance(text, str) else text
        (folder / "px.csv").write_bytes(data)
        return ["measure", GOOD, "--pixel-csv", "px.csv", "--out", "out.csv"]

    if expect == "usage":
        check = usage_error("px.csv", *words)
    elif expect == "calibrated":
        check = measured_file(GOOD, calibrated=True)
    else:
        check = all_of(measured_file(GOOD, calibrated=False), _warns("px.csv"))
    return Case("pixel CSV", name, build, check, lambda f: [f / "px.csv", f / GOOD])


def _warns(word: str):
    def check(run: Run) -> tuple[str, str] | None:
        if word not in run.stderr:
            return "silently wrong", f"no warning naming {word}"
        return None

    return check


def csv_cases() -> list[Case]:
    head = "filename,pixel size(mm)\n"
    return [
        csv_case("HC18 format", head + f"{GOOD},{GOOD_MM}\n", "calibrated"),
        csv_case("UTF-8 byte order mark", "\ufeff" + head + f"{GOOD},{GOOD_MM}\n", "calibrated"),
        csv_case(
            "columns in another order", f"pixel size(mm),filename\n{GOOD_MM},{GOOD}\n", "calibrated"
        ),
        csv_case("identical duplicate rows", head + f"{GOOD},{GOOD_MM}\n" * 2, "calibrated"),
        csv_case("empty file", "", "usage"),
        csv_case("header only", head, "uncalibrated"),
        csv_case("CSV matching no frame", head + f"other.png,{GOOD_MM}\n", "uncalibrated"),
        csv_case(
            "HC values, no pixel column",
            f"filename,head circumference (mm)\n{GOOD},81.1\n",
            "usage",
        ),
        csv_case("no header", f"{GOOD},{GOOD_MM}\n", "usage"),
        csv_case("conflicting duplicate rows", head + f"{GOOD},{GOOD_MM}\n{GOOD},0.2\n", "usage"),
        csv_case("pixel size 0", head + f"{GOOD},0\n", "usage"),
        csv_case("pixel size negative", head + f"{GOOD},-0.1\n", "usage"),
        csv_case("pixel size 1e308", head + f"{GOOD},1e308\n", "usage"),
        csv_case("pixel size nan", head + f"{GOOD},nan\n", "usage"),
        csv_case("pixel size inf", head + f"{GOOD},inf\n", "usage"),
        csv_case("pixel size 5 mm", head + f"{GOOD},5\n", "usage"),
        csv_case("pixel size text", head + f"{GOOD},abc\n", "usage"),
        csv_case("semicolons", f"filename;pixel size(mm)\n{GOOD};{GOOD_MM}\n", "usage"),
        csv_case("binary garbage", bytes(range(256)) * 4, "usage"),
    ]


def option_cases() -> list[Case]:
    def pixel_size(value: str) -> Case:
        def build(folder: Path) -> list[str]:
            put_good(folder)
            return ["measure", GOOD, "--pixel-size", value, "--out", "out.csv"]

        return Case("pixel size option", f"--pixel-size {value}", build, usage_error("pixel"))

    def missing_csv(folder: Path) -> list[str]:
        put_good(folder)
        return ["measure", GOOD, "--pixel-csv", "absent.csv", "--out", "out.csv"]

    def folder_csv(folder: Path) -> list[str]:
        put_good(folder)
        (folder / "csvdir").mkdir()
        return ["measure", GOOD, "--pixel-csv", "csvdir", "--out", "out.csv"]

    def ga(value: str) -> Case:
        def build(folder: Path) -> list[str]:
            put_good(folder)
            return ["measure", GOOD, "--ga-weeks", value, "--out", "out.csv"]

        return Case("pixel size option", f"--ga-weeks {value}", build, usage_error("ga"))

    return [pixel_size(v) for v in ("0", "-1", "1e308", "nan", "inf", "5", "abc")] + [
        Case(
            "pixel size option", "--pixel-csv missing file", missing_csv, usage_error("absent.csv")
        ),
        Case("pixel size option", "--pixel-csv is a folder", folder_csv, usage_error("csvdir")),
        ga("-3"),
        ga("nan"),
    ]


# ----- models ---------------------------------------------------------------------------------


def onnx_model(path: Path, kind: str) -> None:
    """Small ONNX graphs that are wrong in one way each."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dims = ["N", 1, "H", "W"]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)]
    meta = {
        "hc_studio.input_height": "224",
        "hc_studio.input_width": "336",
        "hc_studio.output": "probability",
        "hc_studio.name": f"bad-{kind}",
    }
    out = [helper.make_tensor_value_info("probability", TensorProto.FLOAT, dims)]
    inits = []
    if kind == "two outputs":
        nodes = [
            helper.make_node("Sigmoid", ["image"], ["probability"]),
            helper.make_node("Identity", ["image"], ["extra"]),
        ]
        out.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, dims))
    elif kind == "probabilities above 1":
        inits = [numpy_helper.from_array(np.array(10.0, np.float32), "ten")]
        nodes = [helper.make_node("Add", ["image", "ten"], ["probability"])]
    elif kind == "metadata 60000x60000":
        nodes = [helper.make_node("Sigmoid", ["image"], ["probability"])]
        meta["hc_studio.input_height"] = meta["hc_studio.input_width"] = "60000"
    elif kind == "two channels out":
        nodes = [helper.make_node("Concat", ["image", "image"], ["probability"], axis=1)]
        out = [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 2, "H", "W"])]
    elif kind == "rank-3 input":
        inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W"])]
        out = [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", "H", "W"])]
        nodes = [helper.make_node("Sigmoid", ["image"], ["probability"])]
    elif kind == "negative metadata size":
        nodes = [helper.make_node("Sigmoid", ["image"], ["probability"])]
        meta["hc_studio.input_height"] = "-5"
    else:
        raise ValueError(kind)
    graph = helper.make_graph(nodes, "bad", inputs, out, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def model_case(name: str, make: Callable[[Path], None]) -> Case:
    def build(folder: Path) -> list[str]:
        put_good(folder)
        make(folder / "model.onnx")
        return ["measure", GOOD, "--model", "model.onnx", "--out", "out.csv"]

    def check(run: Run) -> tuple[str, str] | None:
        row = run.row_for(GOOD)
        if row is not None and row.get("hc"):
            return "silently wrong", f"measured with a bad model: HC {row['hc']}"
        if run.returncode == 0:
            return "silently wrong", "exit 0 with a bad model"
        if "model.onnx" not in run.stderr:
            return "silently wrong", f"message does not name the model: {run.stderr[-160:]}"
        return None

    return Case("models", name, build, check, lambda f: [f / "model.onnx"])


def model_cases() -> list[Case]:
    def raw(data: bytes) -> Callable[[Path], None]:
        return lambda path: path.write_bytes(data)

    cases = [
        model_case("empty file", raw(b"")),
        model_case("random bytes", raw(np.random.default_rng(1).bytes(4000))),
        model_case("text file", raw(b"this is not a model\n")),
        model_case("missing file", lambda path: None),
        model_case("folder", lambda path: path.mkdir()),
    ]
    for kind in (
        "two outputs",
        "probabilities above 1",
        "metadata 60000x60000",
        "two channels out",
        "rank-3 input",
        "negative metadata size",
    ):
        cases.append(model_case(kind, lambda path, kind=kind: onnx_model(path, kind)))
    return cases


# ----- output paths ---------------------------------------------------------------------------


def output_case(
    name: str, args: Callable[[Path], list[str]], precious: list[str], *words: str
) -> Case:
    def build(folder: Path) -> list[str]:
        put_good(folder)
        (folder / "px.csv").write_text(f"filename,pixel size(mm)\n{GOOD},{GOOD_MM}\n")
        (folder / "old.csv").write_text("file,hc\nprevious,1\n")
        return ["measure", GOOD, *args(folder)]

    def check(run: Run) -> tuple[str, str] | None:
        if run.returncode != 2:
            return "silently wrong", f"exit {run.returncode}: output path accepted"
        text = run.stderr
        if ".tmp" in text or "tmp" in Path(text.split()[-1] if text.split() else "x").name:
            return "silently wrong", f"the message names a temporary file: {text[-160:]}"
        missing = [w for w in words if w not in text]
        if missing:
            return "silently wrong", f"message lacks {missing}: {text.strip()[-160:]}"
        return None

    return Case("output paths", name, build, check, lambda f: [f / p for p in precious])


def output_cases() -> list[Case]:
    def link(folder: Path) -> list[str]:
        (folder / "link.csv").symlink_to(folder / "old.csv")
        return ["--out", "link.csv"]

    def fifo(folder: Path) -> list[str]:
        os.mkfifo(folder / "pipe.csv")
        return ["--out", "pipe.csv"]

    def char_device(folder: Path) -> list[str]:
        # A private copy of /dev/null (as root), so that a tool that replaces devices harms
        # nothing outside the case; without the right to make one, a fifo stands in.
        try:
            os.mknod(folder / "null.csv", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except (PermissionError, AttributeError):
            os.mkfifo(folder / "null.csv")
        return ["--out", "null.csv"]

    def directory(folder: Path) -> list[str]:
        (folder / "outdir").mkdir()
        return ["--out", "outdir"]

    def masks_file(folder: Path) -> list[str]:
        return ["--out", "new.csv", "--masks-out", "old.csv"]

    return [
        output_case("--out is the input frame", lambda f: ["--out", GOOD], [GOOD], "--out"),
        output_case(
            "--out is the pixel CSV",
            lambda f: ["--pixel-csv", "px.csv", "--out", "px.csv"],
            ["px.csv"],
            "--out",
        ),
        output_case(
            "--out equals --hc18-out",
            lambda f: ["--out", "old.csv", "--hc18-out", "old.csv"],
            ["old.csv"],
            "old.csv",
        ),
        output_case(
            "--hc18-out is the input frame",
            lambda f: ["--out", "new.csv", "--hc18-out", GOOD],
            [GOOD],
            "--hc18-out",
        ),
        output_case("--out through a symlink", link, ["old.csv"], "link.csv"),
        output_case("--out is a fifo", fifo, [], "pipe.csv"),
        output_case("--out is a character device", char_device, [], "null.csv"),
        output_case("--out is a folder", directory, [], "outdir"),
        output_case("--out in a missing folder", lambda f: ["--out", "nope/out.csv"], [], "nope"),
        output_case("--masks-out is a file", masks_file, ["old.csv"], "old.csv"),
        output_case(
            "--out is the model",
            model_copy_as_out,
            ["model.onnx"],
            "--out",
        ),
    ]


def model_copy_as_out(folder: Path) -> list[str]:
    """A copy of the shipped model given as both --model and --out (never the shipped file)."""
    shutil.copyfile(next((REPO_ROOT / "models").glob("*.onnx")), folder / "model.onnx")
    return ["--model", "model.onnx", "--out", "model.onnx"]


# ----- interrupted batches ----------------------------------------------------------------------


def interrupt_cases() -> list[Case]:
    def many(folder: Path) -> list[str]:
        data = folder / "frames"
        data.mkdir()
        for index in range(400):
            put_good(data, f"{index:03d}_HC.png")
        (folder / "out.csv").write_text("file,hc\ncomplete previous result,1\n")
        return ["measure", "frames", "--out", "out.csv"]

    def check_sigint(run: Run) -> tuple[str, str] | None:
        if run.returncode == 0:
            return "silently wrong", "interrupted batch exits 0"
        return None

    import signal as _signal

    return [
        Case(
            "interrupts",
            "kill -9 while measuring",
            many,
            lambda run: None,
            lambda f: [f / "out.csv"],
            interrupt=(6.0, kill_signal()),
        ),
        Case(
            "interrupts",
            "Ctrl-C while measuring",
            many,
            check_sigint,
            lambda f: [f / "out.csv"],
            interrupt=(6.0, _signal.SIGINT),
        ),
        Case(
            "interrupts",
            "SIGTERM while measuring",
            many,
            check_sigint,
            lambda f: [f / "out.csv"],
            interrupt=(6.0, _signal.SIGTERM),
        ),
    ]


# ----- labelled folders (fit-annotations) ---------------------------------------------------------


def labelled_case(name: str, make: Callable[[Path], None], expect: str = "report") -> Case:
    """`fit-annotations DIR`: bad items are reported by name and the rest is fitted."""

    def build(folder: Path) -> list[str]:
        data = folder / "labelled"
        (data / "images").mkdir(parents=True)
        (data / "masks").mkdir()
        frame = good_frame()
        mask = np.zeros_like(frame)
        cv2.ellipse(mask, (400, 270), (160, 120), 20, 0, 360, 255, -1)
        for index in range(2):
            cv2.imwrite(str(data / "images" / f"ok{index}.png"), frame)
            cv2.imwrite(str(data / "masks" / f"ok{index}.png"), mask)
        make(data)
        return ["fit-annotations", "labelled", "--pixel-size", "0.1", "--out", "out.csv"]

    def check(run: Run) -> tuple[str, str] | None:
        if expect == "usage":
            return usage_error()(run)
        fitted = [row for row in run.rows() if row.get("hc")]
        if len(fitted) < 2:
            return "silently wrong", f"the good frames were not fitted: {run.stderr[-160:]}"
        if expect == "report" and "bad" not in run.stderr + run.stdout:
            return "silently wrong", f"the bad item is not named: {run.stderr[-160:]}"
        return None

    return Case("labelled folders", name, build, check)


def labelled_cases() -> list[Case]:
    h, w = good_frame().shape

    def image_only(data: Path) -> None:
        cv2.imwrite(str(data / "images" / "bad.png"), good_frame())

    def mask_only(data: Path) -> None:
        cv2.imwrite(str(data / "masks" / "bad.png"), np.zeros((h, w), np.uint8))

    def size_mismatch(data: Path) -> None:
        cv2.imwrite(str(data / "images" / "bad.png"), good_frame())
        cv2.imwrite(str(data / "masks" / "bad.png"), np.full((h // 2, w // 2), 255, np.uint8))

    def empty_mask(data: Path) -> None:
        cv2.imwrite(str(data / "images" / "bad.png"), good_frame())
        cv2.imwrite(str(data / "masks" / "bad.png"), np.zeros((h, w), np.uint8))

    def two_blobs(data: Path) -> None:
        mask = np.zeros((h, w), np.uint8)
        cv2.circle(mask, (200, 200), 80, 255, -1)
        cv2.circle(mask, (600, 300), 80, 255, -1)
        cv2.imwrite(str(data / "images" / "bad.png"), good_frame())
        cv2.imwrite(str(data / "masks" / "bad.png"), mask)

    def corrupt_mask(data: Path) -> None:
        cv2.imwrite(str(data / "images" / "bad.png"), good_frame())
        (data / "masks" / "bad.png").write_bytes(b"garbage")

    def dangling(data: Path) -> None:
        (data / "images" / "bad.png").symlink_to(data / "absent.png")
        (data / "masks" / "bad.png").symlink_to(data / "absent.png")

    def loop(data: Path) -> None:
        (data / "images" / "bad").symlink_to(data / "images", target_is_directory=True)

    def tiny_blob(data: Path) -> None:
        mask = np.zeros((h, w), np.uint8)
        mask[10:12, 10:12] = 255
        cv2.imwrite(str(data / "images" / "bad.png"), good_frame())
        cv2.imwrite(str(data / "masks" / "bad.png"), mask)

    def empty_folder(data: Path) -> None:
        for path in list((data / "images").iterdir()) + list((data / "masks").iterdir()):
            path.unlink()

    return [
        labelled_case("image without mask", image_only),
        labelled_case("mask without image", mask_only),
        labelled_case("mask of another size", size_mismatch),
        labelled_case("empty mask", empty_mask),
        labelled_case("two blobs", two_blobs),
        labelled_case("unreadable mask", corrupt_mask),
        labelled_case("dangling symlinks", dangling),
        labelled_case("symlink loop", loop, expect="quiet"),
        labelled_case("4-pixel mask", tiny_blob),
        labelled_case("no frames at all", empty_folder, expect="usage"),
    ]


# ----- training ---------------------------------------------------------------------------------


def training_cases() -> list[Case]:
    """`train` on a tiny labelled folder: broken caches, run folders and checkpoints."""

    def labelled(folder: Path) -> Path:
        data = folder / "labelled"
        (data / "images").mkdir(parents=True)
        (data / "masks").mkdir()
        frame = cv2.resize(good_frame(), (96, 64))
        mask = np.zeros_like(frame)
        cv2.ellipse(mask, (48, 32), (30, 20), 10, 0, 360, 255, -1)
        for index in range(4):
            cv2.imwrite(str(data / "images" / f"f{index}.png"), frame)
            cv2.imwrite(str(data / "masks" / f"f{index}.png"), mask)
        return data

    def base(iterations: int = 2) -> list[str]:
        return [
            "--iterations",
            str(iterations),
            "--batch-size",
            "2",
            "--image-size",
            "64",
            "96",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--val-every",
            "2",
            "--no-stdin",
            "--method",
            "supervised",
        ]

    def train_args(folder: Path, *extra: str) -> list[str]:
        return ["train", "--labeled", "labelled", *base(), "--out", "run", *extra]

    def with_run(folder: Path) -> None:
        from reliability_harness import hc_studio

        labelled(folder)
        hc_studio(train_args(folder), folder, 300)

    def broken_file(name_glob: str, damage: Callable[[Path], None]):
        def build(folder: Path) -> list[str]:
            with_run(folder)
            for path in (folder / "run").rglob(name_glob):
                damage(path)
            return ["train", "--out", "run", "--resume", "--no-stdin", "--device", "cpu"]

        return build

    def truncate(path: Path) -> None:
        path.write_bytes(path.read_bytes()[:100])

    def malformed_json(path: Path) -> None:
        path.write_text("{ not json")

    def missing_key(path: Path) -> None:
        data = json.loads(path.read_text())
        data.pop(next(iter(data)))
        path.write_text(json.dumps(data))

    def resume_other_method(folder: Path) -> list[str]:
        with_run(folder)
        return [
            "train",
            "--out",
            "run",
            "--resume",
            "--no-stdin",
            "--device",
            "cpu",
            "--method",
            "mean-teacher",
        ]

    def dangling_in_labelled(folder: Path) -> list[str]:
        data = labelled(folder)
        (data / "images" / "gone.png").symlink_to(folder / "absent.png")
        (data / "masks" / "gone.png").symlink_to(folder / "absent.png")
        return train_args(folder)

    def loop_in_labelled(folder: Path) -> list[str]:
        data = labelled(folder)
        (data / "images" / "loop").symlink_to(data, target_is_directory=True)
        return train_args(folder)

    def truncated_cache(folder: Path) -> list[str]:
        with_run(folder)
        caches = list(folder.rglob("*.npz"))
        assert caches, "the first run left no frame cache"
        for path in caches:
            truncate(path)
        return [
            "train",
            "--out",
            "run",
            "--resume",
            "--no-stdin",
            "--device",
            "cpu",
            "--iterations",
            "4",
        ]

    def no_error(run: Run) -> tuple[str, str] | None:
        if run.returncode not in (0,):
            return "silently wrong", f"exit {run.returncode}: {run.stderr.strip()[-200:]}"
        return None

    def clear(*words: str):
        def check(run: Run) -> tuple[str, str] | None:
            if run.returncode == 0:
                return "silently wrong", "accepted"
            text = run.stderr + run.stdout
            if "weights_only" in text:
                return "silently wrong", "shows torch's weights_only advice"
            missing = [w for w in words if w not in text]
            if missing:
                return "silently wrong", f"message lacks {missing}: {text.strip()[-200:]}"
            return None

        return check

    def resume_after_kill(folder: Path) -> list[str]:
        labelled(folder)
        return ["train", "--labeled", "labelled", *base(400), "--out", "run"]

    def resume(folder: Path) -> list[str]:
        return ["train", "--out", "run", "--resume", "--no-stdin", "--device", "cpu"]

    def resumed(run: Run) -> tuple[str, str] | None:
        if run.returncode not in (0, 2):
            return "silently wrong", f"resume after kill: exit {run.returncode}"
        if run.returncode == 2 and "run" not in run.stderr:
            return "silently wrong", f"resume refused without naming the run: {run.stderr[-200:]}"
        return None

    return [
        Case("training", "dangling symlink in labelled folder", dangling_in_labelled, no_error),
        Case("training", "symlink loop in labelled folder", loop_in_labelled, no_error),
        Case("training", "truncated data cache", truncated_cache, no_error),
        Case(
            "training",
            "malformed run.json on resume",
            broken_file("run.json", malformed_json),
            clear("run.json"),
        ),
        Case(
            "training",
            "run.json missing a key on resume",
            broken_file("run.json", missing_key),
            clear("run.json"),
        ),
        Case(
            "training",
            "truncated checkpoint on resume",
            broken_file("*.pt", truncate),
            clear(".pt"),
        ),
        Case("training", "resume with another --method", resume_other_method, clear("method")),
        Case(
            "training",
            "kill -9 while training, then resume",
            resume_after_kill,
            resumed,
            interrupt=(25.0, kill_signal()),
            then=resume,
            timeout_s=240,
        ),
    ]


def all_cases() -> list[Case]:
    return (
        frame_cases()
        + name_cases()
        + dicom_cases()
        + csv_cases()
        + option_cases()
        + model_cases()
        + output_cases()
        + interrupt_cases()
        + labelled_cases()
        + training_cases()
    )
