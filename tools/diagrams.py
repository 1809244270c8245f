"""Draw the book's conceptual diagrams as SVG files in `figures/`.

    python tools/diagrams.py            # write every figure
    python tools/diagrams.py --check    # exit 1 if a committed figure is out of date

Plain Python writing SVG text, so the figures need nothing but this file. All of them
share one visual language: the palette in `KINDS`, Libertinus Serif (bundled with typst,
the serif every PDF build has) for words, DejaVu Sans Mono for code, 1.4 px outlines and
one arrow head. Browsers without Libertinus fall back to a wider serif, so every text is
measured with DejaVu Serif's advance widths (the widest fallback) and a text that would
leave its box or the canvas raises an error instead of being drawn.
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
OTHER = {"·": 348, "’": 348, "–": 500, "θ": 667, "β": 664, "α": 770, "σ": 737}


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
        self.w, self.h, self.title, self.parts = w, h, title, []

    def add(self, tag: str, body: str = "", **attrs):
        a = " ".join(
            f'{k.rstrip("_").replace("_", "-")}="{_fmt(v)}"'
            for k, v in attrs.items()
            if v is not None
        )
        self.parts.append(f"<{tag} {a}>{body}</{tag}>" if body else f"<{tag} {a}/>")

    def rect(self, x, y, w, h, kind="op", rx=6, dash=False, width=1.4):
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

    def arrow(self, *pts, color="navy", dash=False, head=True, width=1.6):
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


# --- The book's roadmap ------------------------------------------------------------

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
        ["**B Command line**", "`llmbook data | train | eval | chat | run`"],
        cli,
    )
    return s


# --- Chapter 3: the model --------------------------------------------------------


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
    s.text(656, 204, "tie_embeddings:", SMALL, anchor="end", color=ACCENT["green"])
    s.text(656, 218, "one matrix", SMALL, anchor="end", color=ACCENT["green"])
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


# --- Chapter 1: attention and positions ----------------------------------------------


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


def rope_pairs() -> Svg:
    "Rotate-half RoPE: which dimensions pair up, and how fast each pair turns."
    s = Svg(680, 300, "Rotary position embedding turns pairs of dimensions")
    hd, base = 8, 10000.0
    s.text(10, 22, f"one head's q or k, head_dim = {hd}", TEXT, anchor="start")
    for d in range(hd):
        s.cell(10 + d * 34, 34, 34, 28, f"x{d}", COLOURS[d % (hd // 2)], NAVY, SMALL)
    for i in range(hd // 2):
        a, b = 27 + i * 34, 27 + (i + hd // 2) * 34
        s.add(
            "path",
            d=f"M {a} 62 C {a} {92 + 8 * i} {b} {92 + 8 * i} {b} 62",
            fill="none",
            stroke=ACCENT["grey"],
            stroke_width=1.2,
        )
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


# --- Chapter 3: the KV cache ---------------------------------------------------------


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
        "cache.k, cache.v: (n_layer, B, n_kv_head, max_seq_len, head_dim), allocated once",
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


# --- Writing and checking ------------------------------------------------------------


def figures() -> dict[str, Svg]:
    "Every figure this script draws, by file name."
    out = {"pipeline.svg": roadmap()}
    out.update({f"roadmap-{k}.svg": roadmap(k) for k in [*CHAPTERS, "B"]})
    out.update(
        {
            "model-overview.svg": model_overview(),
            "block.svg": block(),
            "attention-flow.svg": attention_flow(),
            "heads-gqa.svg": heads_gqa(),
            "rope-pairs.svg": rope_pairs(),
            "kv-cache.svg": kv_cache(),
        }
    )
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
