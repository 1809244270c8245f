"""Build the book from the notebooks: execute, process, render.

    python tools/book.py execute [NAME ...]   run notebooks into _proc/ (skips up-to-date ones)
    python tools/book.py render [--fallback]  render _proc/ into _book/ (Quarto if on PATH)
    python tools/book.py all                  both

`execute` runs each notebook of `nbs/` in a fresh Jupyter kernel (cwd `nbs/`), then turns
nbdev's directives into what the book shows: `#| hide` cells go, `#| export` cells stay as
the book's code with the directive removed, Quarto's own cell options (`echo`, `output`,
`label`, `fig-cap`, ...) stay for the renderer. The result lands in `_proc/` laid out for
`_quarto.yml`: the preface as `_proc/index.ipynb`, chapters as `_proc/nbs/*.ipynb`.

`render` copies `_quarto.yml`, `references.bib` and `figures/` into `_proc/` and renders it.
Where `quarto` is absent it renders the same chapter list with pandoc (from pypandoc-binary)
and typst: figure, table, equation and section numbers are computed here, per chapter, and
the filter `book.lua` turns `@fig-x` references and callouts into typst and HTML.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import nbformat
import yaml

from llmbook.cli import BOOK_MODEL_ENV  # kernels find the trained checkpoint there

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
PROC = ROOT / "_proc"
BOOK = ROOT / "_book"
TOOLS = Path(__file__).resolve().parent

QUARTO_CELL_OPTIONS = {
    "echo",
    "output",
    "eval",
    "include",
    "warning",
    "error",
    "label",
    "fig-cap",
    "fig-alt",
    "fig-width",
    "fig-height",
    "fig-align",
    "tbl-cap",
    "tbl-colwidths",
    "code-fold",
    "code-summary",
    "classes",
}
DIRECTIVE = re.compile(r"^\s*#\|\s?(.*?)\s*$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BuildError(Exception):
    """A notebook or the book failed to build; the message names the file and the cell."""


# ---------------------------------------------------------------------------- configuration
@dataclass
class Entry:
    """One file of the book, as `_quarto.yml` lists it (a path relative to `_proc/`)."""

    path: str
    appendix: bool = False

    @property
    def source(self) -> Path:
        """Where the entry is authored: the repo path itself, else the same name in `nbs/`."""
        direct = ROOT / self.path
        return direct if direct.exists() else NBS / Path(self.path).name

    @property
    def is_notebook(self) -> bool:
        return self.path.endswith(".ipynb")


def book_config() -> dict:
    with open(ROOT / "_quarto.yml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def entries(cfg: dict | None = None) -> list[Entry]:
    book = (cfg or book_config())["book"]

    def flatten(items, appendix):
        for item in items or []:
            if isinstance(item, dict):  # a part: {part: "...", chapters: [...]}
                yield from flatten(item.get("chapters"), appendix)
            else:
                yield Entry(item, appendix)

    return [
        *flatten(book.get("chapters"), False),
        *flatten(book.get("appendices"), True),
    ]


def notebooks() -> list[Path]:
    """Every notebook in `nbs/`: each is executed (and so tested) by the build."""
    return sorted(NBS.glob("*.ipynb"))


def proc_path(src: Path) -> Path:
    """Where the executed, processed copy of a source notebook goes in `_proc/`."""
    for e in entries():
        if e.source.resolve() == src.resolve():
            return PROC / e.path
    return (
        PROC / "nbs" / src.name
    )  # not in the book: still executed, kept beside the others


# ---------------------------------------------------------------------------- cell options
def split_directives(source: str) -> tuple[list[str], str]:
    """Leading `#|` lines of a cell and the rest of its source."""
    lines = source.splitlines()
    directives = []
    while lines and DIRECTIVE.match(lines[0]):
        directives.append(DIRECTIVE.match(lines[0]).group(1))
        lines.pop(0)
    return directives, "\n".join(lines)


def directive_groups(directives: list[str]) -> list[tuple[str | None, list[str]]]:
    """The directives as (key, lines): a Quarto option `key: value` with the indented
    lines that continue its YAML value below it, or (None, [flag]) for an nbdev flag."""
    groups = []
    for d in directives:
        if m := re.match(r"^([\w-]+)\s*:", d):
            groups.append((m.group(1), [d]))
        elif d[:1].isspace() and groups and groups[-1][0]:
            groups[-1][1].append(d)  # a folded caption's next line
        elif d:
            groups.append((None, [d]))
    return groups


def parse_directives(directives: list[str]) -> tuple[set[str], dict]:
    """nbdev flags (`export`, `hide`, `default_exp x`) and Quarto options (`key: value`,
    YAML that may continue on indented lines, as Quarto reads it)."""
    flags, options = set(), {}
    for key, lines in directive_groups(directives):
        if key is None:
            flags.add(lines[0].split()[0])
        else:
            options |= yaml.safe_load("\n".join(lines)) or {}
    return flags, options


def cell_options(cell) -> tuple[set[str], dict]:
    return parse_directives(split_directives(cell.source)[0])


# ---------------------------------------------------------------------------- execution
SETUP_CELL = "%config InlineBackend.figure_formats = ['retina']\n"


def _sha(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def library_sha() -> str:
    return _sha(*sorted((ROOT / "llmbook").glob("*.py")), ROOT / "settings.ini")


def is_up_to_date(src: Path) -> bool:
    out = proc_path(src)
    if not out.exists():
        return False
    meta = nbformat.read(out, as_version=4).metadata.get("llmbook", {})
    return (
        meta.get("source_sha") == _sha(src)
        and meta.get("library_sha") == library_sha()
        and meta.get("book_model")
        == (book_model_key() if uses_book_model(src) else None)
    )


# ---------------------------------------------------------------------------- the book's model
BOOK_MODEL_CONFIG = ROOT / "configs" / "book-model.json"
BOOK_MODEL_DIR = PROC / "book-model"


def uses_book_model(src: Path) -> bool:
    """A notebook that reads the book's model names its environment variable or calls
    `book_run`."""
    text = src.read_text(encoding="utf-8")
    return BOOK_MODEL_ENV in text or "book_run(" in text


def book_model_key() -> str | None:
    """What the book's model depends on: its config and the library (None: no model)."""
    if not BOOK_MODEL_CONFIG.exists():
        return None
    return f"{_sha(BOOK_MODEL_CONFIG)}-{library_sha()}"


