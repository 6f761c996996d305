#!/usr/bin/env python3
"""modcycles.py [CRATE_DIR...]: import circles between modules of the same crate.

Every `crate::`, `super::` and `self::` path in a crate's non-test code (use trees
expanded, inline paths too) is an edge from the module that writes it to the module it
names. Edges are compared where the two modules part: a module may use its own children
and its ancestors (a parent declares its children; a child uses its parent's types), but
among siblings the uses must form a layering. Each circle is printed as
`crate: a -> b -> a` (with the edges' source files); the exit status is 1 if there is one.

Test code is left out: `#[cfg(test)]` inline modules and the files of `#[cfg(test)] mod x;`
declarations (tests may reach across layers). Without arguments, every workspace member
that has a `src/` directory is checked.
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
MOD_DECL = re.compile(
    r"((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])")
PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]')
INLINE_PATH = re.compile(r"(?<![A-Za-z0-9_:$])(\$?crate|super|self)((?:::" + IDENT + r")+)")


def strip_comments_and_strings(src):
    """Source with comments and string/char literals blanked (lengths kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j])); i = j
        elif c == "r" and re.match(r'r#*"', src[i:i + 10]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', src[i:]).group(1)
            end = '"' + hashes
            j = src.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", src[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j])); i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", src[i:i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", src[i:i + 4])
            out.append(" " * len(m.group(0))); i += len(m.group(0))
        else:
            out.append(c); i += 1
    return "".join(out)


def block_end(src, open_brace):
    depth = 0
    for j in range(open_brace, len(src)):
        if src[j] == "{":
            depth += 1
        elif src[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(src)


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (aliases and globs dropped)."""
    tree = re.sub(r"\s+", " ", tree)
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", tree)
    out = []

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur); cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        s = s.strip()
        if not s:
            return
        if "{" in s and s.endswith("}"):
            head, body = s[:s.index("{")], s[s.index("{") + 1:-1]
            head = head.rstrip(":")
            base = prefix + ("::" + head if prefix and head else head)
            for part in split_top(body):
                walk(base, part)
        else:
            s = s.split(" as ")[0].strip()
            out.append(prefix + ("::" + s if prefix and s else s))

    walk("", tree)
    return [p.replace("::self", "") for p in out]


class Crate:
    def __init__(self, src_dir):
        self.src = src_dir
        self.modules = {}  # module path tuple -> file
        self.test_files = set()
        self.edges = {}  # (from, to) -> set of files
        self.paths = []  # (module, file, path segments), resolved once every module is known
        root = next((os.path.join(src_dir, f) for f in ("lib.rs", "main.rs")
                     if os.path.exists(os.path.join(src_dir, f))), None)
        if root:
            self.load((), root, is_mod_rs=True)
        for here, file, segs in self.paths:
            target = self.resolve(here, segs)
            self.edges.setdefault((here, target), set()).add(os.path.relpath(file))

    def load(self, path, file, is_mod_rs):
        self.modules[path] = file
        raw = open(file, encoding="utf-8").read()
        src = strip_comments_and_strings(raw)
        # The directory this file's child modules live in.
        here = os.path.dirname(file)
        child_dir = here if is_mod_rs else os.path.join(here, os.path.splitext(os.path.basename(file))[0])
        kept, pos = [], 0
        for m in MOD_DECL.finditer(src):
            if m.start() < pos:
                continue
            attrs, name, kind = m.group(1), m.group(2), m.group(3)
            is_test = "cfg(test)" in attrs.replace(" ", "")
            if kind == "{":
                end = block_end(src, m.end() - 1)
                if is_test:
                    kept.append(src[pos:m.start()]); pos = end
                # Inline non-test modules are scanned as part of this file.
                continue
            # `mod name;`: its file.
            attr_path = PATH_ATTR.search(raw[m.start():m.end() + 200].split("mod " + name)[0])
            if attr_path:
                child = os.path.normpath(os.path.join(here, attr_path.group(1)))
                child_is_mod_rs = True
            else:
                a = os.path.join(child_dir, name + ".rs")
                b = os.path.join(child_dir, name, "mod.rs")
                child, child_is_mod_rs = (a, False) if os.path.exists(a) else (b, True)
            if is_test:
                self.test_files.add(child)
            elif os.path.exists(child):
                self.load(path + (name,), child, child_is_mod_rs)
        kept.append(src[pos:])
        self.scan(path, file, "".join(kept))

    def resolve(self, here, segments):
        """The module a path names: the longest prefix of it that is a module."""
        head, rest = segments[0], segments[1:]
        if head in ("crate", "$crate"):
            base = ()
        elif head == "self":
            base = here
        else:  # super, possibly repeated
            base = here[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        best = base
        for i in range(1, len(rest) + 1):
            cand = base + tuple(rest[:i])
            if cand in self.modules:
                best = cand
        return best

    def scan(self, here, file, src):
        paths = []
        for m in re.finditer(r"\buse\s+([^;]+);", src):
            for p in expand_use_tree(m.group(1)):
                segs = [s for s in p.split("::") if s]
                if segs and segs[0] in ("crate", "$crate", "super", "self"):
                    paths.append(segs)
        src_no_use = re.sub(r"\buse\s+[^;]+;", "", src)
        for m in INLINE_PATH.finditer(src_no_use):
            paths.append([m.group(1)] + [s for s in m.group(2).split("::") if s])
        self.paths.extend((here, file, segs) for segs in paths)

    def sibling_graph(self):
        """Edges between the children of the point where source and target part."""
        graph = {}
        for (a, b), files in self.edges.items():
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            if n == len(a) or n == len(b):
                continue  # one contains the other
            sa, sb = a[:n + 1], b[:n + 1]
            graph.setdefault(sa, {}).setdefault(sb, set()).update(files)
        return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    nodes = set(graph) | {t for v in graph.values() for t in v}

    def strong(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def members(root):
    text = open(os.path.join(root, "Cargo.toml"), encoding="utf-8").read()
    m = re.search(r"members\s*=\s*\[([^\]]*)\]", text)
    names = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    return [os.path.join(root, n) for n in names]


def main(argv):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    dirs = argv or members(root)
    found = 0
    for d in dirs:
        src = os.path.join(d, "src")
        if not os.path.isdir(src):
            continue
        crate = Crate(src)
        graph = crate.sibling_graph()
        name = os.path.basename(os.path.normpath(d))
        for comp in cycles(graph):
            found += 1
            show = lambda m: "::".join(m) or "crate"
            print(f"{name}: circle among {', '.join(show(m) for m in comp)}")
            for a in comp:
                for b, files in sorted(graph.get(a, {}).items()):
                    if b in comp:
                        print(f"    {show(a)} -> {show(b)}  ({', '.join(sorted(files))})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
