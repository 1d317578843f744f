"""``graphc render`` and the step-by-step backward pass (``--steps``)."""

from __future__ import annotations

import re
import zlib

import pytest

import graphc
from graphc.cli import main
from graphc.render import drawn_by_graphc
from graphc.render_steps import render_steps

AT = ["--at", "x=-2", "y=5", "z=-4"]


def test_cli_writes_dot(tmp_path):
    out = tmp_path / "c.dot"
    assert main(["render", "(x+y)*z", *AT, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for number in ("-2.00", "5.00", "-4.00", "3.00", "-12.00", "1.00"):
        assert number in text


def test_cli_prints_dot_and_options(capsys):
    argv = ["render", "q = x + y; f = q * z", *AT, "--local", "--highlight", "x"]
    assert main([*argv, "--precision", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph")
    assert "∂f/∂x = ∂f/∂q · ∂q/∂x = -4.000 · 1.000 = -4.000" in out
    assert "∂f/∂q = z = -4.000" in out


@pytest.mark.dot
def test_cli_svg(tmp_path):
    out = tmp_path / "c.svg"
    assert main(["render", "(x+y)*z", *AT, "-o", str(out)]) == 0
    assert ">-12.00<" in out.read_text(encoding="utf-8")


def test_cli_errors(tmp_path, capsys):
    assert main(["render", "(x+y)*z", *AT, "-o", str(tmp_path / "c.bmp")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["render", "(x+y)*z", "--at", "x=1", "-o", str(tmp_path / "c.dot")]) == 2
    assert "missing value" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["render", "x", "--precision", "many"])
    assert e.value.code == 2


def test_cli_refuses_empty_paths(capsys):
    """An empty -o or --steps is refused (it was taken as no --steps: the diagram went
    to standard output and the folder asked for was never written)."""
    assert main(["render", "(x+y)*z", *AT, "--steps", ""]) == 2
    err = capsys.readouterr().err
    assert "the directory given is empty text: name a folder" in err
    assert main(["render", "(x+y)*z", *AT, "-o", ""]) == 2
    assert "the path given is empty text" in capsys.readouterr().err


def test_steps_write_one_diagram_per_gate_and_an_index(tmp_path):
    g = graphc.parse("1/(1+exp(-(w0*x0 + w1*x1 + w2)))")
    at = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
    written = render_steps(g, at, tmp_path / "steps", fmt="dot")
    # the notes' 8 gates, plus the forward pass and the seed
    assert len(written) == 8 + 2 + 1 and written[-1].name == "index.html"
    steps = [p.read_text(encoding="utf-8") for p in written[:-1]]
    red = [len(re.findall(r'COLOR="#d1242f"', s)) for s in steps]
    assert red[0] == 0 and red == sorted(red) and red[-1] > red[1]  # gradients appear
    assert "forward only" in steps[0]
    html = written[-1].read_text(encoding="utf-8")
    assert "ArrowRight" in html and "ArrowLeft" in html
    assert all(p.name in html for p in written[:-1])


@pytest.mark.dot
def test_cli_steps_svg(tmp_path, capsys):
    d = tmp_path / "lecture"
    assert main(["render", "(x+y)*z", *AT, "--steps", str(d)]) == 0
    names = sorted(p.name for p in d.iterdir())
    assert names == ["index.html", "step_00.svg", "step_01.svg", "step_02.svg", "step_03.svg"]
    assert "wrote 4 steps" in capsys.readouterr().err  # "wrote" goes to stderr


POINT = {"x": -2, "y": 5, "z": -4}


@pytest.mark.parametrize("fmt", ["dot", "svg", "png"])
def test_steps_never_replace_a_file_graphc_did_not_write(tmp_path, fmt, capsys):
    """A steps folder may hold the user's own index.html or step_00.<fmt>: it is kept, and
    the error says how to replace it; files graphc wrote there are written again."""
    g = graphc.parse("(x+y)*z")
    mine = tmp_path / "index.html"
    mine.write_text("<html>my own page</html>")
    with pytest.raises(graphc.OverwriteError, match=r"holds index\.html, which graphc did not"):
        render_steps(g, POINT, tmp_path, fmt=fmt)
    assert mine.read_text() == "<html>my own page</html>"
    assert not (tmp_path / f"step_00.{fmt}").exists()  # nothing written before the check
    assert main(["render", "(x+y)*z", "--at", "x=-2", "y=5", "z=-4", "--steps", str(tmp_path),
                 "--steps-format", fmt]) == 2  # fmt: skip
    assert "--force" in capsys.readouterr().err and mine.read_text() == "<html>my own page</html>"
    mine.unlink()
    step = tmp_path / f"step_01.{fmt}"
    step.write_bytes(b"my own drawing")
    with pytest.raises(graphc.OverwriteError, match=rf"holds step_01\.{fmt}, which graphc"):
        render_steps(g, POINT, tmp_path, fmt=fmt)
    written = render_steps(g, POINT, tmp_path, fmt=fmt, overwrite=True)  # asked: replaced
    assert step in written and step.read_bytes() != b"my own drawing"
    again = render_steps(graphc.parse("x*y + x"), {"x": 2, "y": 3}, tmp_path, fmt=fmt)
    assert again[-1] == tmp_path / "index.html"  # graphc's own files: written again


def _pdf_update(data: bytes) -> tuple[int, bytes]:
    """The object the last trailer names as the document information, and that object,
    followed through the last cross-reference section by hand (an oracle of its own)."""
    start = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    assert data[start:].startswith(b"xref")
    trailer = data[data.rindex(b"trailer") :]
    n = int(re.search(rb"/Info (\d+) 0 R", trailer)[1])
    prev = int(re.search(rb"/Prev (\d+)", trailer)[1])
    assert data[prev:].startswith(b"xref") and prev < start  # the drawing's own table
    rows = dict(re.findall(rb"\n(\d+) 1\n(\d{10}) 00000 n \n", data[start:]))
    at = int(rows[str(n).encode()])
    return n, data[at : data.index(b"endobj", at)]


@pytest.mark.dot
@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf", ".dot"])
def test_render_keeps_a_file_graphc_did_not_draw(tmp_path, capsys, suffix):
    """render -o replaced any file named (a teacher's hand-made figure.png was lost);
    it now replaces only what graphc drew, as codegen -o and --steps do."""
    path = tmp_path / f"figure{suffix}"
    path.write_bytes(b"my own figure")
    with pytest.raises(graphc.OverwriteError, match="was not drawn by graphc"):
        graphc.render(graphc.parse("x*y"), {"x": 2, "y": 3}, path)
    assert main(["render", "x*y", "-o", str(path)]) == 2
    assert "--force" in capsys.readouterr().err and path.read_bytes() == b"my own figure"
    graphc.render(graphc.parse("x*y"), {"x": 2, "y": 3}, path, overwrite=True)
    first = path.read_bytes()
    assert first != b"my own figure" and drawn_by_graphc(path)
    # graphc's own drawing is drawn again without being asked
    assert main(["render", "x+y", "-o", str(path)]) == 0
    assert path.read_bytes() != first
    assert main(["render", "x*y", "-o", str(tmp_path / "other.txt")]) == 2


@pytest.mark.dot
def test_png_and_pdf_carry_graphcs_mark_and_stay_valid(tmp_path):
    g = graphc.parse("q = x + y; f = q * z")
    png, pdf = tmp_path / "c.png", tmp_path / "c.pdf"
    graphc.render(g, {"x": -2, "y": 5, "z": -4}, png)
    graphc.render(g, {"x": -2, "y": 5, "z": -4}, pdf)
    data = png.read_bytes()
    assert data[12:16] == b"IHDR" and data[37:41] == b"tEXt"  # right after the header
    length = int.from_bytes(data[33:37], "big")
    body = data[37 : 41 + length]
    assert body == b"tEXtSoftware\x00graphc"
    assert data[41 + length : 45 + length] == zlib.crc32(body).to_bytes(4, "big")
    n, info = _pdf_update(pdf.read_bytes())
    assert info.startswith(b"%d 0 obj\n<< /Producer (cairo" % n) and b"/Creator (graphc)" in info
    image = pytest.importorskip("PIL.Image")
    with image.open(png) as im:
        im.load()
        assert im.info["Software"] == "graphc" and im.size[0] > 100
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(pdf, strict=True)
    assert reader.metadata["/Creator"] == "graphc" and len(reader.pages) == 1
    assert "-12.00" in reader.pages[0].extract_text()
