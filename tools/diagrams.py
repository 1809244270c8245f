"""Draw the book's conceptual diagrams as SVG files in `figures/`.

    python tools/diagrams.py            # write every figure
    python tools/diagrams.py --check    # exit 1 if a committed figure is out of date

Plain Python writing SVG text, so the figures need nothing but this file. All of them
share one visual language: the palette in `KINDS`, Libertinus Serif (bundled with typst,
the serif every PDF build has) for words, DejaVu Sans Mono for code, 1.4 px outlines and
one arrow head. Browsers without Libertinus fall back to a wider serif, so every text is
measured with DejaVu Serif's advance widths (the widest fallback), and a text that would
leave its box or the canvas, or overlap another label, raises an error instead of being
drawn. Numbers inside the figures (BPE merges, pipeline schedules, LSH probabilities,
parameter counts) are computed here, not typed. tests/test_diagrams.py checks that the
committed files are what this script draws.
"""

import argparse
import math
import sys
from pathlib import Path
from xml.sax.saxutils import escape

FIGURES = Path(__file__).resolve().parent.parent / "figures"

SERIF = "Libertinus Serif, Georgia, DejaVu Serif, serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
INK, MUTED, NAVY, WHITE = "#1d1d1d", "#5f6b7a", "#1f4e79", "#ffffff"

# kind: (fill, stroke, text colour). One meaning per kind in every figure.
KINDS = {
    "op": ("#eef3f8", NAVY, INK),  # a layer, a function, a stage of work
    "data": ("#fbeee0", "#b86b1c", INK),  # tensors, ids, text
    "train": ("#e5f2e3", "#2e7d32", INK),  # trainable, or the thing being learned
    "frozen": ("#eeeeee", "#7a7a7a", INK),  # fixed weights, idle time, ignored
    "comm": ("#fbe6e6", "#b22222", INK),  # communication between processes
    "focus": (NAVY, NAVY, WHITE),  # the one thing a figure points at
    "muted": ("#f5f6f8", "#b4bfcc", MUTED),  # context around the focus
    "plain": (WHITE, "#8a9bb0", INK),  # containers: a process, a panel
}
ACCENT = {"navy": NAVY, "red": "#b22222", "green": "#2e7d32", "grey": "#7a7a7a"}
COLOURS = ["#c6dbef", "#fdd0a2", "#c7e9c0", "#dadaeb", "#fcbba1", "#f2e394"]

TITLE, TEXT, SMALL, CODE = 14, 13, 11.5, 12  # font sizes in px; nothing under 11
PAD = 7  # the least space between a text and the edge of its box

# Advance widths of DejaVu Serif (regular, bold) for ASCII 32..126, in 1/1000 em.
_W = (
    "318 402 460 838 636 950 890 275 390 390 500 838 318 338 318 337 636 636 636 636 "
    "636 636 636 636 636 636 337 337 838 838 838 536 1000 722 735 765 802 730 694 799 "
    "872 395 401 747 664 1024 875 820 673 820 753 685 667 843 722 1028 712 660 695 390 "
    "337 390 838 500 500 596 640 560 640 592 370 640 644 320 310 606 320 948 644 602 "
    "640 640 478 513 402 644 565 856 564 565 527 636 337 636 838"
)
_WB = (
    "348 439 521 838 696 950 903 306 473 473 523 838 348 415 348 365 696 696 696 696 "
    "696 696 696 696 696 696 369 369 838 838 838 586 1000 776 845 796 867 762 710 854 "
    "945 468 473 869 703 1107 914 871 752 871 831 722 744 872 776 1123 776 714 730 473 "
    "365 473 838 500 500 648 699 609 699 636 430 699 727 380 362 693 380 1058 727 667 "
    "699 699 527 563 462 727 581 861 596 581 568 643 364 643 838"
)
WIDTHS = {
    "serif": dict(zip(map(chr, range(32, 127)), map(int, _W.split()))),
    "bold": dict(zip(map(chr, range(32, 127)), map(int, _WB.split()))),
}
OTHER = {  # the non-ASCII characters the figures use, bold widths (the wider)
    "·": 348, "’": 348, "–": 500, "θ": 667, "β": 664, "α": 770, "σ": 737, "π": 732,
    "ω": 952, "Σ": 707, "−": 838, "×": 838, "→": 838, "←": 838, "…": 1000,
}  # fmt: skip


def text_width(s: str, size: float, font: str = "serif") -> float:
    "Width in px of `s` in the widest font of the stack; 0.602 em a character in mono."
    if font == "mono":
        return 0.602 * size * len(s)
    table = WIDTHS[font]
    return sum(table.get(c, OTHER.get(c, 1000)) for c in s) * size / 1000


def _fmt(v) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def parse(line: str) -> tuple[str, str, float]:
    "A line of a box: '**x**' bold title, '`x`' code, '_x' small, otherwise text."
    if line.startswith("**") and line.endswith("**"):
        return line[2:-2], "bold", TITLE
    if line.startswith("`") and line.endswith("`"):
        return line[1:-1], "mono", CODE
    if line.startswith("_"):
        return line[1:], "serif", SMALL
    return line, "serif", TEXT


class Svg:
    "An SVG canvas of w x h px that refuses text it cannot fit."

    def __init__(self, w: int, h: int, title: str):
        self.w, self.h, self.title, self.parts, self.spans = w, h, title, [], []

    def add(self, tag: str, body: str = "", **attrs):
        a = " ".join(
            f'{k.rstrip("_").replace("_", "-")}="{_fmt(v)}"'
            for k, v in attrs.items()
            if v is not None
        )
        self.parts.append(f"<{tag} {a}>{body}</{tag}>" if body else f"<{tag} {a}/>")

    def rect(self, x, y, w, h, kind="op", rx=6, dash=False, width=1.4):
        if x < 0 or y < 0 or x + w > self.w or y + h > self.h:
            raise ValueError(f"{self.title}: a box at ({x}, {y}) leaves the canvas")
        fill, stroke, _ = KINDS[kind]
        self.add(
            "rect",
            x=x,
            y=y,
            width=w,
            height=h,
            rx=rx,
            fill=fill,
            stroke=stroke,
            stroke_width=width,
            stroke_dasharray="4 3" if dash else None,
        )

    def text(self, x, y, s, size=TEXT, font="serif", anchor="middle", color=INK):
        "Text with its baseline at y; raises if it would leave the canvas."
        w = text_width(s, size, font)
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        if left < 0 or left + w > self.w or y - size < 0 or y > self.h:
            raise ValueError(f"{self.title}: text {s!r} leaves the canvas")
        span = (left, y - 0.75 * size, left + w, y + 0.2 * size, s)
        for a in self.spans:
            if a[0] < span[2] and span[0] < a[2] and a[1] < span[3] and span[1] < a[3]:
                raise ValueError(f"{self.title}: text {s!r} overlaps {a[4]!r}")
        self.spans.append(span)
        family = MONO if font == "mono" else SERIF
        weight = "bold" if font == "bold" else None
        self.add(
            "text",
            escape(s),
            x=x,
            y=y,
            font_size=size,
            font_family=family,
            font_weight=weight,
            text_anchor=anchor,
            fill=color,
        )

    def box(self, x, y, w, h, lines=(), kind="op", rx=6, dash=False, gap=4):
        "A box with its lines centred in it; raises if a line does not fit."
        self.rect(x, y, w, h, kind, rx, dash)
        rows = [parse(line) for line in lines]
        total = sum(size for _, _, size in rows) + gap * (len(rows) - 1)
        if total > h - 4:
            raise ValueError(f"{self.title}: {lines} too tall for a box {h} high")
        top = y + (h - total) / 2
        for s, font, size in rows:
            if text_width(s, size, font) > w - 2 * PAD:
                raise ValueError(f"{self.title}: {s!r} does not fit a box {w} wide")
            top += size
            self.text(x + w / 2, top - size * 0.2, s, size, font, color=KINDS[kind][2])
            top += gap

    def arrow(self, *pts, color="navy", dash=False, head=True, width=1.6, both=False):
        d = " ".join(
            f"{'M' if i == 0 else 'L'} {_fmt(x)} {_fmt(y)}"
            for i, (x, y) in enumerate(pts)
        )
        self.add(
            "path",
            d=d,
            fill="none",
            stroke=ACCENT[color],
            stroke_width=width,
            stroke_dasharray="5 3" if dash else None,
            marker_start=f"url(#head-{color})" if both else None,
            marker_end=f"url(#head-{color})" if head else None,
        )

    def line(self, *pts, color="navy", dash=False, width=1.6):
        self.arrow(*pts, color=color, dash=dash, head=False, width=width)

    def circle(self, cx, cy, r, kind="plain", width=1.4):
        fill, stroke, _ = KINDS[kind]
        self.add(
            "circle", cx=cx, cy=cy, r=r, fill=fill, stroke=stroke, stroke_width=width
        )

    def plus(self, cx, cy, r=9):
        "The ⊕ of a residual addition, drawn (fonts disagree on the glyph)."
        self.circle(cx, cy, r, "plain")
        self.line((cx - r + 3, cy), (cx + r - 3, cy), width=1.4)
        self.line((cx, cy - r + 3), (cx, cy + r - 3), width=1.4)

    def cell(
        self,
        x,
        y,
        w,
        h,
        s="",
        fill=WHITE,
        stroke="#7a7a7a",
        size=SMALL,
        font="serif",
        color=INK,
    ):
        "One square of a tensor or a timeline, with an optional short label."
        self.add(
            "rect",
            x=x,
            y=y,
            width=w,
            height=h,
            fill=fill,
            stroke=stroke,
            stroke_width=1,
        )
        if s:
            if text_width(s, size, font) > w - 2:
                raise ValueError(f"{self.title}: {s!r} does not fit a cell {w} wide")
            self.text(x + w / 2, y + h / 2 + size * 0.35, s, size, font, color=color)

    def render(self) -> str:
        markers = "".join(
            f'<marker id="head-{name}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" '
            f'orient="auto-start-reverse">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{c}"/></marker>'
            for name, c in ACCENT.items()
        )
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {self.h}" '
            f'width="{self.w}" height="{self.h}" font-family="{SERIF}">\n'
            f"<title>{escape(self.title)}</title>\n<defs>{markers}</defs>\n"
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