def book_model_tokens() -> Path:
    """Where the book's model's packed tokens go: kept while the config's data section
    and the library are unchanged (packing is the slow part of a small run)."""
    data = json.loads(BOOK_MODEL_CONFIG.read_text()).get("data", {})
    key = hashlib.sha256((json.dumps(data, sort_keys=True) + library_sha()).encode())
    return BOOK_MODEL_DIR / f"data-{key.hexdigest()[:12]}"


def ensure_book_model() -> Path | None:
    """Train the book's running model once with the command line (`llmbook train
    configs/book-model.json`), cached in `_proc/book-model/` until its config or the
    library changes, and tell the notebooks' kernels where its final checkpoint is
    (the environment variable BOOK_MODEL_ENV). None where the book has no model config."""
    key = book_model_key()
    if key is None:
        return None
    final = BOOK_MODEL_DIR / "run" / "final"
    stamp = BOOK_MODEL_DIR / "stamp.json"
    cached = stamp.exists() and json.loads(stamp.read_text()).get("key") == key
    if not (cached and final.exists()):
        tokens = book_model_tokens()
        if BOOK_MODEL_DIR.exists():
            for old in BOOK_MODEL_DIR.iterdir():
                if old != tokens:
                    (shutil.rmtree if old.is_dir() else Path.unlink)(old)
        BOOK_MODEL_DIR.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "llmbook.cli",
            "train",
            str(BOOK_MODEL_CONFIG),
            "--out_dir",
            str(BOOK_MODEL_DIR / "run"),
            "--data.dir",
            str(tokens),
        ]
        start = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0 or not final.exists():
            raise BuildError(
                f"training the book's model failed ({' '.join(cmd[2:])}):\n"
                f"{(r.stderr or r.stdout)[-3000:]}"
            )
        seconds = time.perf_counter() - start
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "seconds": round(seconds, 1)}))
        tmp.replace(stamp)  # written last: a half-trained run is never taken as done
        print(f"trained the book's model in {seconds:.0f}s -> {final}", flush=True)
    os.environ[BOOK_MODEL_ENV] = str(final)
    return final


def execute_notebook(
    src: Path, timeout: int = 900
) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell of `src` in a fresh kernel; `#| eval: false` cells are not run."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(src, as_version=4)
    held_back = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell_options(cell)[1].get("eval") is False:
            held_back[i] = cell.source
            cell.source = ""
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP_CELL))
    failed = {}

    def on_cell_error(cell, cell_index, execute_reply):
        failed["index"] = cell_index - 1  # the setup cell shifts indices by one

    sockets = tempfile.mkdtemp(prefix="llmbook-kernel-")  # local IPC sockets, not TCP
    km = KernelManager(
        kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel")
    )
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        allow_errors=False,
        resources={"metadata": {"path": str(src.parent)}},
        on_cell_error=on_cell_error,
    )
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        i = failed.get("index", "?")
        src_cell = nb.cells[i + 1].source if isinstance(i, int) else ""
        first = next(
            (
                ln
                for ln in src_cell.splitlines()
                if ln.strip() and not ln.startswith("#|")
            ),
            "",
        )
        raise BuildError(
            f"{os.path.relpath(src, ROOT)}: cell {i} failed (it begins `{first[:80]}`):\n"
            f"{ANSI.sub('', str(e))[-4000:]}"
        ) from None
    finally:
        # nbclient shuts down only kernels it started itself; this one is ours.
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    seconds = time.perf_counter() - start
    nb.cells.pop(0)
    for i, source in held_back.items():
        nb.cells[i].source = source
    return nb, seconds


def relink_images(md: str, src_dir: Path, out_dir: Path) -> str:
    """Keep relative image links working from the processed notebook's place in `_proc/`
    (the preface moves from `nbs/` to the root): repo files map to their copies in `_proc/`."""

    def fix(m):
        path = m.group(2)
        if re.match(r"^[a-z]+:", path) or path.startswith("/"):
            return m.group(0)
        target = (src_dir / path).resolve()
        if ROOT not in target.parents:
            return m.group(0)
        return m.group(1) + os.path.relpath(PROC / target.relative_to(ROOT), out_dir)

    return "".join(
        chunk if code else IMAGE_PATH.sub(fix, chunk)
        for code, chunk in split_fences(md)
    )


