"""What the console's browser tests share: finding Chromium, Node.js,
puppeteer-core (ui/node_modules) and the built console, each missing one a
Skip with the reason (ctest reports SKIPPED, exit 77)."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
UI_SRC = os.path.join(ROOT, "ui")
SKIP = 77


class Skip(Exception):
    pass


def requirements():
    chromium = None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        chromium = chromium or shutil.which(name)
    if not chromium:
        raise Skip("chromium is not installed (scripts/setup installs Debian's chromium)")
    node = shutil.which("node")
    if not node:
        raise Skip("node is not installed (scripts/setup installs Debian's nodejs and npm)")
    if not os.path.isdir(os.path.join(UI_SRC, "node_modules", "puppeteer-core")):
        raise Skip("ui/node_modules has no puppeteer-core: run `npm ci` in ui/ (scripts/setup does)")
    bin_dir = os.environ.get("LUCID_BIN_DIR", os.path.join(ROOT, "build", "bin"))
    ui_dir = os.path.join(os.path.dirname(bin_dir), "share", "lucidnode", "ui")
    if not os.path.isfile(os.path.join(ui_dir, "index.html")):
        raise Skip("the console was not built (%s has no index.html; configure with npm present, "
                   "LUCID_BUILD_UI=ON, and build the lucid-ui target)" % ui_dir)
    artifacts = os.path.join(os.path.dirname(bin_dir), "test-artifacts", "ui")
    return {"chromium": chromium, "node": node, "ui_assets": ui_dir, "ui_dir": UI_SRC, "artifacts": artifacts}


def main(test_case):
    import unittest
    try:
        requirements()
    except Skip as e:
        print("SKIPPED: %s" % e)
        sys.exit(SKIP)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(test_case)
    skipped = []

    class Result(unittest.TextTestResult):
        def addError(self, test, err):
            if isinstance(err[1], Skip):  # a requirement found missing inside the test
                skipped.append(str(err[1]))
                return
            super().addError(test, err)

    res = unittest.TextTestRunner(verbosity=2, resultclass=Result).run(suite)
    if skipped and res.wasSuccessful():
        print("SKIPPED: %s" % "; ".join(skipped))
        sys.exit(SKIP)
    sys.exit(0 if res.wasSuccessful() else 1)