# --- The book's roadmap ---------------------------------------------------------------


CHAPTERS = {
    "1": ("1 Foundations", "text → ids → vectors → attention", "llmbook.foundations"),
    "2": ("2 Data", "clean, dedup, BPE, pack", "llmbook.data"),
    "3": ("3 Model", "GPT and generation", "llmbook.model"),
    "4": ("4 Training", "one process or many", "llmbook.train"),
    "5": ("5 Evaluation", "perplexity, benchmarks", "llmbook.evaluate"),
    "A": ("A Post-training", "SFT, LoRA, DPO, chat", "llmbook.finetune"),
}


def roadmap(current: str | None = None) -> Svg:
    "The chapters as the data flows through them; `current` is highlighted."
    s = Svg(680, 372, "The book's roadmap" + (f": {current}" if current else ""))

    def kind(key):
        return "op" if current is None else "focus" if key == current else "muted"

    def chapter(key, x, y, w, h=74):
        title, what, module = CHAPTERS[key]
        s.box(x, y, w, h, [f"**{title}**", "_" + what, f"`{module}`"], kind(key))

    flow = "grey" if current else "navy"
    chapter("1", 108, 12, 364, 74)
    s.box(10, 131, 70, 36, ["text"], "data", rx=18)
    chapter("2", 108, 112, 168)
    chapter("3", 304, 112, 168)
    chapter("4", 500, 112, 168)
    s.box(512, 242, 144, 36, ["checkpoint"], "data", rx=18)
    chapter("5", 304, 223, 168)
    chapter("A", 108, 223, 168)
    s.box(10, 242, 70, 36, ["chat"], "data", rx=18)
    for a, b in [(80, 108), (276, 304), (472, 500)]:
        s.arrow((a, 149), (b - 1, 149), color=flow)
    s.text(290, 142, "ids", SMALL, color=MUTED)
    s.arrow((584, 186), (584, 241), color=flow)
    s.arrow((512, 260), (473, 260), color=flow)
    s.arrow((304, 260), (277, 260), color=flow)
    s.arrow((108, 260), (81, 260), color=flow)
    s.arrow((190, 86), (190, 111), color=flow, dash=True)
    s.arrow((390, 86), (390, 111), color=flow, dash=True)
    s.text(196, 103, "encodings", SMALL, anchor="start", color=MUTED)
    s.text(396, 103, "attention", SMALL, anchor="start", color=MUTED)
    cli = "B" if current is None else "focus" if current == "B" else "muted"
    cli = "op" if current is None else cli
    s.box(
        10,
        314,
        658,
        50,
        [
            "**B Command line**",
            "`llmbook prepare | train | finetune | generate | chat | eval | run`",
        ],
        cli,
    )
    return s


# --- Chapter 1: foundations -----------------------------------------------------------


