#!/usr/bin/env python3
"""Tests of modcycles.py on small synthetic crates: python3 scripts/lib/modcycles_test.py"""
import os, subprocess, sys, tempfile, textwrap, unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modcycles.py")


def crate(files):
    d = tempfile.mkdtemp()
    for path, text in files.items():
        p = os.path.join(d, "src", path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(textwrap.dedent(text))
    return d


def run(d):
    r = subprocess.run([sys.executable, SCRIPT, d], capture_output=True, text=True)
    return r.returncode, r.stdout


class ModCycles(unittest.TestCase):
    def test_siblings_in_a_circle_are_reported(self):
        d = crate({
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b/mod.rs": "pub mod inner;\n",
            "b/inner.rs": "pub fn f() -> crate::a::A { crate::a::A }\n",
        })
        rc, out = run(d)
        self.assertEqual(rc, 1, out)
        self.assertIn("circle among a, b", out)

    def test_use_trees_super_and_nested_siblings(self):
        d = crate({
            "lib.rs": "pub mod g;\n",
            "g/mod.rs": "pub mod x;\npub mod y;\n",
            "g/x.rs": "use super::{y::{self, Y}};\n",
            "g/y.rs": "use crate::g::{x as other};\n",
        })
        rc, out = run(d)
        self.assertEqual(rc, 1, out)
        self.assertIn("circle among g::x, g::y", out)

    def test_parents_children_tests_comments_and_strings_are_not_circles(self):
        d = crate({
            "lib.rs": "pub mod a;\npub mod b;\n#[cfg(test)]\nmod support;\n",
            "a.rs": "use crate::b::B;\npub const S: &str = \"\";\n",
            "b/mod.rs": textwrap.dedent("""\
                // use crate::a::S; is only a comment
                pub const T: &str = "crate::a::S";
                pub mod c;
                pub struct B;
                use self::c::C;
                #[cfg(test)]
                #[path = "b_tests.rs"]
                mod tests;
                """),
            "b/c.rs": textwrap.dedent("""\
                use super::B;
                pub struct C;
                #[cfg(test)]
                mod tests {
                    use crate::a::S;
                }
                """),
            "b/b_tests.rs": "use crate::a::S;\n",
            "support.rs": "use crate::a::S;\nuse crate::b::B;\n",
        })
        rc, out = run(d)
        self.assertEqual((rc, out), (0, ""))


if __name__ == "__main__":
    unittest.main()
