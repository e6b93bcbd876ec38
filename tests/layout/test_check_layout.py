"""scripts/check-layout: the area graph of lib/CMakeLists.txt is enforced.

Each case writes a small source tree and graph (the fixture) into a
temporary directory and runs the checker on it; the last case runs it on the
project's own tree with the graph the build configured (LUCID_LAYOUT_GRAPH).
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKER = os.path.join(ROOT, "scripts", "check-layout")

# util <- store <- nodes, and nodes' public header lucidnode/nodes.hpp.
GRAPH = """\
area util lib/util
area store lib/store
area nodes lib/nodes
header util lucidnode/clock.hpp
header nodes lucidnode/nodes.hpp
dep store util
dep nodes store
dep nodes util
"""


def run(root, graph_text):
    graph = os.path.join(root, "layout.graph")
    with open(graph, "w", encoding="utf-8") as f:
        f.write(graph_text)
    return subprocess.run([sys.executable, CHECKER, "--graph", graph, "--root", root],
                          capture_output=True, text=True, timeout=60)


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(text))


class FixtureTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.root = self._tmp.name
        write(self.root, "include/lucidnode/clock.hpp", "#pragma once\n")
        write(self.root, "include/lucidnode/nodes.hpp", '#pragma once\n#include "lucidnode/clock.hpp"\n')
        write(self.root, "lib/util/file.hpp", "#pragma once\n#include <string>\n")
        write(self.root, "lib/store/store.hpp", '#pragma once\n#include "util/file.hpp"\n')
        write(self.root, "lib/store/store.cpp", '#include "store.hpp"\n#include "store/store.hpp"\n')
        write(self.root, "lib/nodes/nodes.cpp",
              '#include "lucidnode/nodes.hpp"\n#include "store/store.hpp"\n#include "util/file.hpp"\n')

    def tearDown(self):
        self._tmp.cleanup()

    def test_declared_includes_pass(self):
        r = run(self.root, GRAPH)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 areas keep their declared dependencies; 0 todo edge(s) left", r.stdout)

    def test_forbidden_include_fails_with_file_and_line(self):
        # store may use util only; it reaches up into nodes.
        write(self.root, "lib/store/store.cpp", '#include "store/store.hpp"\n\n#include "nodes/node_common.hpp"\n')
        r = run(self.root, GRAPH)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("lib/store/store.cpp:3: area 'store' includes \"nodes/node_common.hpp\" of area 'nodes', "
                      "but store may depend only on: util", r.stderr)

    def test_forbidden_public_header_fails(self):
        # A public header counts as its area: util may not include nodes' API.
        write(self.root, "lib/util/file.cpp", '#include "lucidnode/nodes.hpp"\n')
        r = run(self.root, GRAPH)
        self.assertEqual(r.returncode, 1)
        self.assertIn("lib/util/file.cpp:1: area 'util' includes \"lucidnode/nodes.hpp\" of area 'nodes'", r.stderr)

    def test_public_header_checked_as_its_area(self):
        write(self.root, "include/lucidnode/clock.hpp", '#pragma once\n#include "lucidnode/nodes.hpp"\n')
        r = run(self.root, GRAPH)
        self.assertEqual(r.returncode, 1)
        self.assertIn("include/lucidnode/clock.hpp:2: area 'util' includes", r.stderr)

    def test_undeclared_public_header_fails(self):
        write(self.root, "lib/nodes/nodes.cpp", '#include "lucidnode/secret.hpp"\n')
        r = run(self.root, GRAPH)
        self.assertEqual(r.returncode, 1)
        self.assertIn("public header lucidnode/secret.hpp, which no area declares", r.stderr)

    def test_todo_edge_allows_include_and_is_counted(self):
        write(self.root, "lib/store/store.cpp", '#include "nodes/node_common.hpp"\n')
        r = run(self.root, GRAPH + "todo store nodes\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 todo edge(s) left", r.stdout)

    def test_cycle_of_wanted_edges_fails(self):
        r = run(self.root, GRAPH + "dep util nodes\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("form a cycle: nodes -> store -> util -> nodes", r.stderr)

    def test_unknown_area_in_graph_is_a_usage_error(self):
        r = run(self.root, GRAPH + "dep nodes nowhere\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown area nowhere", r.stderr)


class ProjectTreeTest(unittest.TestCase):
    def test_project_keeps_its_graph(self):
        # Not a skip: without the build's graph this test cannot check anything,
        # and a missing graph must not count as a pass (ctest always sets it).
        graph = os.environ.get("LUCID_LAYOUT_GRAPH")
        self.assertTrue(graph, "LUCID_LAYOUT_GRAPH is not set: run through ctest, or set it to <build>/lib/layout.graph")
        r = subprocess.run([sys.executable, CHECKER, "--graph", graph, "--root", ROOT],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # 17 areas (postgres, built into liblucidnode_postgres, among them), and
        # one debt left (pools -> nodes, pool membership):
        # the core no longer depends on any capability (lib/cluster assembles them).
        self.assertIn("17 areas keep their declared dependencies; 1 todo edge(s) left", r.stdout)
        with open(graph, encoding="utf-8") as f:
            core_edges = [line.split()[2] for line in f if line.split()[:2] in (["dep", "core"], ["todo", "core"])]
        self.assertEqual(sorted(core_edges), ["events", "store", "util"])


if __name__ == "__main__":
    unittest.main()
