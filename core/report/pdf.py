"""The printed exam report laid out as a PDF with ReportLab (pure Python; core has no Qt).

One PDF per exam, A4 portrait. `write_exam_pdf` writes one report atomically;
`report_paths` names the files of several exams: OUT.pdf for the first, OUT-2.pdf, OUT-3.pdf...
for the next ones, in the order of the exams.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)
from reportlab.platypus import (
    Table as PdfTable,
)
from reportlab.platypus import (
    TableStyle as PdfTableStyle,
)

from ..atomic import atomic_write_bytes
from .content import ExamReport, Table

_MARGIN = 14 * mm
_CONTENT_WIDTH = A4[0] - 2 * _MARGIN
_IMAGE_WIDTH = (_CONTENT_WIDTH - 6 * mm) / 2


def report_paths(out: str | Path, count: int) -> list[Path]:
    """The file of each of `count` exams: OUT.pdf, then OUT-2.pdf, OUT-3.pdf..."""
    out = Path(out)
    suffix = out.suffix or ".pdf"
    return [out if i == 0 else out.with_name(f"{out.stem}-{i + 1}{suffix}") for i in range(count)]


def _styles() -> dict[str, ParagraphStyle]:
    sheet = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=sheet["BodyText"], fontSize=9, leading=11.5)
    return {
        "title": ParagraphStyle("title", parent=sheet["Title"], fontSize=15, spaceAfter=4),
        "heading": ParagraphStyle(
            "heading", parent=sheet["Heading3"], fontSize=11, spaceBefore=6, spaceAfter=3
        ),
        "body": body,
        "cell": ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9),
        "head": ParagraphStyle(
            "head", parent=body, fontSize=7.5, leading=9, fontName="Helvetica-Bold"
        ),
        "caption": ParagraphStyle("caption", parent=body, fontSize=8, textColor=colors.grey),
    }


def _paragraph(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph reads mini-HTML: every '<', '>' and '&' of our text (e.g. "<1st") is escaped.
    return Paragraph(escape(text), style)


def _table(table: Table, styles, widths: Sequence[float] | None = None) -> PdfTable:
    data = [[_paragraph(text, styles["head"]) for text in table.header]]
    data += [[_paragraph(text, styles["cell"]) for text in row] for row in table.rows]
    if len(data) == 1:
        data.append([_paragraph("none", styles["cell"])] + [""] * (len(table.header) - 1))
    pdf_table = PdfTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    pdf_table.setStyle(
        PdfTableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.88, 0.91, 0.95)),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return pdf_table


def _image_grid(report: ExamReport, styles) -> list:
    cells = []
    for image in report.images:
        caption = _paragraph(image.caption, styles["caption"])
        if image.jpeg is None:
            cells.append([caption])
            continue
        picture = Image(io.BytesIO(image.jpeg))
        scale = _IMAGE_WIDTH / picture.imageWidth
        picture.drawWidth, picture.drawHeight = _IMAGE_WIDTH, picture.imageHeight * scale
        cells.append([picture, caption])
    rows = [cells[i : i + 2] for i in range(0, len(cells), 2)]
    return [
        PdfTable(
            [[cell for cell in row] + [""] * (2 - len(row))],
            colWidths=[_IMAGE_WIDTH + 3 * mm] * 2,
            hAlign="LEFT",
            style=[("VALIGN", (0, 0), (-1, -1), "TOP")],
        )
        for row in rows
    ]


def render_exam_pdf(report: ExamReport) -> bytes:
    """The report as PDF bytes."""
    styles = _styles()
    story: list = [_paragraph(report.title, styles["title"])]
    facts = [
        [_paragraph(label, styles["head"]), _paragraph(value, styles["body"])]
        for label, value in report.facts
    ]
    story.append(PdfTable(facts, colWidths=[28 * mm, _CONTENT_WIDTH - 28 * mm], hAlign="LEFT"))
    story += [_paragraph("Exam values", styles["heading"])]
    story.append(_table(report.values, styles, [40 * mm, 30 * mm, 40 * mm, 72 * mm]))
    story += [_paragraph("Gestational age by biometry", styles["heading"])]
    story.append(_table(report.gestational_age, styles, [52 * mm, 35 * mm, 95 * mm]))
    story += [Spacer(1, 3 * mm)]
    story += [_paragraph(line, styles["body"]) for line in report.assessment_lines]
    story += [_paragraph("Measurements", styles["heading"])]
    widths = [28, 16, 15, 16, 15, 15, 16, 22, 22, 17]
    story.append(_table(report.measurements, styles, [w * mm for w in widths]))
    story += [_paragraph("Calibration, model and corrections", styles["heading"])]
    story += [_paragraph(line, styles["body"]) for line in report.provenance_lines]
    if report.images:
        images = _image_grid(report, styles)
        heading = _paragraph("Images (green: fitted head ellipse; cyan: BPD outer-to-outer; "
                             "red ring: far skull's inner border, BPD outer-to-inner)",
                             styles["heading"])  # fmt: skip
        story.append(KeepTogether([heading, images[0]]))
        story += images[1:]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=report.title,
        author="HC Studio",
        invariant=True,  # the same report gives the same bytes (no creation time, fixed ids)
    )
    document.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def _footer(canvas, document) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 7)
    canvas.setFillColor(colors.grey)
    canvas.drawString(
        _MARGIN,
        8 * mm,
        "HC Studio - measurements for a qualified person to review; not a diagnosis.",
    )
    canvas.drawRightString(A4[0] - _MARGIN, 8 * mm, f"page {document.page}")
    canvas.restoreState()


def write_exam_pdf(report: ExamReport, path: str | Path) -> Path:
    """Render and write one exam's report atomically; returns the path."""
    atomic_write_bytes(path, render_exam_pdf(report))
    return Path(path)