SOLUTION_CODE = re.compile(r"^\s*#\|\s*solution:\s*(?P<id>exr-[\w-]+)\s*$")
SOLUTION_MD = re.compile(r"^\s*<!--\s*solution:\s*(?P<id>exr-[\w-]+)\s*-->\s*$")
FRONT_TITLE = re.compile(
    r"\A# (?P<title>.+?)\s*\{(?P<attrs>[^{}]*\.unnumbered[^{}]*)\}\s*\n"
)


def solution_of(cell) -> str | None:
    """The exercise a cell solves: its first line is `#| solution: exr-x` (code) or
    `<!-- solution: exr-x -->` (markdown); else None."""
    first = cell.source.split("\n", 1)[0]
    pattern = SOLUTION_CODE if cell.cell_type == "code" else SOLUTION_MD
    m = pattern.match(first) if cell.cell_type in ("code", "markdown") else None
    return m.group("id") if m else None


# A solution is folded under its exercise in HTML and moved to the Solutions appendix in
# print: Quarto's own syntax, so real Quarto does the same (tools/book.lua does it here).
SOLUTION_OPEN = (
    '::: {.content-visible when-format="html"}\n'
    '::: {.callout-tip .solution collapse="true"}\n## Solution'
)
SOLUTION_CLOSE = ":::\n:::"


# Quarto makes a notebook's first heading its title when nothing precedes it in its cell,
# and drops the heading's classes: `# Preface {.unnumbered}` became chapter 1 of the HTML
# book (quarto-cli#8526, checked with Quarto 1.10.16 and 1.10.18). A YAML title does not
# help: Quarto's HTML numbering reads classes only from a `# Title {.x}` heading. So the
# heading stays a heading, after a comment that keeps Quarto from taking it as the title.
FRONT_HEADING_GUARD = (
    "<!-- this heading stays a heading: Quarto would make it the title and number the "
    "chapter (quarto-cli#8526) -->\n"
)


def guard_front_heading(cell) -> bool:
    """Put FRONT_HEADING_GUARD before a first cell's `# Title {.unnumbered}` heading;
    True where it did."""
    if cell.cell_type != "markdown" or not FRONT_TITLE.match(cell.source + "\n"):
        return False
    cell.source = FRONT_HEADING_GUARD + cell.source
    return True


def process_notebook(
    nb: nbformat.NotebookNode, src_dir: Path = NBS, out_dir: Path = PROC / "nbs"
) -> nbformat.NotebookNode:
    """nbdev directives -> what the book shows. Returns a new notebook."""
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    open_solution = None
    for ci, cell in enumerate(nb.cells):
        solution = solution_of(cell)
        if open_solution and solution != open_solution:
            out.cells.append(nbformat.v4.new_markdown_cell(SOLUTION_CLOSE))
            open_solution = None
        if solution and not open_solution:
            out.cells.append(nbformat.v4.new_markdown_cell(SOLUTION_OPEN))
            open_solution = solution
        if cell.cell_type != "code":
            cell = nbformat.from_dict(dict(cell))
            if solution:
                cell.source = (
                    cell.source.split("\n", 1)[1] if "\n" in cell.source else ""
                )
                cell.metadata["solution"] = solution
            if cell.cell_type == "markdown":
                if ci == 0:
                    guard_front_heading(cell)
                cell.source = relink_images(cell.source, src_dir, out_dir)
            out.cells.append(cell)
            continue
        directives, body = split_directives(cell.source)
        flags, options = parse_directives(directives)
        if "hide" in flags or options.get("include") is False:
            continue
        if not body.strip():  # `#| default_exp x` and other directive-only cells
            continue
        kept = [
            f"#| {line}"
            for key, lines in directive_groups(directives)
            if key in QUARTO_CELL_OPTIONS
            for line in lines
        ]
        new = nbformat.v4.new_code_cell("\n".join(kept + [body]))
        new.outputs = [
            o for o in cell.get("outputs", []) if o.get("output_type") != "error"
        ]
        new.execution_count = cell.get("execution_count")
        if solution:
            new.metadata["solution"] = solution
        out.cells.append(new)
    if open_solution:
        out.cells.append(nbformat.v4.new_markdown_cell(SOLUTION_CLOSE))
    return out


