"""The repository documents itself: every rule ID that code, tests or proto
comments cite is defined in docs/rules.md (as a heading or a bold label); every
rule ID of docs/rules.md is named by at least one test; no tracked file points
to documents outside the repository; every relative link in README.md and
docs/*.md leads to an existing file (and, for a markdown file, to an existing
heading when it names one). Reads files only: no daemon, no database."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
try:
    import wt  # noqa: E402
    check, done = wt.check, wt.done
except ImportError:  # no build yet (wt imports the generated protobuf modules)
    _n = {"passed": 0, "failed": 0}

    def check(cond, what):
        _n["passed" if cond else "failed"] += 1
        print("ok  " if cond else "FAIL", what, flush=True)

    def done():
        print(f"{_n['passed']} passed, {_n['failed']} failed", flush=True)
        sys.exit(1 if _n["failed"] else 0)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ME = os.path.relpath(os.path.abspath(__file__), ROOT)
RULE_ID = re.compile(r"\bR-[A-Z]+[0-9]+[a-z]?")
RULES_MD = os.path.join(ROOT, "docs", "rules.md")


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def tree_files(top):
    """Every file under ROOT/top, skipping caches and build output."""
    out = []
    for d, dirs, files in os.walk(os.path.join(ROOT, top)):
        dirs[:] = [x for x in dirs if x not in ("__pycache__", "build")]
        out += [os.path.join(d, f) for f in files if not f.endswith((".pyc", ".o", ".d"))]
    return out


def ids_in(paths):
    """rule ID -> the first file (relative to ROOT) that names it."""
    where = {}
    for p in paths:
        for rid in RULE_ID.findall(read(p)):
            where.setdefault(rid, os.path.relpath(p, ROOT))
    return where


# ---- 1. every rule ID cited in services/, tests/ and proto/ is defined ----
rules_text = read(RULES_MD)
defined = set()
for line in rules_text.splitlines():
    m = re.match(r"#+\s+(R-[A-Z]+[0-9]+[a-z]?)\b", line)
    if m:
        defined.add(m.group(1))
defined |= set(re.findall(r"\*\*(R-[A-Z]+[0-9]+[a-z]?)\*\*", rules_text))
check(len(defined) > 0, f"docs/rules.md defines rule IDs ({len(defined)})")

cited = ids_in(p for top in ("services", "tests", "proto") for p in tree_files(top)
               if os.path.relpath(p, ROOT) != ME)
undefined = sorted(r for r in cited if r not in defined)
check(not undefined, "every rule ID cited in services/, tests/, proto/ is defined in docs/rules.md"
      + "".join(f"\n      {r} (cited in {cited[r]})" for r in undefined))

# ---- 2. every rule ID of docs/rules.md is named by a test ----
in_rules = set(RULE_ID.findall(rules_text)) | defined
tested = ids_in(p for p in tree_files("tests") if os.path.relpath(p, ROOT) != ME)
untested = sorted(r for r in in_rules if r not in tested)
check(not untested, f"every rule ID of docs/rules.md ({len(in_rules)}) is named by a test under tests/"
      + "".join(f"\n      {r}" for r in untested))

# ---- 3. no tracked file points outside the repository ----
# Built from pieces so that this file does not match itself.
outside = ["../" + "shared", "shared/" + "DOMAIN", "shared/" + "SCENARIO", "shared/" + "DESIGN",
           "seeds" + "/", "DOMAIN" + ".md", "SCENARIO" + ".md", "DESIGN" + ".md", "DOMAIN" + " §",
           "DESIGN" + " §"]
tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout.decode().split("\0")
hits = []
for rel in filter(None, tracked):
    path = os.path.join(ROOT, rel)
    if not os.path.isfile(path):
        continue
    with open(path, "rb") as f:
        data = f.read()
    hits += [f"{rel}: {s}" for s in outside if s.encode() in data]
check(len(tracked) > 100, f"git ls-files lists the repository ({len(tracked) - 1} files)")
check(not hits, "no tracked file points to documents outside the repository"
      + "".join(f"\n      {h}" for h in hits))

# ---- 4. every relative markdown link resolves ----
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    """The anchor a markdown renderer gives a heading (GitHub's rule)."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    text = re.sub(r"```.*?```", "", read(path), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


docs = [os.path.join(ROOT, "README.md")] + sorted(
    os.path.join(ROOT, "docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
broken, n_links = [], 0
for md in docs:
    text = re.sub(r"```.*?```", "", read(md), flags=re.S)  # code blocks hold no links
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        n_links += 1
        path, _, frag = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
        where = f"{os.path.relpath(md, ROOT)}: ({target})"
        if not os.path.exists(dest):
            broken.append(where + " no such file")
        elif frag and dest.endswith(".md") and frag not in anchors(dest):
            broken.append(where + " no such heading")
check(n_links > 0, f"README.md and docs/*.md have relative links ({n_links})")
check(not broken, "every relative link in README.md and docs/*.md resolves"
      + "".join(f"\n      {b}" for b in broken))

done()