def embedding_product() -> Svg:
    "An embedding lookup is the one-hot matrix times the embedding matrix."
    vocab = [" ", "b", "e", "n", "o", "r", "t"]
    text, d = "to be", 4
    ids = [vocab.index(c) for c in text]
    used = sorted(set(ids))
    colour = {i: COLOURS[used.index(i)] for i in used}
    s = Svg(680, 300, "An embedding lookup as a matrix product")
    c = 24
    s.text(
        10,
        22,
        f"a toy vocabulary of {len(vocab)} characters; the text {text!r} has ids {ids}",
        SMALL,
        anchor="start",
    )
    x1, y1 = 60, 70  # one-hot: T rows, vocab columns
    for j, ch in enumerate(vocab):
        s.text(
            x1 + j * c + c / 2,
            y1 - 8,
            repr(ch)[1:-1] if ch != " " else "␣",
            CODE,
            "mono",
        )
    for r, i in enumerate(ids):
        s.text(
            x1 - 8,
            y1 + r * c + 16,
            repr(text[r])[1:-1] if text[r] != " " else "␣",
            CODE,
            "mono",
            anchor="end",
        )
        for j in range(len(vocab)):
            on = j == i
            s.cell(
                x1 + j * c,
                y1 + r * c,
                c,
                c,
                "1" if on else "0",
                colour[i] if on else WHITE,
                "#7a7a7a",
                SMALL,
                color=INK if on else "#9a9a9a",
            )
    s.text(
        x1 + len(vocab) * c / 2, y1 + len(ids) * c + 22, "one_hot(ids)", CODE, "mono"
    )
    s.text(x1 + len(vocab) * c / 2, y1 + len(ids) * c + 38, "(T, vocab)", CODE, "mono")
    s.text(x1 + len(vocab) * c + 20, y1 + 66, "@", TITLE, "bold")
    x2, y2 = 286, 46  # E: vocab rows, d columns
    for j in range(len(vocab)):
        for k in range(d):
            s.cell(
                x2 + k * c,
                y2 + j * c,
                c,
                c,
                "",
                colour[j] if j in colour else "#f5f6f8",
                "#7a7a7a",
            )
        s.text(x2 - 6, y2 + j * c + 16, str(j), SMALL, anchor="end", color=MUTED)
    s.text(x2 + d * c / 2, y2 + len(vocab) * c + 22, "E = tok_emb.weight", CODE, "mono")
    s.text(x2 + d * c / 2, y2 + len(vocab) * c + 38, "(vocab, n_embd)", CODE, "mono")
    s.text(x2 + d * c + 24, y1 + 66, "=", TITLE, "bold")
    x3 = 436
    for r, i in enumerate(ids):
        for k in range(d):
            s.cell(x3 + k * c, y1 + r * c, c, c, "", colour[i], "#7a7a7a")
        s.text(x3 + d * c + 8, y1 + r * c + 16, f"row {i} of E", SMALL, anchor="start")
    s.text(x3 + d * c / 2, y1 + len(ids) * c + 22, "tok_emb(ids)", CODE, "mono")
    s.text(x3 + d * c / 2, y1 + len(ids) * c + 38, "(T, n_embd)", CODE, "mono")
    s.text(
        10,
        278,
        "the product copies row i of E for each id i; the lookup does the same"
        " without the multiplications by zero",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        294,
        "rows of ids absent from the text (grey) take no part, and get no gradient",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def rope_pairs() -> Svg:
    "Rotate-half RoPE: which dimensions pair up, and how fast each pair turns."
    s = Svg(680, 300, "Rotary position embedding turns pairs of dimensions")
    hd, base = 8, 10000.0
    s.text(10, 22, f"one head's q or k, head_dim = {hd}", TEXT, anchor="start")
    for d in range(hd):
        s.cell(10 + d * 34, 34, 34, 28, f"x{d}", COLOURS[d % (hd // 2)], NAVY, SMALL)
    for d in range(hd):
        s.text(27 + d * 34, 80, f"i={d % (hd // 2)}", SMALL, color=MUTED)
    s.text(10, 104, "same colour, same pair: the first half", SMALL, anchor="start")
    s.text(10, 120, "pairs with the second", SMALL, anchor="start")
    s.text(10, 146, "pair i = (x[i], x[i + head_dim/2])", CODE, "mono", anchor="start")
    s.text(10, 170, "at position m, pair i turns by the angle", SMALL, anchor="start")
    s.text(
        10,
        186,
        "m · ω_i,  ω_i = base ** (−2i / head_dim)",
        CODE,
        "mono",
        anchor="start",
    )
    s.text(10, 214, "a query at m and a key at n then score", SMALL, anchor="start")
    s.text(10, 230, "q · R((n − m) ω) k: only the offset counts", SMALL, anchor="start")
    s.text(
        10,
        254,
        "lengths do not change; position 0 does",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    s.text(10, 270, "not turn at all", SMALL, anchor="start", color=MUTED)
    for k, i in enumerate((0, 1)):
        omega = base ** (-2 * i / hd)
        cx, cy, r = 400 + k * 170, 150, 62
        s.circle(cx, cy, r, "plain")
        s.line((cx - r - 6, cy), (cx + r + 6, cy), color="grey", width=0.8)
        s.line((cx, cy - r - 6), (cx, cy + r + 6), color="grey", width=0.8)
        s.text(cx, 34, f"pair {i}", TITLE, "bold")
        s.text(cx, 52, f"ω = {omega:g}", CODE, "mono")
        for m in range(5):
            ang = math.radians(20) + m * omega
            ex, ey = cx + r * math.cos(ang), cy - r * math.sin(ang)
            s.arrow(
                (cx, cy),
                (round(ex, 1), round(ey, 1)),
                color="red" if m else "navy",
                width=1.4,
            )
            if i == 0 or m in (0, 4):
                lx, ly = (
                    cx + (r + 16) * math.cos(ang),
                    cy - (r + 16) * math.sin(ang) + 4,
                )
                s.text(round(lx, 1), round(ly, 1), f"m={m}", SMALL)
        s.text(
            cx,
            262,
            "fast: turns 1 rad a position" if i == 0 else "slow: 0.1 rad a position",
            SMALL,
            color=MUTED,
        )
    return s


def attention_flow() -> Svg:
    "MultiHeadAttention.forward with the shape of every tensor."
    s = Svg(680, 356, "Queries, keys and values, with their shapes")
    s.box(10, 150, 100, 50, ["`x`", "`(B, T, C)`"], "data")
    s.arrow((110, 175), (129, 175))
    s.box(130, 150, 100, 50, ["`qkv_proj`", "_then split"], "op")
    heads = [("q", "n_head", 40), ("k", "n_kv_head", 150), ("v", "n_kv_head", 260)]
    for name, n, y in heads:
        s.arrow((230, 175), (246, 175), (246, y + 25), (261, y + 25))
        s.box(262, y, 170, 50, [f"`{name}`", f"`(B, {n}, T, hd)`"], "data")
    s.text(347, 122, "RoPE rotates q and k", SMALL, color=MUTED)
    s.text(347, 136, "repeat_kv: k, v to n_head", SMALL, color=MUTED)
    x4, w4 = 470, 200
    steps = [
        (16, ["`q @ k.T / sqrt(hd)`", "`(B, n_head, T, T)`"], "op"),
        (96, ["causal mask, softmax", "_row t: weights on 0..t, sum 1"], "op"),
        (176, ["weights @ v", "`(B, n_head, T, hd)`"], "op"),
        (256, ["heads side by side,", "`out_proj → (B, T, C)`"], "op"),
    ]
    for y, lines, kind in steps:
        s.box(x4, y, w4, 56, lines, kind)
    for (y, *_), (y2, *_) in zip(steps, steps[1:]):
        s.arrow((x4 + w4 / 2, y + 56), (x4 + w4 / 2, y2 - 1))
    s.arrow((432, 65), (444, 65), (444, 36), (x4 - 1, 36))
    s.arrow((432, 175), (457, 175), (457, 56), (x4 - 1, 56))
    s.arrow((432, 285), (457, 285), (457, 204), (x4 - 1, 204))
    s.text(
        10,
        340,
        "hd = head_dim = C / n_head;  T × T weights per head",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def heads_gqa() -> Svg:
    "Splitting C into heads, and how many query heads share one key/value head."
    s = Svg(680, 330, "Multi-head, grouped-query and multi-query attention")
    n_head, hd = 6, 64
    s.text(
        10,
        22,
        f"q of one position: C = n_head × head_dim = {n_head} × {hd}",
        TEXT,
        anchor="start",
    )
    for h in range(n_head):
        s.cell(10 + h * 110, 34, 110, 30, f"head {h}", COLOURS[h], NAVY, CODE, "mono")
    s.text(
        10,
        84,
        "q.view(B, T, n_head, head_dim).transpose(1, 2)",
        CODE,
        "mono",
        anchor="start",
    )
    s.text(
        10,
        102,
        "each head attends on its own 64 dimensions, then the heads are concatenated",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    panels = [("multi-head", 6), ("grouped-query", 2), ("multi-query", 1)]
    for p, (name, n_kv) in enumerate(panels):
        x = 10 + p * 226
        s.rect(x, 118, 208, 204, "plain", dash=True)
        s.text(x + 104, 140, name, TITLE, "bold")
        s.text(x + 104, 158, f"n_kv_head = {n_kv}", CODE, "mono")
        group = n_head // n_kv
        qx = [x + 14 + h * 31 for h in range(n_head)]
        for h in range(n_head):
            s.cell(qx[h], 174, 25, 24, f"q{h}", COLOURS[h // group], NAVY, SMALL)
        for g in range(n_kv):
            mid = sum(qx[g * group : (g + 1) * group]) / group + 12.5
            kx = mid - 14
            for h in range(g * group, (g + 1) * group):
                s.line((qx[h] + 12.5, 198), (mid, 246), color="grey", width=1.2)
            s.cell(kx, 246, 28, 24, f"kv{g}", COLOURS[g], "#b86b1c", SMALL)
        s.text(
            x + 104,
            292,
            f"{group} query head{'s' if group > 1 else ''} per k, v",
            SMALL,
        )
        s.text(
            x + 104, 310, f"KV cache: {n_kv}/{n_head} of multi-head", SMALL, color=MUTED
        )
    return s


# --- Chapter 2: data ------------------------------------------------------------------


def data_pipeline() -> Svg:
    "The chapter's stages from raw corpora to packed token files, with their functions."
    s = Svg(680, 262, "From raw text to packed token ids")
    w, h, gap = 146, 62, 22
    row1 = [
        ("corpora", "load_plays, …", "data"),
        ("normalise", "normalize_text", "op"),
        ("strip markup", "strip_markdown", "op"),
        ("quality filters", "min_length, …", "op"),
    ]
    row2 = [
        ("exact dedup", "exact_duplicates", "op"),
        ("near dedup", "near_dedup", "op"),
        ("tokenizer", "train_bpe", "train"),
        ("pack", "pack_tokens", "data"),
    ]
    xs = [10 + i * (w + gap) for i in range(4)]
    s.rect(xs[1] - 8, 20, xs[3] + w + 16 - xs[1], 82, "plain", dash=True)
    for x, (name, fn, kind) in zip(xs, row1):
        s.box(x, 30, w, h, [f"**{name}**", f"`{fn}`"], kind)
    for x, (name, fn, kind) in zip(reversed(xs), row2):
        s.box(x, 150, w, h, [f"**{name}**", f"`{fn}`"], kind)
    for a, b in zip(xs, xs[1:]):
        s.arrow((a + w, 61), (b - 1, 61))
        s.arrow((b, 181), (a + w + 1, 181))
    s.arrow((xs[3] + w / 2, 92), (xs[3] + w / 2, 149))
    s.text(
        xs[1],
        14,
        "clean_corpus: one stage after another, each reporting what it removed",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    s.text(10, 234, "train.bin, val.bin", CODE, "mono", anchor="start")
    s.text(
        10,
        252,
        "whole documents split by a hash of their name",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    s.text(
        670,
        234,
        "every stage: a dict name → text in, the same out",
        SMALL,
        anchor="end",
        color=MUTED,
    )
    return s


def bpe_merges(
    counts: dict[str, int], n: int
) -> list[tuple[tuple[str, str], int, list]]:
    """The book's BPE training on chunk counts: merge the most frequent adjacent pair,
    ties to the smallest pair; returns (pair, count, chunks after it) per merge."""
    chunks = {c: list(c) for c in counts}
    out = []
    for _ in range(n):
        stats = {}
        for c, parts in chunks.items():
            for pair in zip(parts, parts[1:]):
                stats[pair] = stats.get(pair, 0) + counts[c]
        pair = min(stats, key=lambda p: (-stats[p], p))
        for c, parts in chunks.items():
            i, new = 0, []
            while i < len(parts):
                if tuple(parts[i : i + 2]) == pair:
                    new.append(pair[0] + pair[1])
                    i += 2
                else:
                    new.append(parts[i])
                    i += 1
            chunks[c] = new
        out.append((pair, stats[pair], {c: list(p) for c, p in chunks.items()}))
    return out


def bpe_walkthrough() -> Svg:
    "Three merges of byte-pair encoding on five chunks, computed here."
    counts = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}
    merges = bpe_merges(counts, 3)
    s = Svg(680, 262, "Byte-pair encoding merges the most frequent pair")
    cols = [("bytes", None, {c: list(c) for c in counts})] + [
        (f"{a} + {b} → {a + b}  ({n})", a + b, parts) for (a, b), n, parts in merges
    ]
    s.text(10, 22, "chunk", TITLE, "bold", anchor="start")
    s.text(74, 22, "count", TITLE, "bold", anchor="start")
    for k, (head, new, chunks) in enumerate(cols):
        x = 136 + k * 136
        s.text(x + 60, 22, "start" if k == 0 else f"merge {k}", TITLE, "bold")
        s.text(x + 60, 40, head if k else "one token a byte", SMALL, color=MUTED)
        for r, parts in enumerate(chunks.values()):
            y, px = 54 + r * 34, x
            for part in parts:
                w = 12 + 9 * len(part)
                hit = part == new
                s.cell(
                    px,
                    y,
                    w,
                    24,
                    part,
                    KINDS["train" if hit else "data"][0],
                    KINDS["train" if hit else "data"][1],
                    CODE,
                    "mono",
                )
                px += w + 2
    for r, (c, n) in enumerate(counts.items()):
        s.text(10, 54 + r * 34 + 17, c, CODE, "mono", anchor="start")
        s.text(100, 54 + r * 34 + 17, str(n), CODE, "mono", anchor="end")
    s.text(
        10,
        240,
        "each merge adds one token to the vocabulary and replays on every chunk;"
        " pairs are",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    s.text(
        10,
        255,
        "counted once per distinct chunk, weighted by its count; ties go to the"
        " smallest pair",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def _lcg(seed: int):
    "A tiny deterministic generator, the same on every Python."
    while True:
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        yield seed >> 33


def lsh_banding() -> Svg:
    "Cutting MinHash signatures into bands; one agreeing band makes a candidate pair."
    b, r, shown = 32, 4, 5
    s = Svg(680, 318, "LSH banding of MinHash signatures")
    gen = _lcg(7)
    a = [next(gen) % 90 + 10 for _ in range(shown * r)]
    differ = {0: [1], 1: [0, 3], 3: [2], 4: [1, 2]}  # band 2 agrees on all rows
    bsig = list(a)
    for band, rows in differ.items():
        for row in rows:
            bsig[band * r + row] = (a[band * r + row] + 37) % 90 + 10
    cw, x0 = 25, 96
    s.text(
        10,
        22,
        f"signatures: k = {b * r} minima, cut into b = {b} bands of r = {r} rows",
        TEXT,
        anchor="start",
    )
    for row, (name, sig) in enumerate([("doc A", a), ("doc B", bsig)]):
        y = 58 + row * 30
        s.text(x0 - 10, y + 17, name, TEXT, anchor="end")
        for i, v in enumerate(sig):
            band = i // r
            x = x0 + i * cw + band * 8
            same = a[i] == bsig[i]
            fill = (
                KINDS["train"][0] if band == 2 else WHITE if same else KINDS["comm"][0]
            )
            s.cell(x, y, cw, 26, str(v), fill, "#7a7a7a", SMALL)
    s.text(x0 + shown * (r * cw + 8) + 4, 94, "…", TITLE, anchor="start")
    for band in range(shown):
        x = x0 + band * (r * cw + 8)
        s.add(
            "rect",
            x=x - 2,
            y=54,
            width=r * cw + 4,
            height=64,
            rx=4,
            fill="none",
            stroke=NAVY,
            stroke_width=1.4,
        )
        s.text(x + r * cw / 2, 46, f"band {band}", SMALL)
        ok = band == 2
        s.text(
            x + r * cw / 2,
            138,
            "same bucket" if ok else "differ",
            SMALL,
            color=ACCENT["green"] if ok else ACCENT["red"],
        )
    mid = x0 + 2 * (r * cw + 8) + r * cw / 2
    s.arrow((mid, 144), (mid, 164), color="green")
    s.box(mid - 110, 165, 220, 34, ["candidate pair: check exact J"], "train")
    s.text(
        10,
        230,
        "two documents of similarity s agree on one band with probability s^r,",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        246,
        "and become candidates with P(s) = 1 − (1 − s^r)^b:",
        SMALL,
        anchor="start",
    )
    for i, sim in enumerate((0.2, 0.3, 0.4, 0.5, 0.6)):
        p = 1 - (1 - sim**r) ** b
        s.cell(10 + i * 100, 258, 100, 24, f"s = {sim}", "#f5f6f8", "#b4bfcc", SMALL)
        s.cell(10 + i * 100, 282, 100, 24, f"P = {p:.3f}", WHITE, "#b4bfcc", SMALL)
    s.text(524, 288, f"b = {b}, r = {r}", CODE, "mono", anchor="start")
    return s


def packing() -> Svg:
    "Documents, each closed by the end-of-text token, in one array; windows of it."
    docs = [5, 3, 6]
    s = Svg(680, 250, "Packing documents into one token array")
    cw, x0, y0 = 34, 10, 64
    s.text(
        10,
        22,
        "each document's ids, then <|endoftext|>, written one after another"
        " as uint16 while ids stay below 65,536",
        SMALL,
        anchor="start",
    )
    cells = []
    for d, length in enumerate(docs):
        cells += [(f"d{d + 1}", COLOURS[d])] * length + [("eot", NAVY)]
    for i, (lab, fill) in enumerate(cells):
        s.cell(
            x0 + i * cw,
            y0,
            cw,
            28,
            lab,
            fill,
            "#7a7a7a",
            SMALL,
            color=WHITE if fill == NAVY else INK,
        )
        s.text(x0 + i * cw + cw / 2, y0 - 6, str(i), SMALL, color=MUTED)
    s.text(x0, 44, "index", SMALL, anchor="start", color=MUTED)
    i0, T = 3, 8
    for k, (name, start) in enumerate(
        [("x = a[i : i + T]", i0), ("y = a[i + 1 : i + T + 1]", i0 + 1)]
    ):
        y = 114 + k * 40
        left, right = x0 + start * cw, x0 + (start + T) * cw
        s.add(
            "rect",
            x=left,
            y=y,
            width=right - left,
            height=26,
            rx=4,
            fill=KINDS["data"][0] if k == 0 else KINDS["train"][0],
            stroke=KINDS["data"][1] if k == 0 else KINDS["train"][1],
            stroke_width=1.4,
        )
        s.text((left + right) / 2, y + 18, name, CODE, "mono")
        s.line((left, y0 + 28), (left, y), color="grey", dash=True, width=1)
        s.line((right, y0 + 28), (right, y), color="grey", dash=True, width=1)
    s.text(
        10,
        214,
        f"a window at a random i, T = {T}: the targets y are the inputs x shifted"
        " by one,",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        230,
        "so every position predicts the next id; a window may cross an <|endoftext|>",
        SMALL,
        anchor="start",
    )
    return s


# --- Chapter 3: the model -------------------------------------------------------------


def model_overview() -> Svg:
    "GPT.forward from token ids to logits and loss, with the book's names and shapes."
    s = Svg(680, 420, "GPT.forward: from token ids to logits")
    cx, w = 340, 220
    x0, right = cx - w / 2, cx + w / 2 + 14
    rows = [
        (12, ["`idx`", "_token ids"], "data", "(B, T)"),
        (80, ["`tok_emb`", "_one row per id"], "op", "(vocab_size, n_embd)"),
        (172, ["`x`", "_the residual stream"], "data", "(B, T, n_embd)"),
        (240, ["`blocks`", "_n_layer × Block"], "op", "(B, T, n_embd)"),
        (
            308,
            ["`norm_f, lm_head`", "_n_embd → vocab_size"],
            "op",
            "(vocab_size, n_embd)",
        ),
        (376, ["`logits`"], "data", "(B, T, vocab_size)"),
    ]
    for d in (6, 3):
        s.rect(x0 + d, 240 - d, w, 40, "op")
    for y, lines, kind, shape in rows:
        s.box(x0, y, w, 40 if y < 376 else 36, lines, kind)
        s.text(right, y + 24, shape, CODE, "mono", anchor="start")
    for y, y2 in [(52, 80), (212, 240), (280, 308), (348, 376)]:
        s.arrow((cx, y), (cx, y2 - 1))
    s.line((cx, 120), (cx, 137))
    s.plus(cx, 146)
    s.arrow((cx, 155), (cx, 171))
    s.box(20, 80, 170, 40, ["`pos_emb`", "_learned positions"], "op")
    s.text(20, 138, "(max_seq_len, n_embd)", CODE, "mono", anchor="start")
    s.arrow((190, 100), (206, 100), (206, 146), (cx - 10, 146))
    s.text(20, 176, "RoPE models have no pos_emb:", SMALL, anchor="start", color=MUTED)
    s.text(20, 190, "they rotate q and k inside", SMALL, anchor="start", color=MUTED)
    s.text(20, 204, "attention instead", SMALL, anchor="start", color=MUTED)
    s.text(x0 - 14, 390, "cross_entropy with", SMALL, anchor="end")
    s.text(x0 - 14, 404, "targets → loss", SMALL, anchor="end")
    tie = [(x0 + w, 340), (662, 340), (662, 88), (x0 + w + 1, 88)]
    s.arrow(*tie, color="green", dash=True)
    s.text(656, 146, "tie_embeddings:", SMALL, anchor="end", color=ACCENT["green"])
    s.text(656, 160, "one matrix", SMALL, anchor="end", color=ACCENT["green"])
    return s


def block() -> Svg:
    "Block.forward: two residual branches, each normalised on the way in (pre-norm)."
    s = Svg(680, 330, "A pre-norm transformer block")
    sx = 110  # the residual stream
    s.box(sx - 70, 10, 140, 34, ["`x  (B, T, C)`"], "data")
    s.line((sx, 44), (sx, 110), width=3)
    s.plus(sx, 120)
    s.line((sx, 129), (sx, 220), width=3)
    s.plus(sx, 230)
    s.arrow((sx, 239), (sx, 275), width=3)
    s.box(sx - 70, 276, 140, 34, ["`x  (B, T, C)`"], "data")
    for y0, norm, f, what in [
        (58, "norm1", "attn", "CausalSelfAttention"),
        (168, "norm2", "mlp", "MLP"),
    ]:
        s.arrow((sx, y0 + 18), (200, y0 + 18))
        s.box(201, y0, 92, 36, [f"`{norm}`"], "op")
        s.arrow((293, y0 + 18), (330, y0 + 18))
        s.box(331, y0, 170, 36, [f"`{f}`"], "op")
        s.arrow((501, y0 + 18), (520, y0 + 18), (520, y0 + 62), (sx + 10, y0 + 62))
        s.text(416, y0 + 52, what, SMALL, color=MUTED)
    s.text(sx - 16, 175, "residual", SMALL, anchor="end", color=MUTED)
    s.text(sx - 16, 189, "stream", SMALL, anchor="end", color=MUTED)
    s.text(530, 80, "mixes positions:", SMALL, anchor="start", color=MUTED)
    s.text(530, 94, "each reads earlier ones", SMALL, anchor="start", color=MUTED)
    s.text(530, 190, "one position", SMALL, anchor="start", color=MUTED)
    s.text(530, 204, "at a time", SMALL, anchor="start", color=MUTED)
    s.text(
        201,
        264,
        "x = x + self.attn(self.norm1(x), rope, cache, layer)",
        CODE,
        "mono",
        anchor="start",
    )
    s.text(201, 282, "return x + self.mlp(self.norm2(x))", CODE, "mono", anchor="start")
    s.text(
        201,
        306,
        "pre-norm: the branches read a normalised copy; the stream",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    s.text(
        201,
        321,
        "itself is added to, never rescaled, until norm_f",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def activation_checkpointing() -> Svg:
    "What the backward pass needs kept: everything, or only each block's input."
    n_blocks, inner = 4, 4
    s = Svg(680, 300, "Activation checkpointing keeps only each block's input")
    panels = [("plain forward", False), ("activation_checkpointing = True", True)]
    for p, (title, ckpt) in enumerate(panels):
        x0 = 10 + p * 340
        s.rect(x0, 10, 320, 226, "plain", dash=True)
        s.text(
            x0 + 160,
            32,
            title,
            TITLE if not ckpt else CODE,
            "bold" if not ckpt else "mono",
        )
        for b in range(n_blocks):
            x = x0 + 24 + b * 74
            s.text(x + 27, 58, f"block {b}", SMALL)
            s.cell(x, 196, 54, 22, "input", KINDS["data"][0], KINDS["data"][1], SMALL)
            for k in range(inner):
                y = 170 - k * 26
                if not ckpt:
                    s.cell(x, y, 54, 22, "", KINDS["data"][0], KINDS["data"][1])
                elif b == 2:
                    s.cell(x, y, 54, 22, "", KINDS["train"][0], KINDS["train"][1])
                else:
                    s.add(
                        "rect",
                        x=x,
                        y=y,
                        width=54,
                        height=22,
                        fill="none",
                        stroke="#c8c8c8",
                        stroke_width=1,
                        stroke_dasharray="3 3",
                    )
        if ckpt:
            s.text(
                x0 + 24 + 2 * 74 + 27, 80, "recomputed", SMALL, color=ACCENT["green"]
            )
    s.text(
        10,
        258,
        "left: the forward pass keeps every tensor inside every block until"
        " backward reaches it",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        274,
        "right: it keeps one (B, T, n_embd) input per block; backward runs"
        " each block forward again, one at a time",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        292,
        "orange: kept from the forward pass; green: the one block being recomputed",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def kv_cache() -> Svg:
    "Prefill writes the prompt's keys and values; each decode step adds one position."
    s = Svg(680, 350, "The key-value cache in prefill and decode")
    slots, T, cw = 11, 5, 26
    for p, (name, new, old) in enumerate(
        [("prefill", range(T), []), ("decode", [T], range(T))]
    ):
        x = 10 + p * 340
        s.rect(x, 10, 320, 278, "plain", dash=True)
        s.text(x + 160, 32, name, TITLE, "bold")
        what = (
            f"the prompt: T = {T} positions at once"
            if p == 0
            else "one new position, T = 1"
        )
        s.text(x + 160, 50, what, SMALL)
        tokens = [f"t{i}" for i in new]
        for j, tok in enumerate(tokens):
            s.cell(
                x + 14 + (min(new) + j) * cw,
                64,
                cw,
                22,
                tok,
                KINDS["data"][0],
                KINDS["data"][1],
                SMALL,
            )
        s.text(x + 12, 106, "cache.k, cache.v of one layer:", SMALL, anchor="start")
        for row, lab in enumerate(("k", "v")):
            for j in range(slots):
                fill = (
                    KINDS["train"][0]
                    if j in new
                    else KINDS["data"][0]
                    if j in old
                    else WHITE
                )
                s.cell(
                    x + 14 + j * cw,
                    116 + row * 24,
                    cw,
                    24,
                    f"{lab}{j}" if j in new or j in old else "",
                    fill,
                    "#7a7a7a",
                    SMALL,
                )
        pos0, pos1 = min(new), max(new) + 1
        s.text(
            x + 14 + slots * cw, 182, f"cache.pos: {pos0} → {pos1}", SMALL, anchor="end"
        )
        s.text(x + 12, 204, "attention weights (query × key):", SMALL, anchor="start")
        for qi in new:
            for kj in range(pos1):
                on = kj <= qi
                s.cell(
                    x + 14 + kj * cw,
                    212 + (qi - pos0) * 14,
                    cw,
                    14,
                    "",
                    NAVY if on else WHITE,
                    "#7a7a7a",
                )
    s.text(
        10,
        312,
        "cache.k, cache.v: (n_layer, B, n_kv_head, max_seq_len, head_dim),"
        " allocated once",
        CODE - 1,
        "mono",
        anchor="start",
    )
    s.text(
        10,
        334,
        "green: written this step; orange: read from the cache, never computed again",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


# --- Chapter 4: training --------------------------------------------------------------


def accumulation() -> Svg:
    "k micro-batches, each backward adding loss/k's gradient, then one clipped step."
    k = 4
    s = Svg(680, 316, "Gradient accumulation over micro-batches")
    s.text(
        10,
        22,
        f"one optimizer step on k × B rows, as k = {k} micro-batches of B rows",
        TEXT,
        anchor="start",
    )
    for j in range(k):
        x = 10 + j * 118
        s.box(x, 38, 106, 34, [f"micro-batch {j}"], "data")
        s.arrow((x + 53, 72), (x + 53, 83))
        s.box(x, 84, 106, 34, ["forward: loss"], "op")
        s.arrow((x + 53, 118), (x + 53, 129))
        s.box(x, 130, 106, 34, ["(loss / k)", "_.backward()"], "op")
        s.arrow((x + 53, 164), (x + 53, 181), color="green")
        for q in range(k):
            fill = KINDS["train"][0] if q <= j else WHITE
            s.cell(x + q * 106 / k, 182, 106 / k, 24, "", fill, KINDS["train"][1])
        s.text(x + 53, 224, f"p.grad: {j + 1} of {k}", SMALL)
    x = 500
    s.text(x + 78, 228, "then, once a step", SMALL, color=MUTED)
    steps = [(176, "`clip_grad_norm`"), (130, "`opt.step()`"), (84, "`zero_grad()`")]
    for y, lab in steps:
        s.box(x - 12, y, 180, 34, [lab], "train")
    for y in (130, 84):
        s.arrow((x + 78, y + 34 + 11), (x + 78, y + 35))
    s.arrow((471, 194), (x - 13, 194), color="green")
    s.text(
        10,
        256,
        "the loss of the big batch is the mean over its rows, so each micro-batch"
        " loss is",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        272,
        "divided by k: the gradients added in p.grad are exactly the big batch's",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        300,
        "under DDP, no_sync() on the first k − 1 backward passes:"
        " one all-reduce a step",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def collectives() -> Svg:
    "all_reduce, reduce_scatter and all_gather on four ranks, before and after."
    s = Svg(680, 392, "Collectives: all-reduce, reduce-scatter, all-gather")
    names = "abcd"
    rows = [
        ("all_reduce", "everyone ends with", "the sum", "DDP: gradients"),
        (
            "reduce_scatter",
            "everyone ends with",
            "one piece of the sum",
            "FSDP: gradients",
        ),
        ("all_gather", "everyone ends with", "everyone's pieces", "FSDP: parameters"),
    ]
    cw, ch = 28, 22
    for row, (name, l1, l2, use) in enumerate(rows):
        y0 = 12 + row * 124
        s.text(10, y0 + 40, name, CODE + 1, "mono", anchor="start")
        s.text(10, y0 + 60, l1, SMALL, anchor="start")
        s.text(10, y0 + 75, l2, SMALL, anchor="start")
        s.text(10, y0 + 95, use, SMALL, anchor="start", color=MUTED)
        for rank in range(4):
            y = y0 + 8 + rank * ch
            s.text(206, y + 15, f"rank {rank}", SMALL, anchor="end")
            for j in range(4):
                if name == "all_gather":
                    before = (
                        (f"{names[rank]}{j}", COLOURS[rank])
                        if j == rank
                        else ("", WHITE)
                    )
                    after = (f"{names[j]}{j}", COLOURS[j])
                else:
                    before = (f"{names[rank]}{j}", COLOURS[rank])
                    keep = name == "all_reduce" or j == rank
                    after = (f"Σ{j}", NAVY) if keep else ("", WHITE)
                s.cell(214 + j * cw, y, cw, ch, before[0], before[1], "#7a7a7a", SMALL)
                s.cell(
                    400 + j * cw,
                    y,
                    cw,
                    ch,
                    after[0],
                    after[1],
                    "#7a7a7a",
                    SMALL,
                    color=WHITE if after[1] == NAVY else INK,
                )
        s.arrow((338, y0 + 52), (392, y0 + 52), color="red")
    s.text(214 + 2 * cw, 390 - 4, "before", SMALL, color=MUTED)
    s.text(400 + 2 * cw, 390 - 4, "after", SMALL, color=MUTED)
    s.text(530, 60, "Σ2 = a2 + b2", SMALL, anchor="start", color=MUTED)
    s.text(530, 75, "       + c2 + d2", SMALL, anchor="start", color=MUTED)
    s.text(530, 184, "all_reduce =", SMALL, anchor="start", color=MUTED)
    s.text(530, 199, "reduce_scatter,", SMALL, anchor="start", color=MUTED)
    s.text(530, 214, "then all_gather", SMALL, anchor="start", color=MUTED)
    return s


def parallelism3d() -> Svg:
    "Data, tensor and pipeline parallelism on two ranks: what each holds and sends."
    s = Svg(680, 336, "Three ways to split training: data, tensor and pipeline")
    panels = [
        ("Data parallel", ["whole model on each rank,", "different rows of the batch"],
         [["layers 1–4"], ["layers 1–4"]], [["rows 0–3"], ["rows 4–7"]],
         ["all-reduce: gradients,", "once a step"],
         ["DDP; FSDP also shards", "the weights (ZeRO-3)"]),
        ("Tensor parallel", ["every layer split across", "ranks, the same rows"],
         [["heads 1–2,", "half MLP"], ["heads 3–4,", "half MLP"]],
         [["rows 0–7"], ["rows 0–7"]],
         ["all-reduce: activations,", "twice a block"],
         ["Megatron: column- and", "row-parallel layers"]),
        ("Pipeline parallel",
         ["consecutive layers on each", "rank, micro-batches flow"],
         [["layers 1–2"], ["layers 3–4"]], [["micro-", "batches"], None],
         ["send activations forward,", "gradients back"],
         ["schedules: GPipe, 1F1B"]),
    ]  # fmt: skip
    for p, (title, sub, models, data, comm, note) in enumerate(panels):
        px = 10 + p * 226
        s.text(px + 105, 22, title, TITLE, "bold")
        for i, line in enumerate(sub):
            s.text(px + 105, 40 + 15 * i, line, SMALL)
        for r in range(2):
            x = px + r * 122
            s.rect(x, 70, 88, 180, "plain", dash=True)
            s.text(x + 44, 86, f"rank {r}", SMALL, color=MUTED)
            s.box(x + 4, 96, 80, 44, [f"_{m}" for m in models[r]], "op")
            if data[r]:
                s.box(x + 4, 198, 80, 40, [f"_{d}" for d in data[r]], "data")
                s.arrow((x + 44, 198), (x + 44, 141))
        if p < 2:
            s.arrow((px + 90, 118), (px + 120, 118), color="red", both=True)
        else:
            s.arrow((px + 90, 108), (px + 120, 108), color="red")
            s.arrow((px + 120, 128), (px + 90, 128), color="red")
        for i, line in enumerate(comm):
            s.text(px + 105, 270 + 15 * i, line, SMALL, color=ACCENT["red"])
        for i, line in enumerate(note):
            s.text(px + 105, 312 + 15 * i, line, SMALL, color=MUTED)
    return s


def tensor_parallel() -> Svg:
    "The MLP split over two ranks: column-parallel up_proj, row-parallel down_proj."
    s = Svg(680, 318, "Tensor parallelism of the MLP on two ranks")
    s.box(10, 108, 84, 50, ["`x`", "`(B, T, C)`"], "data")
    for r in range(2):
        y = 14 + r * 130
        s.rect(116, y, 380, 108, "plain", dash=True)
        s.text(124, y + 18, f"rank {r}", SMALL, anchor="start", color=MUTED)
        s.arrow((94, 133), (104, 133), (104, y + 62), (127, y + 62))
        half = ("first", "last")[r]
        s.box(126, y + 38, 136, 48, ["`up_proj`", f"_{half} H/2 columns"], "op")
        s.arrow((262, y + 62), (271, y + 62))
        s.box(272, y + 38, 52, 48, ["`GELU`"], "op")
        s.arrow((324, y + 62), (333, y + 62))
        s.box(334, y + 38, 130, 48, ["`down_proj`", f"_{half} H/2 rows"], "op")
        s.arrow(
            (464, y + 62),
            (530, y + 62),
            (530, 118 + r * 30),
            (547, 118 + r * 30),
            color="red",
        )
        s.text(506, y + 56, f"y{r}", SMALL, color=ACCENT["red"])
    s.box(548, 100, 122, 66, ["`all_reduce`", "_y = y0 + y1"], "comm")
    s.arrow((609, 166), (609, 193))
    s.box(560, 194, 98, 44, ["`(B, T, C)`"], "data")
    s.text(
        10,
        276,
        "ColumnParallelLinear: each rank computes half of the H hidden units,"
        " no communication;",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        292,
        "RowParallelLinear: each multiplies its half by its rows of down_proj;"
        " one all_reduce sums",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        310,
        "attention splits the same way: each rank holds n_head / 2 heads",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def pipeline_schedule(p: int, m: int, kind: str) -> dict:
    "Start time of each (stage, 'F'|'B', micro-batch), one time unit an op, simulated."
    orders = []
    for st in range(p):
        if kind == "gpipe":
            ops = [("F", i) for i in range(m)] + [("B", i) for i in reversed(range(m))]
        else:  # 1F1B: warm-up forwards, then one forward one backward, then cool-down
            w = min(p - 1 - st, m)
            ops = [("F", i) for i in range(w)]
            for i in range(m - w):
                ops += [("F", w + i), ("B", i)]
            ops += [("B", i) for i in range(m - w, m)]
        orders.append(ops)
    end, start, free, idx = {}, {}, [0] * p, [0] * p
    while len(end) < 2 * p * m:
        for st in range(p):
            if idx[st] == len(orders[st]):
                continue
            op, i = orders[st][idx[st]]
            dep = (st - 1, "F", i) if op == "F" else (st + 1, "B", i)
            if op == "F" and st == 0:
                ready = 0
            elif op == "B" and st == p - 1:
                ready = end.get((st, "F", i))
            else:
                ready = end.get(dep)
            if ready is None:
                continue
            t0 = max(free[st], ready)
            start[(st, op, i)], end[(st, op, i)] = t0, t0 + 1
            free[st], idx[st] = t0 + 1, idx[st] + 1
    return start


def pipeline_bubble() -> Svg:
    "GPipe and 1F1B timelines on four stages; the idle bubble and the activations held."
    p, m = 4, 8
    s = Svg(680, 346, "Pipeline schedules: GPipe and 1F1B")
    cw, ch, x0 = 26, 22, 86
    for panel, (kind, title) in enumerate([("gpipe", "GPipe"), ("1f1b", "1F1B")]):
        start = pipeline_schedule(p, m, kind)
        total = max(start.values()) + 1
        y0 = 30 + panel * 140
        held = 0
        ops0 = sorted((t, op) for (st, op, i), t in start.items() if st == 0)
        live = 0
        for _, op in ops0:
            live += 1 if op == "F" else -1
            held = max(held, live)
        s.text(10, y0 - 8, title, TITLE, "bold", anchor="start")
        s.text(
            x0 + total * cw,
            y0 - 8,
            f"stage 0 holds the activations of up to {held} micro-batches",
            SMALL,
            anchor="end",
            color=MUTED,
        )
        for st in range(p):
            y = y0 + st * ch
            s.text(x0 - 8, y + 15, f"stage {st}", SMALL, anchor="end")
            for tt in range(total):
                s.cell(x0 + tt * cw, y, cw, ch, "", WHITE, "#d0d0d0")
        for (st, op, i), tt in start.items():
            fill = COLOURS[0] if op == "F" else COLOURS[2]
            s.cell(x0 + tt * cw, y0 + st * ch, cw, ch, f"{i}", fill, "#7a7a7a", SMALL)
        idle = p * total - 2 * p * m
        s.text(
            x0,
            y0 + p * ch + 18,
            f"{total} time units; idle (white): {idle} of"
            f" {p * total} = {idle / (p * total):.0%}",
            SMALL,
            anchor="start",
        )
    s.cell(10, 300, 26, 20, "3", COLOURS[0], "#7a7a7a", SMALL)
    s.text(42, 314, "forward of micro-batch 3", SMALL, anchor="start")
    s.cell(220, 300, 26, 20, "3", COLOURS[2], "#7a7a7a", SMALL)
    s.text(252, 314, "its backward", SMALL, anchor="start")
    s.text(
        10,
        338,
        f"p = {p} stages, m = {m} micro-batches: bubble (p − 1)/(m + p − 1)"
        f" = {p - 1}/{m + p - 1} in both schedules",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


# --- Chapter 5: evaluation ------------------------------------------------------------


def strided_windows(n: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    "token_nll's windows: (begin, end, done); a window reads ids[begin:end] and scores"
    " the targets ids[done + 1 : end + 1] that no earlier window scored."
    windows, done, begin = [], 0, 0
    while done < n - 1:
        end = min(begin + window, n - 1)
        windows.append((begin, end, done))
        done, begin = end, begin + stride
    return windows


def perplexity_stride() -> Svg:
    "Scoring a text longer than the context: windows without and with overlap."
    n, L = 20, 8
    s = Svg(680, 352, "Perplexity of a long text with strided windows")
    cw, x0 = 27, 110
    s.text(
        10,
        22,
        f"a text of {n} ids, a model with max_seq_len = {L}; each cell is a target id",
        SMALL,
        anchor="start",
    )
    y = 52
    for i in range(n):
        s.text(x0 + i * cw + cw / 2, y - 6, str(i), SMALL, color=MUTED)
    s.text(x0 - 10, y - 6, "id", SMALL, anchor="end", color=MUTED)
    for stride in (L, L // 2):
        s.text(10, y + 10, f"stride = {stride}", TEXT, "bold", anchor="start")
        for w, (b, e, d) in enumerate(strided_windows(n, L, stride)):
            yy = y + 16 + w * 26
            s.text(x0 - 10, yy + 16, f"ids[{b}:{e}]", SMALL, anchor="end")
            for tgt in range(b + 1, e + 1):
                scored = tgt > d
                fill = KINDS["train"][0] if scored else KINDS["muted"][0]
                stroke = KINDS["train"][1] if scored else KINDS["muted"][1]
                s.cell(
                    x0 + tgt * cw,
                    yy,
                    cw,
                    22,
                    str(tgt - b) if scored else "",
                    fill,
                    stroke,
                    SMALL,
                )
        y = yy + 56
    s.text(
        10,
        y - 12,
        "green: scored by this window, the number is how many ids of"
        " context it sees; grey: context only",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        y + 6,
        "with overlap, every scored id beyond the first window sees at"
        " least max_seq_len − stride + 1 ids",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def mmlu_letter() -> Svg:
    "Multiple choice by likelihood: which letter does the model find most probable?"
    s = Svg(680, 300, "Scoring a multiple-choice question by likelihood")
    lines = [
        ("The following are multiple choice", MUTED),
        ("questions (with answers) about", MUTED),
        ("astronomy.", MUTED),
        ("(k solved examples)", MUTED),
        ("Which star is closest to Earth?", INK),
        ("A. Proxima Centauri", INK),
        ("B. The Sun", INK),
        ("C. Sirius", INK),
        ("D. Vega", INK),
        ("Answer:", INK),
    ]
    s.rect(10, 14, 276, 222, "data")
    for i, (line, colour) in enumerate(lines):
        s.text(20, 36 + i * 20, line, 11, "mono", anchor="start", color=colour)
    s.text(148, 256, "mmlu_prompt(q, shots)", CODE, "mono")
    s.arrow((286, 125), (307, 125))
    s.box(308, 96, 96, 58, ["`lm`", "_one forward"], "op")
    s.arrow((404, 125), (425, 125))
    s.text(426, 30, "log p of the next token", SMALL, anchor="start")
    for i, (letter, length) in enumerate(zip("ABCD", (60, 150, 85, 40))):
        y = 46 + i * 40
        best = letter == "B"
        s.cell(
            426,
            y,
            40,
            28,
            f"·{letter}",
            KINDS["data"][0],
            KINDS["data"][1],
            CODE,
            "mono",
        )
        s.add(
            "rect",
            x=474,
            y=y + 4,
            width=length,
            height=20,
            rx=2,
            fill=KINDS["train"][0] if best else KINDS["muted"][0],
            stroke=KINDS["train"][1] if best else KINDS["muted"][1],
            stroke_width=1.2,
        )
    s.text(426, 226, "pick the highest (ties at random);", SMALL, anchor="start")
    s.text(426, 242, "correct when it is the answer", SMALL, anchor="start")
    s.text(
        10,
        284,
        'score="text" instead sums log p over each choice\'s own text, which'
        " favours short answers",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


# --- Appendix A: post-training --------------------------------------------------------


def chat_mask() -> Svg:
    "encode_chat's ids and mask, and the shifted targets that train on the reply only."
    turns = [("user", ["Hi"]), ("assistant", ["Well", " met"])]
    ids, mask = [], []
    for role, body in turns:  # as llmbook.finetune.encode_chat lays them out
        ids += [f"<|{role}|>"] + body + ["<|end|>"]
        mask += [False] + [role == "assistant"] * (len(body) + 1)
    x = ids[:-1]
    y = [ids[t + 1] if mask[t + 1] else "-100" for t in range(len(x))]
    s = Svg(680, 268, "The chat template and its loss mask")
    widths = [
        max(text_width(v.replace(" ", "·"), CODE, "mono") for v in col) + 12
        for col in zip(ids, x + [""], y + [""])
    ]
    x0, ch = 160, 28
    rows = [
        ("ids", [v.replace(" ", "·") for v in ids], None),
        ("assistant's to say", ["yes" if m else "no" for m in mask], mask),
        ("inputs x = ids[:-1]", [v.replace(" ", "·") for v in x], None),
        ("targets y", [v.replace(" ", "·") for v in y], [v != "-100" for v in y]),
    ]
    for r, (label, vals, flags) in enumerate(rows):
        yy = 20 + r * 44 + (14 if r >= 2 else 0)
        s.text(x0 - 10, yy + 19, label, SMALL, anchor="end")
        left = x0
        for c, v in enumerate(vals):
            if flags is None:
                fill, stroke = KINDS["data"][0], KINDS["data"][1]
            elif flags[c]:
                fill, stroke = KINDS["train"][0], KINDS["train"][1]
            else:
                fill, stroke = KINDS["frozen"][0], KINDS["frozen"][1]
            font = "mono" if r != 1 else "serif"
            s.cell(
                left,
                yy,
                widths[c],
                ch,
                v,
                fill,
                stroke,
                CODE if r != 1 else SMALL,
                font,
                color=MUTED if v in ("no", "-100") else INK,
            )
            left += widths[c] + 4
    s.line((x0 - 150, 114), (670, 114), color="grey", dash=True, width=1)
    s.text(
        10,
        228,
        "the targets are the ids shifted left by one; where the next id is not"
        " the assistant's,",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        244,
        "sft_targets writes −100, which cross_entropy ignores: the loss reads"
        " only the reply and its <|end|>",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        262,
        "· marks a space that belongs to the token",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


def lora() -> Svg:
    "A frozen W plus a trainable low-rank update B A, scaled by alpha / r."
    d_in, d_out, r = 384, 3 * 384, 8  # the book's qkv_proj
    full, low = d_in * d_out, r * (d_in + d_out)
    s = Svg(680, 372, "LoRA: a frozen weight plus a low-rank update")
    s.box(10, 150, 56, 44, ["`x`"], "data")
    s.box(110, 20, 120, 120, ["**W**", "_d_out × d_in", "_frozen"], "frozen")
    s.box(110, 208, 120, 30, ["_A:  r × d_in"], "train")
    s.box(262, 176, 40, 124, ["**B**"], "train")
    s.text(282, 318, "B: d_out × r, zeros at start", SMALL, anchor="middle")
    s.box(332, 220, 70, 34, ["× α / r"], "op")
    s.arrow((66, 172), (88, 172), (88, 80), (109, 80))
    s.arrow((88, 172), (88, 223), (109, 223))
    s.arrow((230, 223), (261, 223), color="green")
    s.arrow((302, 237), (331, 237), color="green")
    s.plus(450, 172)
    s.arrow((230, 80), (450, 80), (450, 162))
    s.arrow((402, 237), (450, 237), (450, 182), color="green")
    s.arrow((459, 172), (489, 172))
    s.box(490, 150, 60, 44, ["`h`"], "data")
    s.text(566, 168, "h = W x", SMALL, anchor="start")
    s.text(566, 184, "+ (α/r) B A x", SMALL, anchor="start", color=ACCENT["green"])
    s.text(
        10,
        344,
        f"for the book's qkv_proj (d_in = {d_in}, d_out = {d_out:,}) and r = {r}:"
        f" W holds {full:,} frozen numbers,",
        SMALL,
        anchor="start",
    )
    s.text(
        10,
        362,
        f"A and B {low:,} trained ones ({low / full:.1%}); merged() folds"
        " W + (α/r) B A into one nn.Linear",
        SMALL,
        anchor="start",
    )
    return s


def dpo_flow() -> Svg:
    "DPO: log-probabilities of a preference pair under the policy and the reference."
    s = Svg(680, 336, "Direct preference optimisation on one pair")
    s.box(10, 62, 130, 50, ["prompt +", "chosen answer"], "data")
    s.box(10, 152, 130, 50, ["prompt +", "rejected answer"], "data")
    s.text(250, 28, "policy π (trained)", TEXT, "bold", color=ACCENT["green"])
    s.text(420, 28, "reference (frozen)", TEXT, "bold", color=ACCENT["grey"])
    s.text(420, 44, "the SFT model", SMALL, color=MUTED)
    for row, what in enumerate(("chosen", "rejected")):
        y = 62 + row * 90
        s.arrow((140, y + 25), (171, y + 25))
        s.arrow((156, y + 25), (156, y - 9), (420, y - 9), (420, y - 1), color="grey")
        s.box(172, y, 156, 50, [f"log π({what})"], "train")
        s.box(342, y, 156, 50, [f"log π_ref({what})"], "frozen")
        s.arrow((498, y + 25), (523, y + 25))
        s.box(520, y, 134, 50, [f"r_{what}", "_β (log π − log π_ref)"], "op")
    s.arrow((654, 87), (664, 87), (664, 247))
    s.arrow((587, 202), (587, 247))
    s.box(400, 248, 270, 44, ["loss = −log σ(r_chosen − r_rejected)"], "focus")
    s.text(10, 240, "response_logprob: the sum of", SMALL, anchor="start")
    s.text(10, 255, "log p over the answer's tokens", SMALL, anchor="start")
    s.text(
        10,
        312,
        "the loss falls as the policy raises the chosen answer relative to the"
        " reference more than the rejected one;",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    s.text(
        10,
        328,
        "β sets how far from the reference that margin may pull it",
        SMALL,
        anchor="start",
        color=MUTED,
    )
    return s


# --- Writing and checking -------------------------------------------------------------


def figures() -> dict[str, Svg]:
    "Every figure this script draws, by file name, in the order of the book."
    out = {"pipeline.svg": roadmap()}
    out.update({f"roadmap-{k}.svg": roadmap(k) for k in [*CHAPTERS, "B"]})
    for name, draw in [
        ("embedding-product", embedding_product),
        ("rope-pairs", rope_pairs),
        ("attention-flow", attention_flow),
        ("heads-gqa", heads_gqa),
        ("data-pipeline", data_pipeline),
        ("bpe-merges", bpe_walkthrough),
        ("lsh-bands", lsh_banding),
        ("packing", packing),
        ("model-overview", model_overview),
        ("block", block),
        ("activation-checkpointing", activation_checkpointing),
        ("kv-cache", kv_cache),
        ("accumulation", accumulation),
        ("collectives", collectives),
        ("parallelism3d", parallelism3d),
        ("tensor-parallel", tensor_parallel),
        ("pipeline-bubble", pipeline_bubble),
        ("perplexity-stride", perplexity_stride),
        ("mmlu-letter", mmlu_letter),
        ("chat-mask", chat_mask),
        ("lora", lora),
        ("dpo-flow", dpo_flow),
    ]:
        out[f"{name}.svg"] = draw()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare, do not write")
    p.add_argument("--out", type=Path, default=FIGURES, help="folder to write")
    args = p.parse_args(argv)
    stale = []
    for name, svg in figures().items():
        path, text = args.out / name, svg.render()
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python tools/diagrams.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