def notebook_json(nb: nbformat.NotebookNode) -> str:
    """The notebook as nbformat writes it, except that each code cell's source is one
    string. Quarto (1.10, `partitionCellOptions`) joins a source stored as a list of
    lines with a second newline, so a cell option folded over several `#|` lines gains a
    blank line per line, and a folded caption becomes text with line breaks that ends
    the cell's div (quarto-dev/quarto-cli#9421). Markdown sources stay lists: Quarto
    joins a string one without its newlines."""
    data = json.loads(nbformat.writes(nb))
    for cell in data["cells"]:
        if cell["cell_type"] == "code" and isinstance(cell["source"], list):
            cell["source"] = "".join(cell["source"])
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build_notebook(src: Path, force: bool = False) -> Path:
    """Execute and process one notebook into `_proc/`, unless its copy there is up to date."""
    out = proc_path(src)
    if not force and is_up_to_date(src):
        return out
    uses_model = uses_book_model(src)
    if uses_model:
        ensure_book_model()
    nb, seconds = execute_notebook(src)
    processed = process_notebook(nb, src.parent, out.parent)
    processed.metadata["llmbook"] = {
        "source_sha": _sha(src),
        "library_sha": library_sha(),
        "book_model": book_model_key() if uses_model else None,
        "seconds": round(seconds, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(notebook_json(processed), encoding="utf-8")
    tmp.replace(out)
    print(
        f"executed {src.relative_to(ROOT)} in {seconds:.1f}s -> {out.relative_to(ROOT)}",
        flush=True,
    )
    return out


def execute_all(names: list[str] | None = None, force: bool = False) -> None:
    chosen = [
        nb for nb in notebooks() if not names or nb.stem in names or nb.name in names
    ]
    if names and not chosen:
        raise BuildError(
            f"no notebook in nbs/ matches {names}; the notebooks are "
            f"{[n.stem for n in notebooks()]}"
        )
    for src in chosen:
        build_notebook(src, force=force)


# ---------------------------------------------------------------------------- staging
QUARTO_FILES = [
    "tools/typography.lua",
    "tools/quarto-page.typ",
]  # _quarto.yml uses them
SOLUTIONS_MARK = "<!-- solutions -->"  # where the build writes the collected solutions
SHORTCODE = re.compile(r"\{\{<\s*meta\s+(?P<key>[\w.-]+)\s*>\}\}")


LICENCES = {"apache2": "Apache License 2.0", "mit": "MIT License"}  # settings.ini names


def build_info() -> dict[str, str]:
    """What the book states about itself: library version, source commit, build date."""
    import configparser

    ini = configparser.ConfigParser()
    ini.read(ROOT / "settings.ini")
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not built from a git checkout)"
    licence = LICENCES.get(ini["DEFAULT"]["license"], ini["DEFAULT"]["license"])
    return {
        "llmbook-version": ini["DEFAULT"]["version"],
        "llmbook-commit": commit,
        "llmbook-built": date.today().isoformat(),
        "llmbook-rights": f"© {ini['DEFAULT']['copyright']}. Text and code under the "
        f"{licence}; the data the book reads is credited in the Preface.",
    }


def shortcodes(md: str, meta: dict) -> str:
    """Quarto's `{{< meta key >}}` outside code, for the fallback renderer."""

    def value(m):
        if m.group("key") not in meta:
            raise BuildError(
                f"{{{{< meta {m.group('key')} >}}}}: no such key in the book's metadata; "
                f"known: {sorted(meta)}"
            )
        return str(meta[m.group("key")])

    return "".join(
        chunk if code else SHORTCODE.sub(value, chunk)
        for code, chunk in split_fences(md)
    )


def chapter_labels(cfg: dict | None = None) -> dict[str, str | None]:
    """Entry path -> its number as the book prints it ("3", "A"); None when unnumbered."""
    letters = iter(string.ascii_uppercase)
    labels, number = {}, 0
    for e in entries(cfg):
        if entry_title(e)[1]:
            labels[e.path] = None
        elif e.appendix:
            labels[e.path] = next(letters)
        else:
            number += 1
            labels[e.path] = str(number)
    return labels


def entry_title(e: Entry) -> tuple[str, bool]:
    """(title, unnumbered) of a book entry, read from its source's first level-1 heading."""
    if e.is_notebook:
        md = "\n".join(
            c.source
            for c in nbformat.read(e.source, as_version=4).cells
            if c.cell_type == "markdown"
        )
    else:
        md = e.source.read_text(encoding="utf-8")
    m = re.search(r"^# (.+?)\s*(\{[^{}]*\})?\s*$", md, re.M)
    if not m:
        raise BuildError(f"{e.path}: a book entry must begin with a level-1 heading")
    return m.group(1), ".unnumbered" in (m.group(2) or "")


def notebook_solutions(nb, heading: str, out_dir: Path, key: str) -> str:
    """The solutions of one processed notebook under `heading`, each under "Solution to
    Exercise N" (a cross-reference to its exercise); "" when it has none."""
    cells = [c for c in nb.cells if c.get("metadata", {}).get("solution")]
    if not cells:
        return ""
    parts, current = [f"## {heading} {{.unnumbered}}"], None
    for i, cell in enumerate(cells):
        if cell.metadata["solution"] != current:
            current = cell.metadata["solution"]
            parts.append(f"### Solution to @{current} {{.unnumbered}}")
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        else:
            media = out_dir / "solutions_files"
            parts.append(cell_markdown(cell, f"{key}-{i}", media, out_dir, False))
    return "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


def solutions_markdown(cfg: dict, out_dir: Path) -> str:
    """Every chapter's solutions, grouped by chapter, for the Solutions appendix (print).
    Images from solution outputs go to `out_dir/solutions_files/`."""
    labels = chapter_labels(cfg)
    parts = []
    for e in entries(cfg):
        if not e.is_notebook or not (PROC / e.path).exists():
            continue
        word = "Appendix" if e.appendix else "Chapter"
        heading = f"{word} {labels[e.path]}: {entry_title(e)[0]}"
        nb = nbformat.read(PROC / e.path, as_version=4)
        parts.append(notebook_solutions(nb, heading, out_dir, Path(e.path).stem))
    return "\n".join(p for p in parts if p)


def stage() -> dict:
    """Put everything the renderer reads into `_proc/` beside the executed notebooks.
    Returns the staged configuration (`_quarto.yml` plus what the build states)."""
    PROC.mkdir(exist_ok=True)
    cfg = book_config()
    info = build_info()
    staged = {**cfg, **info}
    staged["book"] = {
        **cfg["book"],
        "subtitle": f"{cfg['book'].get('subtitle', '')} (llmbook {info['llmbook-version']})",
    }
    (PROC / "_quarto.yml").write_text(
        "# Staged by tools/book.py from ../_quarto.yml; do not edit.\n"
        + yaml.safe_dump(staged, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    for name in QUARTO_FILES:
        (PROC / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, PROC / name)
    for bib in _as_list(cfg.get("bibliography")):
        shutil.copy2(ROOT / bib, PROC / bib)
    if (ROOT / "figures").exists():
        shutil.copytree(ROOT / "figures", PROC / "figures", dirs_exist_ok=True)
    for e in entries(cfg):
        if not e.source.exists():
            raise BuildError(
                f"_quarto.yml lists {e.path}, but its source "
                f"{e.source.relative_to(ROOT)} does not exist; "
                f"create it or remove it from the chapter list"
            )
        if e.is_notebook and not is_up_to_date(e.source):
            build_notebook(e.source)
    for e in entries(cfg):  # after every notebook: the Solutions appendix collects them
        if e.is_notebook:
            continue
        target = PROC / e.path
        target.parent.mkdir(parents=True, exist_ok=True)
        text = e.source.read_text(encoding="utf-8")
        if SOLUTIONS_MARK in text:
            shutil.rmtree(target.parent / "solutions_files", ignore_errors=True)
            text = text.replace(SOLUTIONS_MARK, solutions_markdown(cfg, target.parent))
        target.write_text(text, encoding="utf-8")
    return staged


def _as_list(x) -> list:
    return [] if x is None else x if isinstance(x, list) else [x]


# ---------------------------------------------------------------------------- fallback render
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(\{[^{}]*\})?\s*$")
IMAGE_PATH = re.compile(r"(!\[[^\]]*(?:\[[^\]]*\][^\]]*)*\]\()([^)\s]+)")
FIG_IMAGE = re.compile(
    r"!\[(?P<cap>.*?)\]\((?P<path>[^)\s]+)\)\{(?P<attrs>[^}]*#(?P<id>fig-[\w-]+)[^}]*)\}"
)
TBL_CAPTION = re.compile(r"^:\s+(?P<cap>.*?)\s*\{#(?P<id>tbl-[\w-]+)\}\s*$")
EQUATION = re.compile(r"\$\$(?P<math>.+?)\$\$[ \t]*\{#(?P<id>eq-[\w-]+)\}", re.S)
KINDS = {"fig": "Figure", "tbl": "Table", "eq": "Equation", "sec": "Section"}


def split_fences(text: str) -> list[tuple[bool, str]]:
    """Split markdown into (is_code, chunk) pieces so rewrites never touch fenced code."""
    pieces, buf, fence = [], [], None
    for line in text.splitlines(keepends=True):
        m = FENCE.match(line)
        if fence is None and m:
            if buf:
                pieces.append((False, "".join(buf)))
            buf, fence = [line], m.group(2)
        elif (
            fence is not None
            and m
            and m.group(2)[0] == fence[0]
            and len(m.group(2)) >= len(fence)
            and not line.strip()[len(m.group(2)) :].strip()
        ):
            buf.append(line)
            pieces.append((True, "".join(buf)))
            buf, fence = [], None
        else:
            buf.append(line)
    if buf:
        pieces.append((fence is not None, "".join(buf)))
    return pieces


def fenced(text: str, cls: str) -> str:
    ticks = "`" * max(
        3, max((len(m) for m in re.findall(r"`{3,}", text)), default=0) + 1
    )
    return (
        f"{ticks} {{.{cls}}}\n{text.rstrip()}\n{ticks}\n"
        if cls
        else f"{ticks}\n{text.rstrip()}\n{ticks}\n"
    )


PAGE_WIDTH = 88  # characters of code a line of the page holds (book.typ, book.css)
CONTINUATION = "↪ "  # marks an output line the renderer broke to fit the page


def wrap_output(text: str, width: int = PAGE_WIDTH) -> str:
    """Break output lines wider than the page. A continuation keeps the line's indentation
    and starts with a visible mark, so a reader sees it was one line; breaks fall at a
    space where one is near the end, else mid-word (typst cannot wrap a run of no spaces).
    """
    lines = []
    for line in text.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if len(indent) > width // 2:
            indent = indent[: width // 2]
        lead = ""
        while len(lead) + len(line) > width:
            room = width - len(lead)
            cut = line.rfind(" ", room // 2, room + 1)
            cut = cut if cut > len(indent) else room
            lines.append(lead + line[:cut].rstrip())
            line = line[cut:].lstrip(" ")
            lead = indent + CONTINUATION
        lines.append(lead + line)
    return "\n".join(lines)


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else str(x)


def table_with_caption(md: str, caption: str, label: str) -> str:
    """Put `: caption {#tbl-x}` right after the first pipe table of a cell's markdown
    output (text after the table would otherwise separate the caption from it)."""
    lines = md.split("\n")
    first = next((i for i, t in enumerate(lines) if t.startswith("|")), None)
    if first is None:
        return f"{md}\n\n: {caption} {{#{label}}}"
    end = first
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    cap = ["", f": {caption} {{#{label}}}", ""]
    return "\n".join(lines[:end] + cap + lines[end:]).rstrip()


def cell_markdown(cell, key: str, media: Path, base: Path, labels: bool = True) -> str:
    """A processed code cell as markdown: the code, then its outputs (text fenced, images
    written to `media` and linked relative to `base`, tables and figures captioned).
    With `labels=False` figure and table labels are left out (a copy of the cell)."""
    directives, body = split_directives(cell.source)
    _, opts = parse_directives(directives)
    out = []
    if opts.get("echo") is not False:
        out.append(fenced(body, "python"))
    if opts.get("output") is False:
        return "\n".join(out)
    label, figure_done = (opts.get("label") or "") if labels else "", False
    for oi, o in enumerate(cell.get("outputs", [])):
        kind = o.get("output_type")
        if kind == "stream":
            out.append(
                fenced(
                    wrap_output(ANSI.sub("", _text(o.text))),
                    "cell-output" if o.name == "stdout" else "cell-output-stderr",
                )
            )
            continue
        data = o.get("data", {})
        image = next(
            (m for m in ("image/svg+xml", "image/png", "image/jpeg") if m in data),
            None,
        )
        if image:
            ext = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}
            media.mkdir(parents=True, exist_ok=True)
            path = media / f"{key}-{oi}.{ext[image]}"
            if image == "image/svg+xml":
                path.write_text(_text(data[image]), encoding="utf-8")
            else:
                path.write_bytes(base64.b64decode(_text(data[image])))
            rel = os.path.relpath(path, base)
            width = o.get("metadata", {}).get(image, {}).get("width")
            size = f" width={min(100, round(100 * width / 620))}%" if width else ""
            if label.startswith("fig-") and not figure_done:
                cap = opts.get("fig-cap") or ""
                out.append(f"![{cap}]({rel}){{#{label}{size}}}\n")
                figure_done = True
            else:
                out.append(
                    f"![]({rel}){{{size.strip()}}}\n" if size else f"![]({rel})\n"
                )
        elif "text/markdown" in data:
            md = _text(data["text/markdown"]).strip()
            if label.startswith("tbl-"):
                md = table_with_caption(md, opts.get("tbl-cap") or "", label)
            out.append(md + "\n")
        elif "text/latex" in data:
            out.append(_text(data["text/latex"]).strip() + "\n")
        elif "text/plain" in data:
            out.append(
                fenced(
                    wrap_output(ANSI.sub("", _text(data["text/plain"]))), "cell-output"
                )
            )
    return "\n".join(out)


class Renderer:
    """pandoc + typst rendering of `_proc/` as `_quarto.yml` describes it."""

    def __init__(self, out_dir: Path = BOOK):
        self.cfg = book_config()
        self.out_dir = out_dir
        self.work = PROC / ".render"
        self.media = self.work / "media"
        self.crossref: dict[str, str] = {}
        self.meta = {**self.cfg, **build_info()}

    # -- notebooks to markdown
    def notebook_markdown(self, nb_path: Path) -> str:
        nb = nbformat.read(nb_path, as_version=4)
        parts = []
        for ci, cell in enumerate(nb.cells):
            front = re.match(r"\A---\n(.*?)\n---\s*\Z", cell.source, re.S)
            if cell.cell_type == "raw" and front:  # YAML front matter: the title
                title = (yaml.safe_load(front.group(1)) or {}).get("title")
                parts.append(f"# {title}" if title else "")
            elif cell.cell_type == "markdown":
                parts.append(self.relocate_images(cell.source, nb_path.parent))
            elif cell.cell_type == "code":
                parts.append(self.code_cell_markdown(cell, f"{nb_path.stem}-{ci}"))
        return "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"

    def relocate_images(self, md: str, base: Path) -> str:
        def fix(m):
            path = m.group(2)
            if re.match(r"^[a-z]+:", path) or path.startswith("/"):
                return m.group(0)
            return m.group(1) + os.path.relpath((base / path).resolve(), self.work)

        return "".join(
            chunk if code else IMAGE_PATH.sub(fix, chunk)
            for code, chunk in split_fences(md)
        )

    def code_cell_markdown(self, cell, key: str) -> str:
        return cell_markdown(cell, key, self.media, self.work)

    # -- numbering
    def label(self, ident: str, text: str) -> None:
        """Record a cross-reference target; a label must be unique in the whole book (Quarto's rule too)."""
        if ident in self.crossref:
            raise BuildError(
                f"the label #{ident} is used twice in the book ({self.crossref[ident]} and {text}); "
                f"rename one of them, e.g. with the chapter's name as a prefix"
            )
        self.crossref[ident] = text

    def number_chapter(self, md: str, chapter: str | None, front: bool) -> str:
        """Number headings, figures, tables and equations of one chapter; bake the numbers in."""
        counts = {"fig": 0, "tbl": 0, "eq": 0, "exr": 0}
        sec = [0] * 6

        def next_number(kind):
            counts[kind] += 1
            return f"{chapter}.{counts[kind]}" if chapter else str(counts[kind])

        def heading(line):
            m = HEADING.match(line)
            if not m:
                return line
            level, title, attrs = (
                len(m.group(1)),
                m.group(2),
                (m.group(3) or "{}")[1:-1].strip(),
            )
            unnumbered = (
                front or ".unnumbered" in attrs or re.search(r"(^|\s)-(\s|$)", attrs)
            )
            if unnumbered:
                if ".unnumbered" not in attrs:
                    attrs = (attrs + " .unnumbered").strip()
                return f"{m.group(1)} {title} {{{attrs}}}\n"
            if level == 1:
                number = chapter
            else:
                sec[level - 1] += 1
                for j in range(level, 6):
                    sec[j] = 0
                number = ".".join([chapter] + [str(n) for n in sec[1:level]])
            idm = re.search(r"#([\w-]+)", attrs)
            if idm:
                word = (
                    ("Appendix" if chapter.isalpha() else "Chapter")
                    if level == 1
                    else "Section"
                )
                self.label(idm.group(1), f"{word} {number}")
            return f'{m.group(1)} {title} {{{attrs} number="{number}"}}\n'

        def figure(m):
            number = next_number("fig")
            self.label(m.group("id"), f"Figure {number}")
            return f"![Figure {number}: {m.group('cap')}]({m.group('path')}){{{m.group('attrs')}}}"

        def equation(m):
            number = next_number("eq")
            self.label(m.group("id"), f"Equation {number}")
            return (
                f'\n::: {{#{m.group("id")} .numbered-equation number="{number}"}}\n'
                f"$${m.group('math')}$$\n:::\n"
            )

        divs: list[
            bool
        ] = []  # open fenced divs: True for a callout, whose "## Title" is no section

        def line(text):
            exr = re.match(r"^(:::+)\s*\{#(exr-[\w-]+)\s*([^{}]*)\}\s*$", text)
            if exr:  # an exercise: numbered per chapter, its "## Title" no section
                divs.append(True)
                number = next_number("exr")
                self.label(exr.group(2), f"Exercise {number}")
                attrs = f"#{exr.group(2)} .exercise {exr.group(3)}".strip()
                return f'{exr.group(1)} {{{attrs} number="{number}"}}\n'
            if re.match(r"^:::+\s*\S", text):
                divs.append(".callout" in text)
            elif re.match(r"^:::+\s*$", text) and divs:
                divs.pop()
            elif text.startswith("#") and not any(divs):
                return heading(text)
            return text

        out = []
        for code, chunk in split_fences(md):
            if code:
                out.append(chunk)
                continue
            lines = [line(t) for t in chunk.splitlines(keepends=True)]
            chunk = EQUATION.sub(equation, FIG_IMAGE.sub(figure, "".join(lines)))
            out.append(self.number_tables(chunk, next_number))
        return "".join(out)

    def number_tables(self, chunk: str, next_number) -> str:
        """`: caption {#tbl-x}` after a table: number the caption and anchor the table."""
        lines = chunk.split("\n")
        i = 0
        while i < len(lines):
            m = TBL_CAPTION.match(lines[i])
            if not m:
                i += 1
                continue
            number = next_number("tbl")
            self.label(m.group("id"), f"Table {number}")
            start = i - 1
            while start >= 0 and not lines[start].strip():
                start -= 1
            while start > 0 and lines[start - 1].strip():
                start -= 1
            table = lines[start:i]
            lines[start : i + 1] = [
                "",
                f"::: {{#{m.group('id')}}}",
                *table,
                "",
                f": Table {number}: {m.group('cap')}",
                ":::",
                "",
            ]
            i = start + len(table) + 6
        return "\n".join(lines)

    # -- the whole book
    def book_markdown(self) -> str:
        """The whole book as one markdown document: each entry numbered, and preceded by
        a marker naming its HTML page (`<!--llmbook-page:NAME-->`, dropped in print)."""
        labels = chapter_labels(self.cfg)
        parts, in_appendix = [], False
        for e in entries(self.cfg):
            path = PROC / e.path
            if not path.exists():
                raise BuildError(
                    f"{e.path} is listed in _quarto.yml but {path.relative_to(ROOT)} "
                    f"does not exist; run `python tools/book.py execute` first"
                )
            if e.is_notebook:
                md = self.notebook_markdown(path)
            else:
                text = path.read_text(encoding="utf-8")
                text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
                md = self.relocate_images(text, path.parent)
            md = shortcodes(md, self.meta)
            first = next(
                (HEADING.match(t) for t in md.splitlines() if t.startswith("# ")),
                None,
            )
            if first is None:
                raise BuildError(
                    f"{e.path}: a book entry must begin with a level-1 heading (its title)"
                )
            front = ".unnumbered" in (first.group(3) or "")
            if e.appendix and not in_appendix:
                parts.append(
                    "```{=typst}\n#appendix-start()\n"
                    '#set heading(numbering: "A.1")\n```\n'
                )
                in_appendix = True
            parts.append(f"```{{=html}}\n<!--llmbook-page:{page_name(e)}-->\n```\n")
            parts.append(self.number_chapter(md, labels[e.path], front))
            # the end of an entry: book.typ leaves the blank page after it unheaded
            parts.append("```{=typst}\n#metadata(none) <chapter-end>\n```\n")
        return "\n\n".join(parts)

    def metadata(self) -> dict:
        book = self.cfg["book"]
        when = book.get("date")
        if when in ("today", "last-modified", None):
            when = date.today().isoformat()
        return {
            "title": book["title"],
            "subtitle": book.get("subtitle", ""),
            "author": _as_list(book.get("author")),
            "date": str(when),
            "version": self.meta["llmbook-version"],
            "commit": self.meta["llmbook-commit"],
            "rights": self.meta["llmbook-rights"],
            "crossref": self.crossref,
            "link-citations": True,
            "lang": self.cfg.get("lang", "en"),
        }

    def pandoc(self, md_name: str, args: list[str]) -> None:
        """Run pandoc on a markdown file of the work folder; any warning is an error."""
        import pypandoc

        common = [
            "--from",
            "markdown",
            "--metadata-file",
            "meta.yaml",
            "--lua-filter",
            str(TOOLS / "typography.lua"),
            "--lua-filter",
            str(TOOLS / "book.lua"),
            "--citeproc",
            "--resource-path",
            str(self.work),
        ]
        for bib in _as_list(self.cfg.get("bibliography")):
            common += ["--bibliography", str(ROOT / bib)]
        r = subprocess.run(
            [pypandoc.get_pandoc_path(), md_name, *common, *args],
            cwd=self.work,
            capture_output=True,
            text=True,
        )
        problems = [t for t in r.stderr.splitlines() if "WARNING" in t or "rror" in t]
        if r.returncode != 0 or problems:
            raise BuildError("pandoc failed:\n" + (r.stderr or r.stdout)[-4000:])

    def convert(self, md: str, to: str) -> str:
        """Markdown through the book's filters to `to` (typst, html5): for tests."""
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "piece.md").write_text(md, encoding="utf-8")
        (self.work / "meta.yaml").write_text(
            yaml.safe_dump(self.metadata(), allow_unicode=True), encoding="utf-8"
        )
        self.pandoc("piece.md", ["--to", to, "--output", "piece.out"])
        return (self.work / "piece.out").read_text(encoding="utf-8")

    def pdf(self, md: str, pdf: Path) -> Path:
        """Markdown (of the book, or any piece of it) to PDF with the book's template."""
        import typst

        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "book.md").write_text(md, encoding="utf-8")
        (self.work / "meta.yaml").write_text(
            yaml.safe_dump(self.metadata(), allow_unicode=True), encoding="utf-8"
        )
        typst_opts = self.cfg.get("format", {}).get("typst", {}) or {}
        self.pandoc(
            "book.md",
            [
                "--to",
                "typst",
                "--template",
                str(TOOLS / "book.typ"),
                "--output",
                "book.typ",
                "--variable",
                f"papersize={typst_opts.get('papersize', 'a4')}",
                "--variable",
                f"fontsize={typst_opts.get('fontsize', '10.5pt')}",
                "--variable",
                f"toc-depth={typst_opts.get('toc-depth', 2)}",
            ],
        )
        pdf.parent.mkdir(parents=True, exist_ok=True)
        try:
            typst.compile(str(self.work / "book.typ"), output=str(pdf), root=str(PROC))
        except Exception as e:  # typst reports a compile error as its own type
            raise BuildError(
                f"typst failed on {self.work / 'book.typ'}:\n{e}"
            ) from None
        return pdf

    def html_body(self) -> tuple[str, str]:
        """The book (already in book.md) as one HTML body, and its highlighting CSS."""
        self.pandoc(
            "book.md",
            [
                "--to",
                "html5",
                "--standalone",
                "--template",
                str(TOOLS / "parts.html"),
                "--mathml",
                "--syntax-highlighting",
                "pygments",
                "--output",
                "book.html",
            ],
        )
        text = (self.work / "book.html").read_text(encoding="utf-8")
        css, body = text.split("<!--body-->", 1)
        return body, css.replace("<!--css-->", "").strip()

    def render(self) -> dict[str, Path]:
        import htmlbook

        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        md = self.book_markdown()
        name = self.cfg["book"].get("output-file", "book")
        pdf = self.pdf(md, self.out_dir / f"{name}.pdf")
        body, css = self.html_body()
        html = htmlbook.build(self, body, css, pdf)
        return {"pdf": pdf, "html": html}


def page_name(e: Entry) -> str:
    """The HTML page of a book entry: `index` for the preface, else the file's stem."""
    return Path(e.path).stem


def render(fallback: bool = False) -> dict[str, Path]:
    stage()
    if not fallback and shutil.which("quarto"):
        subprocess.run(["quarto", "render", str(PROC)], check=True)
        if BOOK.exists():
            shutil.rmtree(BOOK)
        shutil.move(str(PROC / "_book"), str(BOOK))
        return {"pdf": next(BOOK.glob("*.pdf"), None), "html": BOOK / "index.html"}
    return Renderer().render()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("execute", help="execute notebooks into _proc/")
    ex.add_argument("names", nargs="*", help="notebook names (default: all)")
    ex.add_argument(
        "--force", action="store_true", help="execute even when _proc/ is up to date"
    )
    rd = sub.add_parser("render", help="render _proc/ into _book/")
    rd.add_argument(
        "--fallback",
        action="store_true",
        help="use pandoc+typst even if quarto is installed",
    )
    al = sub.add_parser("all", help="execute, then render")
    al.add_argument("--fallback", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.cmd in ("execute", "all"):
            execute_all(
                getattr(args, "names", None), force=getattr(args, "force", False)
            )
        if args.cmd in ("render", "all"):
            outputs = render(fallback=args.fallback)
            for kind, path in outputs.items():
                print(f"{kind}: {path.relative_to(ROOT) if path else path}")
    except BuildError as e:
        print(f"book: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
