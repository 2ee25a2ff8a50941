"""The About box: version, the model card of the model in use, data attribution."""

from __future__ import annotations

import contextlib
from importlib import metadata, resources
from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

HC18_ATTRIBUTION = (
    "The shipped model was trained on the HC18 grand challenge data: T. L. A. van den Heuvel, "
    "D. de Bruijn, C. L. de Korte, B. van Ginneken (2018). Automated measurement of fetal head "
    "circumference using 2D ultrasound images. PLoS ONE 13(8): e0200412. Data: Zenodo record "
    "1327317 (https://zenodo.org/record/1327317), licence CC BY 4.0."
)
INTENDED_USE = (
    "HC Studio is a research and teaching tool. Its measurements are not a medical device "
    "output: a qualified person checks every ellipse before a value is used."
)


def _version() -> str:
    try:
        return metadata.version("hc-studio")
    except metadata.PackageNotFoundError:
        return "development"


def model_card_text(model_path: Path | None) -> str:
    """The model card: MODEL_CARD.md beside the model, else the shipped one, else a note."""
    candidates = []
    if model_path is not None:
        candidates.append(Path(model_path).with_name("MODEL_CARD.md"))
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        candidates.append(Path(str(resources.files("hc_studio.models") / "MODEL_CARD.md")))
    for card in candidates:
        if card.is_file():
            try:
                return card.read_text(encoding="utf-8")
            except OSError:
                continue
    return "No model card was found for this model."


def about_markdown(model_path: Path | None) -> str:
    """The About text (Markdown): what HC Studio is, data attribution, the model card."""
    model = f"`{model_path}`" if model_path else "none"
    return "\n\n".join(
        [
            f"## HC Studio {_version()}",
            "Fetal head circumference (HC), BPD, OFD and gestational age from ultrasound "
            "frames, with semi-supervised fine-tuning of the segmentation model.",
            f"**Intended use.** {INTENDED_USE}",
            f"**Data.** {HC18_ATTRIBUTION}",
            f"**Model in use:** {model}",
            "---",
            model_card_text(model_path),
        ]
    )


def show_about(parent: QWidget, model_path: Path | None) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle("About HC Studio")
    dialog.resize(720, 560)
    browser = QTextBrowser()
    browser.setOpenExternalLinks(True)
    browser.setMarkdown(about_markdown(model_path))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(browser)
    layout.addWidget(buttons)
    dialog.show()
    return dialog
